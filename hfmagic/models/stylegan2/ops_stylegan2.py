"""StyleGAN2's ops in plain PyTorch (no compiled extension): FIR up/down-sampling (``upfirdn2d``),
the fused bias + LeakyReLU, and the equalized-learning-rate layers.

``upfirdn2d`` computes what mmcv 2.x's ``upfirdn2d`` computes (its pure-PyTorch reference path,
NVIDIA's definition): per channel, insert ``up - 1`` zeros after each pixel, pad (negative: crop),
convolve with the filter (a true convolution: the filter is flipped), keep every ``down``-th pixel.
It is faster than the literal recipe: upsampling is one depthwise transposed convolution (no
zero-filled buffer), downsampling is a strided convolution (no discarded outputs), and a 1-D
filter is applied as two 1-D passes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "upfirdn2d",
    "fused_bias_leakyrelu",
    "make_kernel",
    "Blur",
    "UpsampleUpFIRDn",
    "FusedBiasLeakyReLU",
    "EqualLinearActModule",
    "EqualizedLRConv2d",
    "PixelNorm",
]


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if len(value) != 2:
        raise ValueError(f"{name} must be an int or (x, y), got {value!r}.")
    return int(value[0]), int(value[1])


def _padding(padding: int | Sequence[int]) -> tuple[int, int, int, int]:
    """mmcv's padding forms: p, (px, py) or (px0, px1, py0, py1) -> (px0, px1, py0, py1)."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        return padding[0], padding[0], padding[1], padding[1]
    if len(padding) == 4:
        return tuple(padding)  # type: ignore[return-value]
    raise ValueError(f"padding must be an int, (px, py) or (px0, px1, py0, py1), got {padding!r}.")


def _pad_or_crop(x: torch.Tensor, px0: int, px1: int, py0: int, py1: int) -> torch.Tensor:
    if min(px0, px1, py0, py1) >= 0:
        return F.pad(x, [px0, px1, py0, py1]) if (px0 or px1 or py0 or py1) else x
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    return x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]


def _upsample(x: torch.Tensor, f: torch.Tensor, up: int, p0: int, p1: int, dim: int) -> torch.Tensor:
    """1-D zero-insertion upsampling + padding + convolution along ``dim`` (2: y, 3: x), as one depthwise
    transposed convolution: output m = up * i + k - (K - 1 - p0) for input i and filter tap k."""
    channels, size, taps = x.shape[1], x.shape[dim], f.shape[0]
    shape = (channels, 1, taps, 1) if dim == 2 else (channels, 1, 1, taps)
    stride = (up, 1) if dim == 2 else (1, up)
    y = F.conv_transpose2d(x, f.reshape(1, 1, *shape[2:]).expand(shape), stride=stride, groups=channels)
    # y's length is (size - 1) * up + taps; the wanted window starts at taps - 1 - p0
    start, length = taps - 1 - p0, size * up + p0 + p1 - taps + 1
    end = start + length
    before, after = max(-start, 0), max(end - y.shape[dim], 0)
    y = y.narrow(dim, max(start, 0), min(end, y.shape[dim]) - max(start, 0))
    if before or after:
        y = F.pad(y, [0, 0, before, after] if dim == 2 else [before, after])
    return y


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor,
    up: int | Sequence[int] = 1,
    down: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
) -> torch.Tensor:
    """Upsample, pad, FIR-filter and downsample each channel of ``x`` (N, C, H, W).

    Args:
        x: (N, C, H, W) float tensor.
        f: the filter: (kh, kw) (2-D), or (k,) (separable: the same 1-D filter along x then y).
            Applied as a convolution (flipped), with no normalisation or gain: pass it scaled.
        up, down: integer factors, one or (x, y).
        padding: zeros added to the upsampled image (negative: crop), as mmcv: ``p``,
            ``(px, py)`` or ``(px0, px1, py0, py1)``.
    Returns:
        (N, C, (H * up_y + py0 + py1 - kh + 1) // down_y rounded up, ... likewise for W).
    """
    if x.dim() != 4:
        raise ValueError(f"upfirdn2d expects (N, C, H, W), got a tensor of shape {tuple(x.shape)}.")
    if f.dim() not in (1, 2):
        raise ValueError(f"upfirdn2d's filter must be 1-D (separable) or 2-D, got shape {tuple(f.shape)}.")
    upx, upy = _pair(up, "up")
    downx, downy = _pair(down, "down")
    px0, px1, py0, py1 = _padding(padding)
    f = f.to(device=x.device, dtype=x.dtype)
    channels = x.shape[1]
    if f.dim() == 2:
        if upx > 1 or upy > 1:  # a 2-D filter with upsampling: the literal zero insertion (unused by StyleGAN2)
            n, c, h, w = x.shape
            x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, upx - 1, 0, 0, 0, upy - 1]).reshape(n, c, h * upy, w * upx)
        x = _pad_or_crop(x, px0, px1, py0, py1)
        weight = f.flip([0, 1])[None, None].expand(channels, 1, *f.shape)
        return F.conv2d(x, weight, stride=(downy, downx), groups=channels)
    # separable: along x, then along y
    for dim, up_, down_, p0, p1 in ((3, upx, downx, px0, px1), (2, upy, downy, py0, py1)):
        if up_ > 1:
            x = _upsample(x, f, up_, p0, p1, dim)
            if down_ > 1:
                x = x[:, :, :, ::down_] if dim == 3 else x[:, :, ::down_]
            continue
        x = _pad_or_crop(x, p0, p1, 0, 0) if dim == 3 else _pad_or_crop(x, 0, 0, p0, p1)
        shape = (channels, 1, 1, f.shape[0]) if dim == 3 else (channels, 1, f.shape[0], 1)
        stride = (1, down_) if dim == 3 else (down_, 1)
        x = F.conv2d(x, f.flip(0).reshape(1, 1, *shape[2:]).expand(shape), stride=stride, groups=channels)
    return x


def fused_bias_leakyrelu(x: torch.Tensor, bias: torch.Tensor | None, negative_slope: float = 0.2, scale: float = 2**0.5) -> torch.Tensor:
    """``leaky_relu(x + bias, negative_slope) * scale``, the bias per channel (dim 1), as mmcv's op."""
    if bias is not None:
        x = x + bias.to(x.dtype).reshape([-1 if i == 1 else 1 for i in range(x.dim())])
    x = F.leaky_relu(x, negative_slope)
    return x * scale if scale != 1 else x


def make_kernel(kernel: Sequence[float]) -> torch.Tensor:
    """MMagic's ``make_kernel``: the 1-D taps' outer product, normalised to sum 1 -> (k, k) float32."""
    k = torch.tensor(list(kernel), dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum()


def _separable(kernel: Sequence[float], gain: float) -> torch.Tensor:
    """The 1-D filter whose outer product with itself is ``make_kernel(kernel) * gain ** 2``."""
    k = torch.tensor(list(kernel), dtype=torch.float64)
    return (k / k.sum() * gain).float()


class Blur(nn.Module):
    """FIR blur (MMagic's ``Blur``): ``upfirdn2d`` with the normalised kernel (times ``upsample_factor ** 2``)
    and padding ``pad`` = (p0, p1) on both axes. The kernel is a non-persistent buffer (rebuilt from
    the config), so it is not in the weights."""

    def __init__(self, kernel: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        self.register_buffer("kernel", _separable(kernel, upsample_factor), persistent=False)
        self.pad = (pad[0], pad[1], pad[0], pad[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, padding=self.pad)


class UpsampleUpFIRDn(nn.Module):
    """2x FIR upsampling of the ToRGB skip (MMagic's ``UpsampleUpFIRDn``)."""

    def __init__(self, kernel: Sequence[float], factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", _separable(kernel, factor), persistent=False)
        p = len(kernel) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2, (p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, padding=self.pad)


class FusedBiasLeakyReLU(nn.Module):
    """Per-channel ``bias`` (zeros) + LeakyReLU(0.2) times sqrt(2) (mmcv's ``FusedBiasLeakyReLU``)."""

    def __init__(self, num_channels: int, negative_slope: float = 0.2, scale: float = 2**0.5):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.negative_slope, self.scale = negative_slope, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_bias_leakyrelu(x, self.bias, self.negative_slope, self.scale)


class PixelNorm(nn.Module):
    """``x / (||x||_2 / sqrt(C) + eps)`` over dim 1 (MMagic's ``PixelNorm``; eps outside the root)."""

    def __init__(self, eps: float = 1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(x, ord=2, dim=1, keepdim=True) / math.sqrt(x.shape[1])
        return x / (norm + self.eps)


class _EqualizedLinear(nn.Module):
    """A bias-free linear layer whose stored ``weight`` (N(0, 1 / lr_mul) at init) is scaled by
    ``gain * lr_mul / sqrt(fan_in)`` at every call (equalized learning rate; MMagic's
    ``EqualizedLRLinearModule``, whose ``weight_orig`` is this ``weight``)."""

    def __init__(self, in_features: int, out_features: int, gain: float = 1.0, lr_mul: float = 1.0):
        super().__init__()
        self.in_features, self.out_features, self.lr_mul = in_features, out_features, lr_mul
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.scale = gain * lr_mul / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale)


class EqualLinearActModule(nn.Module):
    """Equalized-lr linear layer, its ``bias`` (times ``lr_mul``) kept outside, and an optional fused
    bias + LeakyReLU (MMagic's ``EqualLinearActModule``; ``linear.weight`` and ``bias``)."""

    def __init__(self, in_features: int, out_features: int, lr_mul: float = 1.0, bias_init: float = 0.0, activate: bool = False):
        super().__init__()
        self.linear = _EqualizedLinear(in_features, out_features, lr_mul=lr_mul)
        self.lr_mul, self.bias_init, self.activate = lr_mul, bias_init, activate
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() >= 3:
            x = x.reshape(x.shape[0], -1)
        x = self.linear(x)
        bias = self.bias * self.lr_mul
        return fused_bias_leakyrelu(x, bias) if self.activate else x + bias


class _ConvWeight(nn.Module):
    """Holds the ``weight`` of :class:`EqualizedLRConv2d` under ``conv`` (mmcv's ``ConvModule.conv``)."""

    def __init__(self, out_channels: int, in_channels: int, kernel_size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))


class EqualizedLRConv2d(nn.Module):
    """A bias-free convolution with an equalized-lr ``weight`` (N(0, 1) at init, scaled by
    ``1 / sqrt(fan_in)``): mmcv's ``ConvModule`` inside MMagic's ``EqualizedLRConvModule``, whose
    ``conv.weight_orig`` is this ``conv.weight``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.conv = _ConvWeight(out_channels, in_channels, kernel_size)
        self.stride, self.padding = stride, padding
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.conv.weight * self.scale, stride=self.stride, padding=self.padding)
