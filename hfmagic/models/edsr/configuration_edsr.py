"""EDSR configuration."""

from __future__ import annotations

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
    supported_upscale_factors = (2, 3, 4, 8, 16)

    def __init__(
        self,
        upscale_factor: int = 4,
        in_channels: int = 3,
        out_channels: int = 3,
        mid_channels: int = 64,
        num_blocks: int = 16,
        res_scale: float = 1.0,
        rgb_mean: tuple[float, ...] = (0.4488, 0.4371, 0.4040),
        rgb_std: tuple[float, ...] = (1.0, 1.0, 1.0),
        loss_type: str = "l1",
        **kwargs,
    ):
        rgb_mean, rgb_std = [float(v) for v in rgb_mean], [float(v) for v in rgb_std]
        if len(rgb_mean) != in_channels or len(rgb_std) != in_channels:
            raise ValueError(
                f"rgb_mean and rgb_std need one value per input channel ({in_channels}), "
                f"got {rgb_mean} and {rgb_std}."
            )
        self.mid_channels = mid_channels
        self.num_blocks = num_blocks
        self.res_scale = float(res_scale)
        self.rgb_mean = rgb_mean
        self.rgb_std = rgb_std
        super().__init__(
            upscale_factor=upscale_factor,
            in_channels=in_channels,
            out_channels=out_channels,
            loss_type=loss_type,
            **kwargs,
        )


__all__ = ["EDSRConfig"]
