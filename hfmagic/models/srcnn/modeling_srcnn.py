"""SRCNN: bicubic upsampling followed by three convolutions (MMagic's `SRCNNNet`)."""

from __future__ import annotations

import torch
from torch import nn

from ...layers import interpolate_upsample
from .. import receptive_field as rf
from ..sr_base import SuperResolutionPreTrainedModel
from .configuration_srcnn import SRCNNConfig

class SRCNN(SuperResolutionPreTrainedModel):
    """SRCNN: ``conv3(relu(conv2(relu(conv1(bicubic(x))))))``; PyTorch's default init.

    Input (N, 3, H, W) in [0, 1] -> output (N, 3, H*s, W*s).
    """

    config_class = SRCNNConfig

    def __init__(self, config: SRCNNConfig):
        super().__init__(config)
        c, k = config.channels, config.kernel_sizes
        self.conv1 = nn.Conv2d(c[0], c[1], k[0], padding=k[0] // 2)
        self.conv2 = nn.Conv2d(c[1], c[2], k[1], padding=k[1] // 2)
        self.conv3 = nn.Conv2d(c[2], c[3], k[2], padding=k[2] // 2)
        self.relu = nn.ReLU(inplace=True)  # saves two HR-sized temporaries; same values
        self.post_init()

    def reconstruct(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # F.interpolate(bicubic, align_corners=False); position-invariant in exact_interpolation().
        x = interpolate_upsample(pixel_values, self.config.upscale_factor, "bicubic")
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        return self.conv3(x)

    def receptive_field(self) -> int | None:
        """The bicubic taps plus the convolutions' radii (``k // 2``) in HR pixels, brought back to
        LR pixels: 3 for the default (9, 1, 5) kernels at x4, 4 at x3, 5 at x2. None for a subclass."""
        if type(self) is not SRCNN:
            return None
        scale = self.config.upscale_factor
        return rf.chain_halo(scale, [rf.resize(scale, 1, 2)] + [rf.conv(k // 2) for k in self.config.kernel_sizes])


__all__ = ["SRCNN"]
