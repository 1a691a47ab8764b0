"""RRDBNet configuration."""

from __future__ import annotations

from typing import ClassVar

from ..sr_base import SuperResolutionConfig


class RRDBNetConfig(SuperResolutionConfig):
    r"""Configuration of [`RRDBNet`] (ESRGAN's and Real-ESRGAN's generator), with MMagic's `RRDBNet` defaults.

    Args:
        upscale_factor (`int`, *optional*, defaults to 4):
            Upsampling factor: 4, or 2 / 1 (the input is pixel-unshuffled by 2 / 4 first, as in MMagic and
            BasicSR, so its height and width must be multiples of 2 / 4; the pipeline pads them).
        in_channels (`int`, *optional*, defaults to 3):
            Channels of the input image.
        out_channels (`int`, *optional*, defaults to 3):
            Channels of the output image.
        mid_channels (`int`, *optional*, defaults to 64):
            Channels of the intermediate features.
        num_blocks (`int`, *optional*, defaults to 23):
            Number of RRDB blocks in the trunk (Real-ESRGAN's anime model: 6).
        growth_channels (`int`, *optional*, defaults to 32):
            Channels each convolution of a dense block adds.
        loss_type (`str`, *optional*, defaults to `"l1"`):
            Pixel loss used when `labels` are given: `"l1"`, `"mse"` or `"charbonnier"`.

    Example:

    ```python
    >>> from hfmagic import RRDBNet, RRDBNetConfig
    >>> model = RRDBNet(RRDBNetConfig(upscale_factor=4))
    ```
    """

    model_type = "rrdbnet"
    mmagic_module: ClassVar[str | None] = "RRDBNet"
    supported_upscale_factors: ClassVar[tuple[int, ...]] = (1, 2, 4)

    mid_channels: int = 64
    num_blocks: int = 23
    growth_channels: int = 32


__all__ = ["RRDBNetConfig"]
