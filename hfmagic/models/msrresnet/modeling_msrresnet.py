"""MSRResNet: modified SRResNet without BatchNorm (MMagic's `MSRResNet`)."""

from __future__ import annotations

import torch
from torch import nn

from ...layers import PixelShufflePack, ResidualBlockNoBN, interpolate_upsample, make_layer, mark_init_scale
from .. import receptive_field as rf
from ..sr_base import SuperResolutionPreTrainedModel
from .configuration_msrresnet import MSRResNetConfig


class MSRResNet(SuperResolutionPreTrainedModel):
    """``conv_last(lrelu(conv_hr(upsample(trunk(lrelu(conv_first(x))))))) + bilinear(x)``.

    Input (N, in_channels, H, W) in [0, 1] -> output (N, out_channels, H*s, W*s).
    """

    config_class = MSRResNetConfig

    def __init__(self, config: MSRResNetConfig):
        super().__init__(config)
        mid = config.mid_channels
        self.conv_first = nn.Conv2d(config.in_channels, mid, 3, 1, 1, bias=True)
        self.trunk_net = make_layer(ResidualBlockNoBN, config.num_blocks, mid_channels=mid)
        if config.upscale_factor in (2, 3):
            self.upsample1 = PixelShufflePack(mid, mid, config.upscale_factor, upsample_kernel=3)
        else:  # x4 as two x2 stages
            self.upsample1 = PixelShufflePack(mid, mid, 2, upsample_kernel=3)
            self.upsample2 = PixelShufflePack(mid, mid, 2, upsample_kernel=3)
        self.conv_hr = nn.Conv2d(mid, mid, 3, 1, 1, bias=True)
        self.conv_last = nn.Conv2d(mid, config.out_channels, 3, 1, 1, bias=True)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)
        mark_init_scale([self.conv_first, self.conv_hr, self.conv_last], 0.1)
        self.post_init()

    def _upsample(self, feat: torch.Tensor) -> torch.Tensor:
        stages = [self.upsample1] + ([self.upsample2] if self.config.upscale_factor == 4 else [])
        for stage in stages:
            feat = stage(feat)
            if self.config.upsample_lrelu:
                feat = self.lrelu(feat)
        return feat

    def forward_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """conv_first and the residual trunk, at LR resolution: (N, C, H, W) -> (N, mid_channels, H, W)."""
        return self.trunk_net(self.lrelu(self.conv_first(pixel_values)))

    def forward_head(self, features: torch.Tensor, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pixel-shuffle upsampling, conv_hr, conv_last and the bilinear skip of ``pixel_values``."""
        out = self.conv_last(self.lrelu(self.conv_hr(self._upsample(features))))
        # F.interpolate(bilinear, align_corners=False); position-invariant in exact_interpolation().
        base = interpolate_upsample(pixel_values, self.config.upscale_factor, "bilinear")
        return out + base

    def _receptive_ops(self) -> tuple[list[rf.Back], list[rf.Back], list[rf.Back]]:
        """The network as (features at LR, upsampling head, bilinear skip of the input)."""
        scale = self.config.upscale_factor
        stages = [2, 2] if scale == 4 else [scale]
        features = [rf.conv(1)] * (1 + 2 * self.config.num_blocks)  # conv_first + two convs per residual block
        head = [op for factor in stages for op in (rf.conv(1), rf.shuffle(factor))] + [rf.conv(1), rf.conv(1)]
        return features, head, [rf.resize(scale, 0, 1)]

    def receptive_field(self) -> int | None:
        """``2B + 3`` LR pixels at every factor (B = num_blocks; 35 for 16 blocks); the bilinear
        skip needs only 1. None for a subclass (it may change the network: the pipeline probes it)."""
        if type(self) is not MSRResNet:
            return None
        features, head, skip = self._receptive_ops()
        return rf.chain_halo(self.config.upscale_factor, features + head, skip)

    def split_receptive_fields(self) -> tuple[int, int] | None:
        """``(2B + 1, 2)``: the trunk's context, and the head's (its convolutions and the skip)."""
        if type(self) is not MSRResNet:
            return None
        features, head, skip = self._receptive_ops()
        return rf.chain_halo(1, features), rf.chain_halo(self.config.upscale_factor, head, skip)


__all__ = ["MSRResNet"]
