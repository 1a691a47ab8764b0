"""SRCNN configuration."""

from __future__ import annotations

from typing import ClassVar

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
    mmagic_module: ClassVar[str | None] = "SRCNNNet"
    supported_upscale_factors: ClassVar[tuple[int, ...]] = tuple(range(1, 17))

    channels: list[int] | tuple[int, ...] = (3, 64, 32, 3)
    kernel_sizes: list[int] | tuple[int, ...] = (9, 1, 5)

    def __post_init__(self, **kwargs):
        self.channels, self.kernel_sizes = [int(c) for c in self.channels], [int(k) for k in self.kernel_sizes]
        if len(self.channels) != 4:
            raise ValueError(f"channels must have 4 entries (in, hidden1, hidden2, out), got {self.channels}.")
        if len(self.kernel_sizes) != 3:
            raise ValueError(f"kernel_sizes must have 3 entries, got {self.kernel_sizes}.")
        # in/out channels follow `channels` (the base class's fields, kept for the shared checks)
        self.in_channels, self.out_channels = self.channels[0], self.channels[-1]
        super().__post_init__(**kwargs)


__all__ = ["SRCNNConfig"]
