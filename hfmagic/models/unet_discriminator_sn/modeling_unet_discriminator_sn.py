"""U-Net discriminator with spectral norm (Real-ESRGAN's `UNetDiscriminatorSN`, MMagic's
`UNetDiscriminatorWithSpectralNorm`)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import spectral_norm

from ..discriminator_base import DiscriminatorPreTrainedModel
from .configuration_unet_discriminator_sn import UNetDiscriminatorSNConfig

# (input, output) channels of conv1..conv8 as multiples of mid_channels: three 4x4 stride-2
# downsamplings, three 3x3 convolutions after each x2 upsampling, two more 3x3 at full size.
_SN_CONVS = [(1, 2), (2, 4), (4, 8), (8, 4), (4, 2), (2, 1), (1, 1), (1, 1)]


class UNetDiscriminatorSN(DiscriminatorPreTrainedModel):
    """Images (N, in_channels, H, W) in [0, 1], H and W multiples of 8 -> per-pixel real/fake
    logits (N, 1, H, W).

    ``conv0`` (3x3, plain); ``conv1``-``conv3`` (4x4 stride 2) down to 1/8; ``conv4``-``conv6``
    (3x3) each after a bilinear x2 upsampling (``align_corners=False``), plus the encoder map of the
    same size when ``skip_connection``; ``conv7``, ``conv8`` (3x3); LeakyReLU(0.2) after each;
    ``conv9`` (3x3, plain) to one channel. ``conv1``-``conv8`` have no bias and are wrapped in
    ``torch.nn.utils.spectral_norm``, so their tensors are ``convK.weight_orig`` / ``weight_u`` /
    ``weight_v``, Real-ESRGAN's names (MMagic's ``conv_K`` convert by renaming). In train mode each
    forward runs one power iteration, updating ``weight_u`` / ``weight_v`` (saved with the weights).
    """

    config_class = UNetDiscriminatorSNConfig

    def __init__(self, config: UNetDiscriminatorSNConfig):
        super().__init__(config)
        mid = config.mid_channels
        self.conv0 = nn.Conv2d(config.in_channels, mid, 3, 1, 1)
        for index, (c_in, c_out) in enumerate(_SN_CONVS, start=1):
            kernel, stride = (4, 2) if index <= 3 else (3, 1)
            conv = nn.Conv2d(mid * c_in, mid * c_out, kernel, stride, 1, bias=False)
            setattr(self, f"conv{index}", spectral_norm(conv))
        self.conv9 = nn.Conv2d(mid, 1, 3, 1, 1)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Score images (N, in_channels, H, W) in [0, 1] (H, W multiples of 8); returns logits (N, 1, H, W)."""
        self.check_pixel_values(pixel_values)
        height, width = pixel_values.shape[2:]
        if height % 8 or width % 8:
            raise ValueError(
                f"UNetDiscriminatorSN needs a height and width that are multiples of 8 (three x2 downsamplings, "
                f"whose maps are added back after upsampling), got {height}x{width}: crop to "
                f"{height - height % 8}x{width - width % 8}."
            )
        lrelu = lambda x: F.leaky_relu(x, 0.2)  # noqa: E731
        up = lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)  # noqa: E731
        feat0 = lrelu(self.conv0(pixel_values))
        feat1 = lrelu(self.conv1(feat0))
        feat2 = lrelu(self.conv2(feat1))
        feat = lrelu(self.conv3(feat2))
        for conv, skip in ((self.conv4, feat2), (self.conv5, feat1), (self.conv6, feat0)):
            feat = lrelu(conv(up(feat)))
            if self.config.skip_connection:
                feat = feat + skip
        feat = lrelu(self.conv8(lrelu(self.conv7(feat))))
        return self.conv9(feat)


__all__ = ["UNetDiscriminatorSN"]
