"""MSRResNet configuration."""

from __future__ import annotations

from typing import ClassVar

from ..sr_base import SuperResolutionConfig


class MSRResNetConfig(SuperResolutionConfig):
    r"""Configuration of [`MSRResNet`] (modified SRResNet, as in MMagic and BasicSR).

    Args:
        upscale_factor (`int`, *optional*, defaults to 4):
            Upsampling factor: 2, 3 or 4.
        in_channels (`int`, *optional*, defaults to 3):
            Channels of the input image.
        out_channels (`int`, *optional*, defaults to 3):
            Channels of the output image.
        mid_channels (`int`, *optional*, defaults to 64):
            Channels of the intermediate features.
        num_blocks (`int`, *optional*, defaults to 16):
            Number of residual blocks in the trunk.
        upsample_lrelu (`bool`, *optional*, defaults to `False`):
            Apply LeakyReLU(0.1) after each pixel shuffle, as BasicSR's MSRResNet does (MMagic's
            does not). Checkpoints converted from BasicSR set it to `True`.
        loss_type (`str`, *optional*, defaults to `"l1"`):
            Pixel loss used when `labels` are given: `"l1"`, `"mse"` or `"charbonnier"`.

    Example:

    ```python
    >>> from hfmagic import MSRResNet, MSRResNetConfig
    >>> model = MSRResNet(MSRResNetConfig(upscale_factor=4))
    ```
    """

    model_type = "msrresnet"
    mmagic_module: ClassVar[str | None] = "MSRResNet"
    supported_upscale_factors: ClassVar[tuple[int, ...]] = (2, 3, 4)

    mid_channels: int = 64
    num_blocks: int = 16
    upsample_lrelu: bool = False


__all__ = ["MSRResNetConfig"]
