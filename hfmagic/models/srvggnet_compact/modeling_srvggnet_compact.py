"""SRVGGNetCompact: Real-ESRGAN's compact VGG-style super-resolution network."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .. import receptive_field as rf
from ..sr_base import SuperResolutionPreTrainedModel
from .configuration_srvggnet_compact import SRVGGNetCompactConfig


def _activation(act_type: str, channels: int) -> nn.Module:
    """Real-ESRGAN's activations: PReLU with one slope per channel, ReLU, or LeakyReLU(0.1)."""
    if act_type == "prelu":
        return nn.PReLU(num_parameters=channels)
    if act_type == "relu":
        return nn.ReLU(inplace=True)
    return nn.LeakyReLU(negative_slope=0.1, inplace=True)


class SRVGGNetCompact(SuperResolutionPreTrainedModel):
    """``pixel_shuffle(body(x)) + nearest(x)``, with ``body`` = conv, act, ``num_convs`` x (conv, act),
    conv to ``out_channels * s^2`` channels, all 3x3 at the input's resolution.

    Input (N, in_channels, H, W) in [0, 1] -> output (N, out_channels, H*s, W*s). ``body`` is an
    ``nn.ModuleList`` (convs at even indices, activations at odd ones), so the state-dict keys are
    Real-ESRGAN's (``body.0.weight``, ``body.1.weight`` for a PReLU, ...). PyTorch's default init.
    """

    config_class = SRVGGNetCompactConfig

    def __init__(self, config: SRVGGNetCompactConfig):
        super().__init__(config)
        mid, scale = config.mid_channels, config.upscale_factor
        self.body = nn.ModuleList([nn.Conv2d(config.in_channels, mid, 3, 1, 1), _activation(config.act_type, mid)])
        for _ in range(config.num_convs):
            self.body.extend([nn.Conv2d(mid, mid, 3, 1, 1), _activation(config.act_type, mid)])
        self.body.append(nn.Conv2d(mid, config.out_channels * scale * scale, 3, 1, 1))
        self.upsampler = nn.PixelShuffle(scale)
        self.post_init()

    def forward_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The whole body at LR resolution: (N, C, H, W) -> (N, out_channels * s^2, H, W)."""
        out = pixel_values
        for layer in self.body:
            out = layer(out)
        return out

    def forward_head(self, features: torch.Tensor, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pixel shuffle of ``features`` plus the nearest-upsampled ``pixel_values`` (which copies
        pixels: position-invariant, exact under tiling)."""
        base = F.interpolate(pixel_values, scale_factor=self.config.upscale_factor, mode="nearest")
        return self.upsampler(features) + base

    def _receptive_ops(self) -> tuple[list[rf.Back], list[rf.Back], list[rf.Back]]:
        """The network as (body at LR, pixel shuffle, nearest skip of the input)."""
        scale = self.config.upscale_factor
        features = [rf.conv(1)] * (self.config.num_convs + 2)  # first conv, num_convs, last conv
        # nearest upsampling reads input pixel q // s for output pixel q, as a pixel shuffle does
        return features, [rf.shuffle(scale)], [rf.shuffle(scale)]

    def receptive_field(self) -> int | None:
        """``num_convs + 2`` LR pixels at every factor (18 for realesr-animevideov3, 34 for
        realesr-general-x4v3). None for a subclass (it may change the network: the pipeline probes it)."""
        if type(self) is not SRVGGNetCompact:
            return None
        features, head, skip = self._receptive_ops()
        return rf.chain_halo(self.config.upscale_factor, features + head, skip)

    def split_receptive_fields(self) -> tuple[int, int] | None:
        """``(num_convs + 2, 0)``: the body's context; the head (pixel shuffle, nearest skip) needs none."""
        if type(self) is not SRVGGNetCompact:
            return None
        features, head, skip = self._receptive_ops()
        return rf.chain_halo(1, features), rf.chain_halo(self.config.upscale_factor, head, skip)


__all__ = ["SRVGGNetCompact"]
