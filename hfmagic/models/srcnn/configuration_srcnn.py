"""SRCNN configuration."""

from __future__ import annotations

from ..sr_base import SuperResolutionConfig

class SRCNNConfig(SuperResolutionConfig):
    r"""Configuration of [`SRCNN`] (Dong et al. 2014), with MMagic's `SRCNNNet` defaults.

    Args:
        upscale_factor (`int`, *optional*, defaults to 4):
            Scale of the bicubic pre-upsampling; any positive integer.
        channels (`tuple[int, int, int, int]`, *optional*, defaults to `(3, 64, 32, 3)`):
            Channels of the input, the two hidden layers and the output.
        kernel_sizes (`tuple[int, int, int]`, *optional*, defaults to `(9, 1, 5)`):
            Kernel sizes of the three convolutions (padding `k // 2`).
        loss_type (`str`, *optional*, defaults to `"l1"`):
            Pixel loss used when `labels` are given: `"l1"`, `"mse"` or `"charbonnier"`.

    Example:

    ```python
    >>> from hfmagic import SRCNN, SRCNNConfig
    >>> model = SRCNN(SRCNNConfig(upscale_factor=4))
    ```
    """

    model_type = "srcnn"
    supported_upscale_factors = tuple(range(1, 17))

    def __init__(
        self,
        upscale_factor: int = 4,
        channels: tuple[int, int, int, int] = (3, 64, 32, 3),
        kernel_sizes: tuple[int, int, int] = (9, 1, 5),
        loss_type: str = "l1",
        **kwargs,
    ):
        channels, kernel_sizes = list(channels), list(kernel_sizes)
        if len(channels) != 4:
            raise ValueError(f"channels must have 4 entries (in, hidden1, hidden2, out), got {channels}.")
        if len(kernel_sizes) != 3:
            raise ValueError(f"kernel_sizes must have 3 entries, got {kernel_sizes}.")
        self.channels = channels
        self.kernel_sizes = kernel_sizes
        kwargs.pop("in_channels", None)
        kwargs.pop("out_channels", None)
        super().__init__(
            upscale_factor=upscale_factor,
            in_channels=channels[0],
            out_channels=channels[-1],
            loss_type=loss_type,
            **kwargs,
        )


__all__ = ["SRCNNConfig"]
