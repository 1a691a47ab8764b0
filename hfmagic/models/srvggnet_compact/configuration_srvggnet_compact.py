"""SRVGGNetCompact configuration."""

from __future__ import annotations

from typing import ClassVar

from ..sr_base import SuperResolutionConfig

# The activations Real-ESRGAN's SRVGGNetCompact takes (its `act_type`).
ACT_TYPES = ("prelu", "relu", "leakyrelu")


class SRVGGNetCompactConfig(SuperResolutionConfig):
    r"""Configuration of [`SRVGGNetCompact`] (Real-ESRGAN's compact VGG-style network, the one behind
    realesr-animevideov3 and realesr-general-x4v3).

    Args:
        upscale_factor (`int`, *optional*, defaults to 4):
            Upsampling factor: 1, 2, 3, 4 or 8 (one pixel shuffle at the end).
        in_channels (`int`, *optional*, defaults to 3):
            Channels of the input image.
        out_channels (`int`, *optional*, defaults to 3):
            Channels of the output image; must equal `in_channels` (the nearest-upsampled input is
            added to the output).
        mid_channels (`int`, *optional*, defaults to 64):
            Channels of the intermediate features (Real-ESRGAN's `num_feat`).
        num_convs (`int`, *optional*, defaults to 16):
            Number of 3x3 convolutions between the first and the last one (Real-ESRGAN's `num_conv`:
            16 for realesr-animevideov3, 32 for realesr-general-x4v3).
        act_type (`str`, *optional*, defaults to `"prelu"`):
            Activation after every convolution but the last: `"prelu"` (one slope per channel),
            `"relu"` or `"leakyrelu"` (slope 0.1).
        loss_type (`str`, *optional*, defaults to `"l1"`):
            Pixel loss used when `labels` are given: `"l1"`, `"mse"` or `"charbonnier"`.

    Example:

    ```python
    >>> from hfmagic import SRVGGNetCompact, SRVGGNetCompactConfig
    >>> model = SRVGGNetCompact(SRVGGNetCompactConfig(num_convs=32))  # realesr-general-x4v3's shape
    ```
    """

    model_type = "srvggnet_compact"
    supported_upscale_factors: ClassVar[tuple[int, ...]] = (1, 2, 3, 4, 8)

    mid_channels: int = 64
    num_convs: int = 16
    act_type: str = "prelu"

    def __post_init__(self, **kwargs):
        if self.act_type not in ACT_TYPES:
            raise ValueError(f"Unknown act_type={self.act_type!r}; choose one of {list(ACT_TYPES)}.")
        super().__post_init__(**kwargs)
        if self.out_channels != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} adds its nearest-upsampled input to the output, so out_channels "
                f"({self.out_channels}) must equal in_channels ({self.in_channels})."
            )


__all__ = ["SRVGGNetCompactConfig"]
