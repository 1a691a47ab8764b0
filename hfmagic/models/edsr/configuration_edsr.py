"""EDSR configuration."""

from __future__ import annotations

from typing import ClassVar

from ..sr_base import SuperResolutionConfig


class EDSRConfig(SuperResolutionConfig):
    r"""Configuration of [`EDSR`] (Lim et al. 2017), with MMagic's `EDSRNet` defaults.

    Args:
        upscale_factor (`int`, *optional*, defaults to 4):
            Upsampling factor: a power of two (2, 4, 8, 16) or 3.
        in_channels (`int`, *optional*, defaults to 3):
            Channels of the input image.
        out_channels (`int`, *optional*, defaults to 3):
            Channels of the output image.
        mid_channels (`int`, *optional*, defaults to 64):
            Channels of the intermediate features.
        num_blocks (`int`, *optional*, defaults to 16):
            Number of residual blocks in the body.
        res_scale (`float`, *optional*, defaults to 1.0):
            Scale of the residual branch in each block (EDSR-baseline: 1.0, large EDSR: 0.1).
        rgb_mean (`tuple[float, float, float]`, *optional*, defaults to `(0.4488, 0.4371, 0.4040)`):
            Mean subtracted from the input and added back to the output (DIV2K's RGB mean).
        rgb_std (`tuple[float, float, float]`, *optional*, defaults to `(1.0, 1.0, 1.0)`):
            Standard deviation the input is divided by (and the output multiplied by).
        loss_type (`str`, *optional*, defaults to `"l1"`):
            Pixel loss used when `labels` are given: `"l1"`, `"mse"` or `"charbonnier"`.

    Example:

    ```python
    >>> from hfmagic import EDSR, EDSRConfig
    >>> model = EDSR(EDSRConfig(upscale_factor=2))
    ```
    """

    model_type = "edsr"
    mmagic_module: ClassVar[str | None] = "EDSRNet"
    supported_upscale_factors: ClassVar[tuple[int, ...]] = (2, 3, 4, 8, 16)

    mid_channels: int = 64
    num_blocks: int = 16
    res_scale: float = 1.0
    rgb_mean: list[float] | tuple[float, ...] = (0.4488, 0.4371, 0.4040)
    rgb_std: list[float] | tuple[float, ...] = (1.0, 1.0, 1.0)

    def __post_init__(self, **kwargs):
        self.rgb_mean, self.rgb_std = [float(v) for v in self.rgb_mean], [float(v) for v in self.rgb_std]
        self.res_scale = float(self.res_scale)
        if len(self.rgb_mean) != self.in_channels or len(self.rgb_std) != self.in_channels:
            raise ValueError(
                f"rgb_mean and rgb_std need one value per input channel ({self.in_channels}), "
                f"got {self.rgb_mean} and {self.rgb_std}."
            )
        super().__post_init__(**kwargs)


__all__ = ["EDSRConfig"]
