"""Building blocks shared by several hfmagic networks (torch only).

Each block reproduces MMagic's module of the same name: same sub-module names (so state
dicts convert by renaming prefixes only), same forward, same initialisation scheme.

Initialisation is not done in ``__init__``: transformers' ``post_init`` re-initialises every
module, and ``from_pretrained`` only initialises the weights a checkpoint lacks. So each
block records the scheme it wants (``init_scale`` on the conv) and ``init_module`` applies
it, skipping tensors that were loaded (``_is_hf_initialized``).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "PixelShufflePack",
    "ResidualBlockNoBN",
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
    (MMagic's ``default_init_weights``). Conv2d/Linear without it: PyTorch's default init.
    Tensors already loaded from a checkpoint are left untouched.
    """
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        scale = getattr(module, "init_scale", None)
        if scale is None:
            _torch_default_(module)
        else:
            _kaiming_scaled_(module, scale)


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
