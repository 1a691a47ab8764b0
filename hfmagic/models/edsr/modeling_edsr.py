"""EDSR: enhanced deep residual network (MMagic's `EDSRNet`)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ...layers import PixelShufflePack, ResidualBlockNoBN, make_layer
from .. import receptive_field as rf
from ..sr_base import SuperResolutionPreTrainedModel
from .configuration_edsr import EDSRConfig


def _upsample_stages(scale: int, mid_channels: int) -> nn.Sequential:
    """x2 pixel-shuffle stages for a power of two, one x3 stage for 3 (MMagic's UpsampleModule)."""
    if scale & (scale - 1) == 0:
        stages = [PixelShufflePack(mid_channels, mid_channels, 2, upsample_kernel=3) for _ in range(int(math.log2(scale)))]
    else:
        stages = [PixelShufflePack(mid_channels, mid_channels, 3, upsample_kernel=3)]
    return nn.Sequential(*stages)


class EDSR(SuperResolutionPreTrainedModel):
    """``conv_last(upsample(body(conv_first(x')) + conv_first(x')))`` on ``x' = (x - mean) / std``.

    Input (N, in_channels, H, W) in [0, 1] -> output (N, out_channels, H*s, W*s). The mean and
    std come from the config (non-persistent buffers: not in the state dict, as in MMagic).
    """

    config_class = EDSRConfig

    def __init__(self, config: EDSRConfig):
        super().__init__(config)
        mid = config.mid_channels
        self.register_buffer("mean", torch.tensor(config.rgb_mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.rgb_std).view(1, -1, 1, 1), persistent=False)
        self.conv_first = nn.Conv2d(config.in_channels, mid, 3, padding=1)
        self.body = make_layer(ResidualBlockNoBN, config.num_blocks, mid_channels=mid, res_scale=config.res_scale)
        self.conv_after_body = nn.Conv2d(mid, mid, 3, 1, 1)
        self.upsample = _upsample_stages(config.upscale_factor, mid)
        self.conv_last = nn.Conv2d(mid, config.out_channels, 3, 1, 1, bias=True)
        self.post_init()

    _init_weights_sets_buffers = True  # mean/std below: from_pretrained need not rebuild them

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if module is self:
            # Buffers built on the meta device by from_pretrained are refilled from the config.
            with torch.no_grad():
                self.mean.copy_(torch.tensor(self.config.rgb_mean).view(1, -1, 1, 1))
                self.std.copy_(torch.tensor(self.config.rgb_std).view(1, -1, 1, 1))

    def forward_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Normalisation, conv_first and the residual body, at LR resolution: -> (N, mid_channels, H, W)."""
        mean, std = self.mean.to(pixel_values), self.std.to(pixel_values)
        x = self.conv_first((pixel_values - mean) / std)
        return self.conv_after_body(self.body(x)) + x

    def forward_head(self, features: torch.Tensor, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pixel-shuffle upsampling and conv_last, de-normalised (``pixel_values`` is not used)."""
        mean, std = self.mean.to(features), self.std.to(features)
        return self.conv_last(self.upsample(features)) * std + mean

    def _receptive_ops(self) -> tuple[list[rf.Back], list[rf.Back]]:
        """The network as (features at LR, upsampling head); there is no skip."""
        features = [rf.conv(1)] * (2 + 2 * self.config.num_blocks)  # conv_first, body, conv_after_body
        stages = rf.upsampling_stages(self.config.upscale_factor)
        head = [op for factor in stages for op in (rf.conv(1), rf.shuffle(factor))] + [rf.conv(1)]  # conv_last
        return features, head

    def receptive_field(self) -> int | None:
        """``2B + 4`` LR pixels at every factor (B = num_blocks; 36 for 16 blocks). None for a
        subclass (it may change the network: the pipeline probes it)."""
        if type(self) is not EDSR:
            return None
        features, head = self._receptive_ops()
        return rf.chain_halo(self.config.upscale_factor, features + head)

    def split_receptive_fields(self) -> tuple[int, int] | None:
        """``(2B + 2, 2)``: the body's context, and the upsampling head's."""
        if type(self) is not EDSR:
            return None
        features, head = self._receptive_ops()
        return rf.chain_halo(1, features), rf.chain_halo(self.config.upscale_factor, head)


__all__ = ["EDSR"]
