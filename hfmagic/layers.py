"""Building blocks shared by several hfmagic networks (torch only).

Each block reproduces MMagic's module of the same name: same sub-module names (so state
dicts convert by renaming prefixes only), same forward, same initialisation scheme.

Initialisation is not done in ``__init__``: transformers' ``post_init`` re-initialises every
module, and ``from_pretrained`` only initialises the weights a checkpoint lacks. So each
block records the scheme it wants (``init_scale`` on the conv) and ``init_module`` applies
it, skipping tensors that were loaded (``_is_hf_initialized``).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "PixelShufflePack",
    "ResidualBlockNoBN",
    "exact_interpolation",
    "interpolate_upsample",
    "periodic_upsample",
    "make_layer",
    "default_init_weights",
    "init_module",
    "mark_init_scale",
]


def _loaded(tensor: torch.Tensor | None) -> bool:
    """True when transformers loaded this tensor from a checkpoint (do not overwrite it)."""
    return tensor is None or getattr(tensor, "_is_hf_initialized", False)


def _kaiming_scaled_(module: nn.Module, scale: float, bias_fill: float = 0.0) -> None:
    if not _loaded(module.weight):
        with torch.no_grad():
            nn.init.kaiming_normal_(module.weight, a=0, mode="fan_in", nonlinearity="relu")
            module.weight.mul_(scale)
    if getattr(module, "bias", None) is not None and not _loaded(module.bias):
        with torch.no_grad():
            module.bias.fill_(bias_fill)


def _torch_default_(module: nn.Module) -> None:
    """PyTorch's own ``reset_parameters`` for conv/linear, tensor by tensor."""
    weight = module.weight
    if not _loaded(weight):
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    bias = getattr(module, "bias", None)
    if bias is not None and not _loaded(bias):
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        nn.init.uniform_(bias, -bound, bound)


def mark_init_scale(modules: nn.Module | list[nn.Module], scale: float) -> None:
    """Ask for MMagic's ``default_init_weights(modules, scale)`` on every Conv2d/Linear inside."""
    for module in modules if isinstance(modules, (list, tuple)) else [modules]:
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.init_scale = scale


def init_module(module: nn.Module) -> None:
    """Initialise one module by the scheme recorded on it (call from ``_init_weights``).

    Conv2d/Linear with ``init_scale``: kaiming normal (fan_in, relu) times the scale, bias 0
    (MMagic's ``default_init_weights``). Conv2d/Linear without it, and any other layer with a
    ``reset_parameters`` (norms, PReLU, transposed convs): PyTorch's default init. Tensors already
    loaded from a checkpoint are left untouched.
    """
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        scale = getattr(module, "init_scale", None)
        if scale is None:
            _torch_default_(module)
        else:
            _kaiming_scaled_(module, scale)
    elif isinstance(module, nn.modules.batchnorm._NormBase):  # BatchNorm, InstanceNorm: tensor by tensor
        with torch.no_grad():
            for name, fill in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0), ("num_batches_tracked", 0)):
                tensor = getattr(module, name, None)
                if not _loaded(tensor):
                    tensor.fill_(fill)
    elif hasattr(module, "reset_parameters"):
        # any other layer (PReLU, GroupNorm, ConvTranspose2d, Embedding...): PyTorch's own init,
        # unless the checkpoint gave it its tensors
        own = [t for t in (*module.parameters(recurse=False), *module.buffers(recurse=False)) if t is not None]
        if own and not any(_loaded(t) for t in own):
            with torch.no_grad():
                module.reset_parameters()


def default_init_weights(modules: nn.Module | list[nn.Module], scale: float = 1.0) -> None:
    """MMagic's ``default_init_weights``: record the scale, then initialise now."""
    mark_init_scale(modules, scale)
    for module in modules if isinstance(modules, (list, tuple)) else [modules]:
        for m in module.modules():
            init_module(m)


class PixelShufflePack(nn.Module):
    """Conv to ``out_channels * scale_factor**2`` channels, then pixel shuffle; no activation.

    Input (N, in_channels, H, W) -> output (N, out_channels, H*scale_factor, W*scale_factor).
    """

    def __init__(self, in_channels: int, out_channels: int, scale_factor: int, upsample_kernel: int):
        super().__init__()
        self.scale_factor = scale_factor
        self.upsample_conv = nn.Conv2d(
            in_channels,
            out_channels * scale_factor * scale_factor,
            upsample_kernel,
            padding=(upsample_kernel - 1) // 2,
        )
        mark_init_scale(self.upsample_conv, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.upsample_conv(x), self.scale_factor)


class ResidualBlockNoBN(nn.Module):
    """``x + conv2(relu(conv1(x))) * res_scale`` with 3x3 convs; shape preserved.

    Kaiming init x0.1 only when ``res_scale == 1.0`` (MMagic), otherwise PyTorch's default.
    """

    def __init__(self, mid_channels: int = 64, res_scale: float = 1.0):
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(mid_channels, mid_channels, 3, 1, 1, bias=True)
        self.conv2 = nn.Conv2d(mid_channels, mid_channels, 3, 1, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        if res_scale == 1.0:
            mark_init_scale([self.conv1, self.conv2], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.relu(self.conv1(x)))
        if self.res_scale != 1.0:
            out = out * self.res_scale
        return x + out


def make_layer(block: type[nn.Module], num_blocks: int, **kwargs) -> nn.Sequential:
    """``nn.Sequential`` of ``num_blocks`` blocks built as ``block(**kwargs)`` (keys ``.0``, ``.1``, ...)."""
    return nn.Sequential(*(block(**kwargs) for _ in range(num_blocks)))


def _cubic(t: float, a: float = -0.75) -> list[float]:
    """PyTorch's bicubic weights (Keys, ``a = -0.75``) of the taps at -1, 0, 1, 2 for a source point
    ``t`` in [0, 1) past tap 0, evaluated in float32 by PyTorch's formulas (same rounding)."""
    t, a, one = np.float32(t), np.float32(a), np.float32(1)

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + one

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [float(far(t + one)), float(near(t)), float(near(one - t)), float(far(one - t + one))]


def _phase_taps(scale: int, mode: str) -> list[tuple[int, list[float]]]:
    """For each output phase p (output pixel ``scale * i + p``): the offset from input pixel i of
    the first tap and the tap weights, from the source point ``(p + 0.5) / scale - 0.5`` (float32)."""
    taps = []
    for phase in range(scale):
        source = float(np.float32((2 * phase + 1 - scale) / (2 * scale)))
        base = math.floor(source)
        t = float(np.float32(source - base))
        if mode == "bilinear":
            taps.append((base, [float(np.float32(1) - np.float32(t)), t]))
        else:
            taps.append((base - 1, _cubic(t)))
    return taps


# Set by `exact_interpolation()`: models' interpolations switch to `periodic_upsample`.
_EXACT_INTERPOLATION: contextvars.ContextVar[bool] = contextvars.ContextVar("hfmagic_exact_interpolation", default=False)


@contextlib.contextmanager
def exact_interpolation(enabled: bool = True) -> Iterator[None]:
    """Within this context, :func:`interpolate_upsample` (the models' bicubic/bilinear upsampling)
    computes with :func:`periodic_upsample`, whose value at a pixel does not depend on the pixel's
    position or the tensor's shape (the pipeline's exact tiling uses it)."""
    token = _EXACT_INTERPOLATION.set(enabled)
    try:
        yield
    finally:
        _EXACT_INTERPOLATION.reset(token)


def interpolate_upsample(x: torch.Tensor, scale: int, mode: str) -> torch.Tensor:
    """``F.interpolate(x, scale_factor=scale, mode=mode, align_corners=False)`` (MMagic's numbers,
    bit for bit), or :func:`periodic_upsample` inside :func:`exact_interpolation`."""
    # exact mode is an eager, CPU-only setting; torch.compile cannot trace a ContextVar (a graph break)
    if not torch.compiler.is_compiling() and _EXACT_INTERPOLATION.get():
        return periodic_upsample(x, scale, mode)
    return F.interpolate(x, scale_factor=scale, mode=mode, align_corners=False)


def periodic_upsample(x: torch.Tensor, scale: int, mode: str) -> torch.Tensor:
    """``F.interpolate(x, scale_factor=scale, mode=mode, align_corners=False)`` for an integer scale,
    computed so that every output pixel depends only on its neighbourhood, not on its position.

    At an integer scale both modes are periodic filters: output pixel ``s * i + p`` is a fixed
    combination of input pixels ``i + offset(p) + k`` (2 taps for ``"bilinear"``, 4 for PyTorch's
    ``"bicubic"``, a = -0.75), with indices clamped at the border (replicate padding). The weights
    are computed once per phase, and the taps are summed as shifted slices, columns first then
    rows, with PyTorch's CPU arithmetic: float32 weights, ``fma(x0, w0, x1 * w1)`` then
    ``fma(xk, wk, acc)`` (emulated exactly in float64, then rounded to float32 at each step).
    ``F.interpolate`` instead derives each pixel's source point from its absolute output index in
    float32, so at x3 (``(j + 0.5) / 3`` is inexact) a tile gets slightly different weights than
    the whole image. Measured: bitwise equal to ``F.interpolate`` on float32 CPU tensors at
    power-of-two scales; within ~3e-6 at x3 for inputs in [0, 1] (ours has the exact weights).

    Args:
        x: (N, C, H, W) floating tensor.
        scale: positive integer factor.
        mode: ``"bilinear"`` or ``"bicubic"``.
    Returns:
        (N, C, H * scale, W * scale), same dtype and device.
    """
    if mode not in ("bilinear", "bicubic"):
        raise ValueError(f"mode must be 'bilinear' or 'bicubic', got {mode!r}.")
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}.")
    scale = int(scale)
    taps = _phase_taps(scale, mode)
    before = -min(offset for offset, _ in taps)
    after = max(offset + len(weights) - 1 for offset, weights in taps)
    n, c, h, w = x.shape
    if x.dtype == torch.float64:
        work, step = x, (lambda t: t)
    else:
        # A float32 product is exact in float64, so round(a * b + c) to float32 is PyTorch's fma.
        work, step = x.double(), (lambda t: t.float().double())
    padded = F.pad(work, (before, after, before, after), mode="replicate")
    if mode == "bilinear":
        return _bilinear(padded, taps, before, h, w, step).to(x.dtype)

    def phases(source: torch.Tensor, dim: int, length: int) -> torch.Tensor:
        out = []
        for offset, weights in taps:
            def tap(k: int, offset: int = offset) -> torch.Tensor:
                return source.narrow(dim, before + offset + k, length)

            acc = step(tap(1) * weights[1])
            for k, weight in [(0, weights[0]), (2, weights[2]), (3, weights[3])]:
                acc = step(tap(k) * weight + acc)
            out.append(acc)
        return torch.stack(out, dim=dim + 1)  # phase right after its axis: interleaves on reshape

    cols = phases(padded, 3, w).reshape(n, c, h + before + after, w * scale)
    return phases(cols, 2, h).reshape(n, c, h * scale, w * scale).to(x.dtype)


def _bilinear(padded: torch.Tensor, taps: list, before: int, h: int, w: int, step) -> torch.Tensor:
    """The bilinear case of :func:`interpolate_upsample`: per output phase, the four taps with the
    2D weights ``wy * wx`` summed as ``fma(D, w11, fma(C, w10, fma(A, w00, B * w01)))`` (PyTorch's
    CPU kernel). A negative source point is clamped to 0 as PyTorch does (weights 1 and 0 in the
    first row/column of the image), which only changes the image's first output row/column."""
    n, c = padded.shape[:2]
    scale = len(taps)

    def axis_weights(offset: int, weights: list[float], size: int, dim: int):
        w0 = torch.full((size,), weights[0], dtype=padded.dtype)
        w1 = torch.full((size,), weights[1], dtype=padded.dtype)
        if offset < 0:
            w0[0], w1[0] = 1.0, 0.0
        shape = (size, 1) if dim == 2 else (1, size)
        return w0.view(shape), w1.view(shape)

    rows = []
    for oy, wy in taps:
        wy0, wy1 = axis_weights(oy, wy, h, 2)
        cols = []
        for ox, wx in taps:
            wx0, wx1 = axis_weights(ox, wx, w, 3)

            def tap(dy: int, dx: int, oy: int = oy, ox: int = ox) -> torch.Tensor:
                return padded[:, :, before + oy + dy : before + oy + dy + h, before + ox + dx : before + ox + dx + w]

            acc = step(tap(0, 1) * step(wy0 * wx1))
            acc = step(tap(0, 0) * step(wy0 * wx0) + acc)
            acc = step(tap(1, 0) * step(wy1 * wx0) + acc)
            acc = step(tap(1, 1) * step(wy1 * wx1) + acc)
            cols.append(acc)
        rows.append(torch.stack(cols, dim=4))  # (N, C, h, w, px)
    return torch.stack(rows, dim=3).reshape(n, c, h * scale, w * scale)  # (N, C, h, py, w, px)
