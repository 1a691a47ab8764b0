"""ModifiedVGG discriminator (MMagic's `ModifiedVGG`, used by SRGAN and ESRGAN)."""

from __future__ import annotations

import torch
from torch import nn

from ..discriminator_base import DiscriminatorPreTrainedModel
from .configuration_modified_vgg import ModifiedVGGConfig

# (input channels, output channels) of the two convolutions of stages 1-4, as multiples of mid_channels.
_STAGES = [((1, 2), (2, 2)), ((2, 4), (4, 4)), ((4, 8), (8, 8)), ((8, 8), (8, 8))]


class ModifiedVGGDiscriminator(DiscriminatorPreTrainedModel):
    """Images (N, in_channels, 128, 128) in [0, 1] -> real/fake logits (N, 1).

    Stage 0: ``conv0_0`` (3x3, the only convolution with a bias), ``conv0_1`` (4x4 stride 2) +
    ``bn0_1``; stages 1-4: ``convK_0`` (3x3) + ``bnK_0``, ``convK_1`` (4x4 stride 2) + ``bnK_1``;
    LeakyReLU(0.2) after each; then ``linear1`` (mid*8*4*4 -> 100), LeakyReLU(0.2), ``linear2``
    (100 -> 1). Module names are MMagic's, so its checkpoints load by name.
    """

    config_class = ModifiedVGGConfig

    def __init__(self, config: ModifiedVGGConfig):
        super().__init__(config)
        mid = config.mid_channels
        self.conv0_0 = nn.Conv2d(config.in_channels, mid, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(mid, mid, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(mid)
        for stage, ((in0, out0), (in1, out1)) in enumerate(_STAGES, start=1):
            setattr(self, f"conv{stage}_0", nn.Conv2d(mid * in0, mid * out0, 3, 1, 1, bias=False))
            setattr(self, f"bn{stage}_0", nn.BatchNorm2d(mid * out0))
            setattr(self, f"conv{stage}_1", nn.Conv2d(mid * in1, mid * out1, 4, 2, 1, bias=False))
            setattr(self, f"bn{stage}_1", nn.BatchNorm2d(mid * out1))
        side = config.input_size // 2 ** 5
        self.linear1 = nn.Linear(mid * 8 * side * side, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Score images (N, in_channels, 128, 128) in [0, 1]; returns logits (N, 1)."""
        self.check_pixel_values(pixel_values)
        size = self.config.input_size
        if tuple(pixel_values.shape[2:]) != (size, size):
            raise ValueError(
                f"ModifiedVGGDiscriminator scores {size}x{size} images (its linear1 flattens a 4x4 map), got "
                f"{tuple(pixel_values.shape[2:])}: crop or resize to {size}x{size} (MMagic's SRGAN/ESRGAN use "
                f"gt patches of {size})."
            )
        feat = self.lrelu(self.conv0_0(pixel_values))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))
        for stage in range(1, len(_STAGES) + 1):
            for half in (0, 1):
                conv, bn = getattr(self, f"conv{stage}_{half}"), getattr(self, f"bn{stage}_{half}")
                feat = self.lrelu(bn(conv(feat)))
        feat = self.lrelu(self.linear1(feat.flatten(1)))
        return self.linear2(feat)


__all__ = ["ModifiedVGGDiscriminator"]
