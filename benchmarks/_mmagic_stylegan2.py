"""MMagic's own StyleGAN2 generator and discriminator, run from MMagic's source files, as the
reference for hfmagic's (outputs and speed).

``import mmagic`` needs mmcv's compiled ops, so MMagic's module files (``pggan_modules.py``,
``stylegan1_modules.py``, ``stylegan_utils.py``, ``stylegan2_modules.py``,
``stylegan2_generator.py``, ``stylegan2_discriminator.py``) are executed as they are, with small
stand-ins for what they import:

- mmcv's ops: ``upfirdn2d`` and ``fused_bias_leakyrelu`` are written here from their published
  definitions (mmcv 2.x's pure-PyTorch reference paths, which MMagic runs on CPU: zero insertion,
  padding, a true convolution with the FIR filter, decimation; ``leaky_relu(x + bias) * scale``);
  ``conv2d`` / ``conv_transpose2d`` are PyTorch's (what mmcv's gradfix versions call on CPU);
  ``ConvModule`` is a ``conv`` attribute holding an ``nn.Conv2d`` (no norm, no activation: all
  StyleGAN2 uses);
- mmengine: ``BaseModule`` (an ``nn.Module`` with ``init_cfg``), ``normal_init``, ``print_log``,
  ``is_seq_of``, an ``autocast`` that does nothing when disabled, ``get_dist_info``;
- MMagic: the ``MODELS`` registry decorator, ``get_module_device``; the conditional / ADA parts
  (StyleGAN3's ``MappingNetwork``, ``AugmentPipe``) are never built.

The source is found as in ``_mmagic_reference.py``: the ``source`` argument, ``$HFMAGIC_MMAGIC_SOURCE``
(a wheel from ``pip download --no-deps mmagic==1.2.0`` or a folder holding ``mmagic/``), or an
installed ``mmagic`` package (found, not imported).
"""

from __future__ import annotations

import contextlib
import os
import types

import torch
import torch.nn.functional as F
from torch import nn

from _mmagic_reference import _REGISTRY, _BaseModule, _exec_modules, _read, _stub, find_mmagic_source

__all__ = ["load_mmagic_stylegan2", "reference_upfirdn2d", "reference_fused_bias_leakyrelu", "mmagic_twins"]

_ROOT = "mmagic/models/editors/"
_FILES = {
    "mmagic.models.editors.pggan.pggan_modules": _ROOT + "pggan/pggan_modules.py",
    "mmagic.models.editors.stylegan1.stylegan1_modules": _ROOT + "stylegan1/stylegan1_modules.py",
    "mmagic.models.editors.stylegan1.stylegan_utils": _ROOT + "stylegan1/stylegan_utils.py",
    "mmagic.models.editors.stylegan2.stylegan2_modules": _ROOT + "stylegan2/stylegan2_modules.py",
    "mmagic.models.editors.stylegan2.stylegan2_generator": _ROOT + "stylegan2/stylegan2_generator.py",
    "mmagic.models.editors.stylegan2.stylegan2_discriminator": _ROOT + "stylegan2/stylegan2_discriminator.py",
}


# ----------------------------------------------------------------------------- mmcv's reference ops
def reference_upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl="ref"):
    """mmcv 2.x ``upfirdn2d`` by its definition: per channel, insert up-1 zeros after each pixel, pad
    (negative: crop; ``p``, ``(px, py)`` or ``(px0, px1, py0, py1)``), convolve with ``f`` (flipped
    unless ``flip_filter``; times ``gain ** (f.ndim / 2)``), keep every ``down``-th pixel."""
    upx, upy = (up, up) if isinstance(up, int) else up
    downx, downy = (down, down) if isinstance(down, int) else down
    if isinstance(padding, int):
        padding = [padding, padding]
    if len(padding) == 2:
        padding = [padding[0], padding[0], padding[1], padding[1]]
    px0, px1, py0, py1 = padding
    n, c, h, w = x.shape
    x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, upx - 1, 0, 0, 0, upy - 1]).reshape(n, c, h * upy, w * upx)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
    f = (f * gain ** (f.ndim / 2)).to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f[None, None].repeat([c, 1] + [1] * f.ndim)
    if f.ndim == 4:
        x = F.conv2d(x, f, groups=c)
    else:
        x = F.conv2d(F.conv2d(x, f.unsqueeze(2), groups=c), f.unsqueeze(3), groups=c)
    return x[:, :, ::downy, ::downx]


def reference_fused_bias_leakyrelu(x, bias, negative_slope=0.2, scale=2**0.5):
    """mmcv's ``bias_leakyrelu_ref``: ``leaky_relu(x + bias (per channel), negative_slope) * scale``."""
    if bias is not None:
        x = x + bias.reshape([-1 if i == 1 else 1 for i in range(x.ndim)])
    x = F.leaky_relu(x, negative_slope)
    return x * scale if scale != 1 else x


class _FusedBiasLeakyReLU(nn.Module):
    def __init__(self, num_channels, negative_slope=0.2, scale=2**0.5):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.negative_slope, self.scale = negative_slope, scale

    def forward(self, x):
        return reference_fused_bias_leakyrelu(x, self.bias, self.negative_slope, self.scale)


class _ConvModule(nn.Module):  # mmcv.cnn.ConvModule with norm_cfg=None and act_cfg=None only
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias="auto", norm_cfg=None, act_cfg=None, **kwargs):
        super().__init__()
        if norm_cfg is not None or act_cfg is not None:
            raise NotImplementedError("the ConvModule stand-in has no norm or activation")
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias is True)

    def forward(self, x, **kwargs):
        return self.conv(x)


# ----------------------------------------------------------------------------- loading
def load_mmagic_stylegan2(source: str | os.PathLike | None = None) -> types.SimpleNamespace | None:
    """``namespace(StyleGAN2Generator=..., StyleGAN2Discriminator=..., source=...)``: MMagic's classes,
    or ``None`` without a source."""
    path = find_mmagic_source(source)
    if path is None:
        return None
    texts = _read(path, list(_FILES.values()))

    def normal_init(module, mean=0.0, std=1.0, bias=0.0):
        nn.init.normal_(module.weight, mean, std)
        if getattr(module, "bias", None) is not None:
            nn.init.constant_(module.bias, bias)

    def is_seq_of(seq, expected_type):
        return isinstance(seq, (list, tuple)) and all(isinstance(item, expected_type) for item in seq)

    @contextlib.contextmanager
    def autocast(enabled=True, **kwargs):
        if enabled:
            raise NotImplementedError("the autocast stand-in runs fp32 only")
        yield

    stubs = {
        "mmcv": _stub("mmcv"),
        "mmcv.cnn": _stub("mmcv.cnn"),
        "mmcv.cnn.bricks": _stub("mmcv.cnn.bricks", ConvModule=_ConvModule, build_norm_layer=None),
        "mmcv.ops": _stub("mmcv.ops", conv2d=F.conv2d, conv_transpose2d=F.conv_transpose2d, upfirdn2d=reference_upfirdn2d),
        "mmcv.ops.upfirdn2d": _stub("mmcv.ops.upfirdn2d", upfirdn2d=reference_upfirdn2d),
        "mmcv.ops.fused_bias_leakyrelu": _stub(
            "mmcv.ops.fused_bias_leakyrelu", FusedBiasLeakyReLU=_FusedBiasLeakyReLU, fused_bias_leakyrelu=reference_fused_bias_leakyrelu
        ),
        "mmengine": _stub("mmengine", print_log=lambda *a, **k: None, is_seq_of=is_seq_of),
        "mmengine.model": _stub("mmengine.model", BaseModule=_BaseModule, normal_init=normal_init),
        "mmengine.dist": _stub("mmengine.dist", get_dist_info=lambda: (0, 1)),
        "mmengine.runner": _stub("mmengine.runner"),
        "mmengine.runner.amp": _stub("mmengine.runner.amp", autocast=autocast),
        "mmengine.runner.checkpoint": _stub("mmengine.runner.checkpoint", _load_checkpoint_with_prefix=None),
        "mmagic": _stub("mmagic"),
        "mmagic.registry": _stub("mmagic.registry", MODELS=_REGISTRY),
        "mmagic.models": _stub("mmagic.models"),
        "mmagic.models.archs": _stub("mmagic.models.archs", AllGatherLayer=None),
        "mmagic.models.utils": _stub("mmagic.models.utils", get_module_device=lambda m: next(m.parameters()).device),
        "mmagic.models.editors": _stub("mmagic.models.editors"),
        "mmagic.models.editors.pggan": _stub("mmagic.models.editors.pggan"),
        "mmagic.models.editors.stylegan1": _stub("mmagic.models.editors.stylegan1"),
        "mmagic.models.editors.stylegan2": _stub("mmagic.models.editors.stylegan2"),
        "mmagic.models.editors.stylegan2.ada": _stub("mmagic.models.editors.stylegan2.ada"),
        "mmagic.models.editors.stylegan2.ada.augment": _stub("mmagic.models.editors.stylegan2.ada.augment", AugmentPipe=None),
        "mmagic.models.editors.stylegan2.ada.misc": _stub("mmagic.models.editors.stylegan2.ada.misc", constant=None),
        "mmagic.models.editors.stylegan3": _stub("mmagic.models.editors.stylegan3"),
        "mmagic.models.editors.stylegan3.stylegan3_modules": _stub("mmagic.models.editors.stylegan3.stylegan3_modules", MappingNetwork=None),
    }
    loaded = _exec_modules(path, _FILES, texts, stubs)
    return types.SimpleNamespace(
        StyleGAN2Generator=loaded["mmagic.models.editors.stylegan2.stylegan2_generator"].StyleGAN2Generator,
        StyleGAN2Discriminator=loaded["mmagic.models.editors.stylegan2.stylegan2_discriminator"].StyleGAN2Discriminator,
        source=str(path),
    )


def to_mmagic_state(state: dict) -> dict:
    """hfmagic's state dict in MMagic's names: ``weight_orig`` for the equalized-lr tensors (the
    blur kernels are MMagic's own buffers, built by its modules)."""
    equalized = (".linear.weight", "conv.weight")
    return {
        (k + "_orig" if k.endswith(equalized) and "noise_injector" not in k else k): v
        for k, v in state.items()
    }


def mmagic_twins(generator=None, discriminator=None, networks=None):
    """MMagic's generator / discriminator with the weights of hfmagic's (same config), in eval mode.

    The ``.weight`` of ``ModulatedConv2d`` (``conv.weight`` under a style conv / ToRGB) is
    equalized in MMagic too (``conv.weight_orig``)."""
    out = []
    for model, kind in ((generator, "StyleGAN2Generator"), (discriminator, "StyleGAN2Discriminator")):
        if model is None:
            out.append(None)
            continue
        c = model.config
        if kind == "StyleGAN2Generator":
            twin = networks.StyleGAN2Generator(
                c.out_size, c.style_channels, out_channels=c.out_channels, num_mlps=c.num_mlps,
                channel_multiplier=c.channel_multiplier, blur_kernel=list(c.blur_kernel), lr_mlp=c.lr_mlp,
                default_style_mode=c.default_style_mode, eval_style_mode=c.eval_style_mode, mix_prob=c.mix_prob,
                norm_eps=c.norm_eps,
            )
        else:
            twin = networks.StyleGAN2Discriminator(
                c.in_size or c.out_size, img_channels=c.out_channels, channel_multiplier=c.channel_multiplier,
                blur_kernel=list(c.blur_kernel), mbstd_cfg=dict(group_size=c.mbstd_group_size, channel_groups=c.mbstd_channel_groups),
            )
        state = to_mmagic_state(model.state_dict())
        expected = twin.state_dict()
        state.update({k: v for k, v in expected.items() if k.endswith("kernel")})
        twin.load_state_dict(state, strict=True)
        param = next(model.parameters())
        out.append(twin.to(device=param.device, dtype=param.dtype).eval())
    return out
