"""RRDBNet: the Residual-in-Residual Dense Block network of ESRGAN / Real-ESRGAN (MMagic's `RRDBNet`)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ...layers import make_layer, mark_init_scale
from .. import receptive_field as rf
from ..sr_base import SuperResolutionPreTrainedModel
from .configuration_rrdbnet import RRDBNetConfig

_RES_SCALE = 0.2  # residual scaling of the dense blocks and of the RRDB (ESRGAN's beta)


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convs, each fed the block input and every earlier output (concatenated):
    ``x + 0.2 * conv5(cat(x, x1, ..., x4))``; (N, mid, H, W) -> same shape."""

    def __init__(self, mid_channels: int = 64, growth_channels: int = 32):
        super().__init__()
        for i in range(5):
            out_channels = mid_channels if i == 4 else growth_channels
            setattr(self, f"conv{i + 1}", nn.Conv2d(mid_channels + i * growth_channels, out_channels, 3, 1, 1))
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        mark_init_scale(self, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():  # autograd keeps every conv's input: MMagic's concatenations
            feats = [x]
            for i in range(1, 5):
                feats.append(self.lrelu(getattr(self, f"conv{i}")(torch.cat(feats, 1))))
            return x + self.conv5(torch.cat(feats, 1)) * _RES_SCALE
        # Inference: one buffer whose growing channel prefixes the convs read, instead of a new
        # concatenation per conv. The same numbers (bitwise), about a fifth less peak memory in the
        # trunk (bench_realesrganer.py: the trunk dominates RRDBNet's peak on whole images).
        channels, growth = x.shape[1], self.conv1.out_channels
        channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        buffer = x.new_empty((x.shape[0], channels + 4 * growth, *x.shape[2:])).contiguous(
            memory_format=torch.channels_last if channels_last else torch.contiguous_format
        )
        buffer[:, :channels] = x
        for i in range(1, 5):
            start = channels + (i - 1) * growth
            buffer[:, start:start + growth] = self.lrelu(getattr(self, f"conv{i}")(buffer[:, :start]))
        return self.conv5(buffer).mul_(_RES_SCALE).add_(x)


class RRDB(nn.Module):
    """Three dense blocks with a residual around them: ``x + 0.2 * rdb3(rdb2(rdb1(x)))``."""

    def __init__(self, mid_channels: int = 64, growth_channels: int = 32):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(mid_channels, growth_channels)
        self.rdb2 = ResidualDenseBlock(mid_channels, growth_channels)
        self.rdb3 = ResidualDenseBlock(mid_channels, growth_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.rdb3(self.rdb2(self.rdb1(x))) * _RES_SCALE


class RRDBNet(SuperResolutionPreTrainedModel):
    """``conv_last(lrelu(conv_hr(up(up(f)))))`` with ``f = c + conv_body(body(c))``, ``c = conv_first(x')``;
    ``up`` is nearest x2 then a conv and LeakyReLU(0.2); ``x'`` is the input, pixel-unshuffled by
    ``4 // upscale_factor`` at x1 / x2 (the trunk then runs at a half / quarter of the input's resolution).

    Input (N, in_channels, H, W) in [0, 1], H and W multiples of :meth:`input_multiple` -> output
    (N, out_channels, H*s, W*s).
    """

    config_class = RRDBNetConfig

    def __init__(self, config: RRDBNetConfig):
        super().__init__(config)
        mid = config.mid_channels
        unshuffle = self.input_multiple()
        self.conv_first = nn.Conv2d(config.in_channels * unshuffle * unshuffle, mid, 3, 1, 1)
        self.body = make_layer(RRDB, config.num_blocks, mid_channels=mid, growth_channels=config.growth_channels)
        self.conv_body = nn.Conv2d(mid, mid, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(mid, mid, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(mid, mid, 3, 1, 1)
        self.conv_hr = nn.Conv2d(mid, mid, 3, 1, 1)
        self.conv_last = nn.Conv2d(mid, config.out_channels, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        # MMagic: default_init_weights(..., 0.1) for these and for every dense-block conv
        mark_init_scale([self.conv_first, self.conv_body, self.conv_up1, self.conv_up2, self.conv_hr, self.conv_last], 0.1)
        self.post_init()

    def input_multiple(self) -> int:
        """4 // upscale_factor: the pixel-unshuffle factor, of which input sizes must be multiples."""
        return 4 // self.config.upscale_factor

    def forward_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pixel-unshuffle (x1/x2), conv_first and the trunk with its residual:
        (N, C, H, W) -> (N, mid_channels, H / m, W / m), m = :meth:`input_multiple`."""
        m = self.input_multiple()
        if m > 1:
            height, width = pixel_values.shape[-2:]
            if height % m or width % m:
                raise ValueError(
                    f"RRDBNet x{self.config.upscale_factor} pixel-unshuffles its input by {m}: height and width must be "
                    f"multiples of {m}, got {height}x{width}. Use hfmagic.SuperResolutionPipeline (or `hfmagic "
                    "upscale`), which pads any image (reflect) and crops the output, or pad it yourself."
                )
            pixel_values = F.pixel_unshuffle(pixel_values, m)
        feat = self.conv_first(pixel_values)
        return feat + self.conv_body(self.body(feat))

    def forward_head(self, features: torch.Tensor, pixel_values: torch.Tensor) -> torch.Tensor:
        """Two nearest x2 upsamplings with conv_up1 / conv_up2, then conv_hr and conv_last
        (``pixel_values`` is not used): (N, mid, h, w) -> (N, out_channels, 4h, 4w)."""
        feat = self.lrelu(self.conv_up1(F.interpolate(features, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))

    def _receptive_ops(self) -> tuple[list[rf.Back], list[rf.Back]]:
        """The network at the trunk's resolution, as (features, head); nearest x2 reads like a shuffle."""
        features = [rf.conv(1)] * (2 + 15 * self.config.num_blocks)  # conv_first, 5 convs per dense block, conv_body
        head = [rf.shuffle(2), rf.conv(1), rf.shuffle(2), rf.conv(1), rf.conv(1), rf.conv(1)]
        return features, head

    def receptive_field(self) -> int | None:
        """``m * (15B + 4)`` input pixels (B = num_blocks, m = :meth:`input_multiple`; 349 for the default
        x4 model), for tiles whose edges lie on multiples of m (the pipeline's). None for a subclass."""
        if type(self) is not RRDBNet:
            return None
        features, head = self._receptive_ops()
        return self.input_multiple() * rf.chain_halo(4, features + head)

    def split_receptive_fields(self) -> tuple[int, int] | None:
        """``(m * (15B + 2), 2m)``: the trunk's context and the head's, in input pixels."""
        if type(self) is not RRDBNet:
            return None
        features, head = self._receptive_ops()
        m = self.input_multiple()
        return m * rf.chain_halo(1, features), m * rf.chain_halo(4, head)


__all__ = ["RRDBNet"]
