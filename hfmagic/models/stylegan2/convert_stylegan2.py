"""How MMagic's StyleGAN2 checkpoints are recognised and converted (generator and discriminator).

The architecture is read from the tensors: ``out_size`` from the number of ToRGB layers, the widths
(``max_channels`` at 4x4, ``channel_multiplier`` from the 64x64 stage), ``num_mlps`` from the
mapping network, ``style_channels`` from its layers, the blur taps from MMagic's stored kernels,
the discriminator's ``in_size`` from its residual blocks. ``lr_mlp`` (0.01) and the
minibatch-stddev group size (4) are not in the weights: MMagic's defaults, used by every config.

MMagic's equalized-lr tensors are ``*.weight_orig``; hfmagic's are ``*.weight``. The blur kernels
(buffers in MMagic) are rebuilt from ``blur_kernel`` and checked, not copied.

Channel order: MMagic trains on BGR images (its data pipeline loads BGR and does not convert), so
its own StyleGAN2 checkpoints draw and score BGR; by default the converted generator's ToRGB layers
and the discriminator's first layer are reversed so that they draw and score RGB. The official
NVIDIA weights that MMagic converted (``stylegan2-*-config-f-official_*.pth``) are RGB already:
convert those with ``bgr_to_rgb=False`` (``--no-bgr-to-rgb``).
"""

from __future__ import annotations

import logging

from collections.abc import Callable

import torch

from ..conversion import ConversionSpec, Network, Shapes, StateDict, load_strict
from .configuration_stylegan2 import StyleGAN2Config
from .modeling_stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from .ops_stylegan2 import make_kernel

logger = logging.getLogger("hfmagic.convert")


def _to_hf(net: Network) -> tuple[StateDict, dict[str, torch.Tensor], Callable[[str], str]]:
    """(tensors with hfmagic's names, MMagic's blur kernels by hfmagic name, name -> checkpoint name)."""
    tensors, kernels, renamed = {}, {}, {}
    for key, value in net.tensors.items():
        if key.endswith(".kernel"):
            kernels[key] = value
            continue
        new = key[: -len("_orig")] if key.endswith(".weight_orig") else key
        tensors[new] = value
        renamed[new] = key
    return tensors, kernels, lambda key: net.name(renamed.get(key, key))


def _blur_taps(kernels: dict[str, torch.Tensor], name) -> list[int] | list[float] | None:
    """The 1-D taps of MMagic's stored 2-D blur kernels (outer product / sum, times factor^2)."""
    if not kernels:
        return None
    key, kernel = next(iter(sorted(kernels.items())))
    rows = kernel.double().sum(1)
    taps = rows / rows[0]
    rounded = taps.round()
    if torch.allclose(taps, rounded, atol=1e-4):
        return [int(t) for t in rounded]
    logger.info("%s holds a blur kernel with non-integer taps; kept as floats.", name(key))
    return [float(t) for t in taps]


def _check_kernels(kernels: dict[str, torch.Tensor], taps, name) -> None:
    expected = make_kernel(taps)
    for key, kernel in kernels.items():
        factor = kernel.sum().item()  # 1 for a blur, up^2 for an upsampling kernel
        if kernel.shape != expected.shape or not torch.allclose(kernel.float(), expected * factor, atol=1e-6):
            raise ValueError(
                f"{name(key)} is not the blur kernel {taps} every other layer uses; hfmagic builds one kernel for all layers."
            )


def _infer_config(g: Shapes, d: Shapes | None, taps) -> dict:
    if g.has("embed."):
        raise ValueError("The generator is conditional ('embed.*' keys); hfmagic's StyleGAN2 is unconditional only.")
    style_in, style = g("style_mapping.1.linear.weight")[1], g("style_mapping.1.linear.weight")[0]
    if style_in != style:
        raise ValueError(
            f"{g.name('style_mapping.1.linear.weight')} maps {style_in} noise channels to {style} style channels; "
            "hfmagic's StyleGAN2 draws noise of style_channels (MMagic's noise_size=None)."
        )
    out_size = 2 ** (g.count("to_rgbs.") + 2)
    max_channels = g("constant_input.input")[1]
    config = {
        "out_size": out_size,
        "style_channels": style,
        "out_channels": g("to_rgb1.bias")[1],
        "num_mlps": g.count("style_mapping.") - 1,
        "max_channels": max_channels,
        "channel_multiplier": 2,
    }
    if out_size >= 64:
        width = g("convs.6.conv.weight")[1]  # the 64x64 stage: 256 * channel_multiplier
        if width % 256:
            raise ValueError(
                f"{g.name('convs.6.conv.weight')} has {width} channels at 64x64; MMagic's widths are 256 * channel_multiplier."
            )
        config["channel_multiplier"] = width // 256
    if taps is not None:
        config["blur_kernel"] = taps
    if d is not None:
        config["in_size"] = 2 ** (d.count("convs.") + 1)
        last = StyleGAN2Config(**config).channels(4)
        config["mbstd_channel_groups"] = d("final_conv.0.conv.weight")[1] - last
        if config["in_size"] == out_size:
            del config["in_size"]
    return config


def _bgr_to_rgb(generator: StateDict, discriminator: StateDict | None) -> None:
    """Reverse the image channels in place: every ToRGB's modulated weight (1, out, in, 1, 1) and bias
    (1, out, 1, 1) (the skips add up channel by channel), and the discriminator's first conv (dim 1)."""
    for key in [k for k in generator if k.startswith(("to_rgb1.", "to_rgbs."))]:
        if key.endswith(("conv.weight", ".bias")) and "style_modulation" not in key:
            generator[key] = generator[key].flip(1)
    if discriminator is not None:
        discriminator["convs.0.0.conv.weight"] = discriminator["convs.0.0.conv.weight"].flip(1)


class StyleGAN2Conversion(ConversionSpec):
    arch = "stylegan2"
    display_name = "StyleGAN2"
    summary_fields = ("out_size", "style_channels", "channel_multiplier", "num_mlps", "max_channels")
    has_discriminator = True
    options = ("bgr_to_rgb",)

    def identifies(self, keys: set[str]) -> bool:
        return any(k.startswith("style_mapping.") for k in keys) and any(k.startswith("to_rgb1.") for k in keys)

    def describe_tensors(self, tensors: StateDict, name) -> str:
        hf, kernels, hf_name = _to_hf(Network(tensors, ""))
        try:
            return self.describe(_infer_config(Shapes(hf, lambda k: name(hf_name(k))), None, None))
        except ValueError:
            return self.display_name

    def card_note(self, bgr_to_rgb: bool | None = None, **options) -> str:
        if bgr_to_rgb is False:
            return "Converted with its channel order kept (MMagic's copies of NVIDIA's official weights draw RGB)."
        return "MMagic trained it on BGR images; its channels were reversed so that it takes and draws RGB."

    def convert(self, generator: Network, discriminator: Network | None, naming: str, scale: int | None, bgr_to_rgb: bool | None = None, **options):
        if naming == "basicsr":
            raise ValueError("BasicSR has no StyleGAN2: a BasicSR checkpoint (or --source basicsr) cannot hold one.")
        g_tensors, g_kernels, g_name = _to_hf(generator)
        d_tensors = d_kernels = d_name = None
        if discriminator is not None:
            d_tensors, d_kernels, d_name = _to_hf(discriminator)
        taps = _blur_taps(g_kernels, g_name) or (_blur_taps(d_kernels, d_name) if d_kernels else None)
        g_shapes = Shapes(g_tensors, g_name)
        d_shapes = Shapes(d_tensors, d_name) if d_tensors is not None else None
        try:
            config = StyleGAN2Config(**_infer_config(g_shapes, d_shapes, taps))
        except ValueError as err:
            raise ValueError(f"The StyleGAN2 weights describe an unsupported configuration: {err}") from err
        _check_kernels(g_kernels, config.blur_kernel, g_name)
        if d_kernels:
            _check_kernels(d_kernels, config.blur_kernel, d_name)
        if bgr_to_rgb is not False:
            if config.out_channels == 3:
                _bgr_to_rgb(g_tensors, d_tensors)
            else:
                logger.info("%d-channel StyleGAN2: no BGR -> RGB permutation.", config.out_channels)
        g_model = StyleGAN2Generator(config)
        load_strict(g_model, g_tensors, g_name, generator.where, f"generator of {self.describe(config)}")
        d_model = None
        if d_tensors is not None:
            if d_shapes("convs.0.0.conv.weight")[1] != config.out_channels:
                raise ValueError(
                    f"The generator draws {config.out_channels}-channel images but the discriminator's "
                    f"{d_name('convs.0.0.conv.weight')} takes {d_shapes('convs.0.0.conv.weight')[1]} channels."
                )
            d_model = StyleGAN2Discriminator(config)
            load_strict(d_model, d_tensors, d_name, discriminator.where, f"discriminator of {self.describe(config)}")
        return g_model, d_model


__all__ = ["StyleGAN2Conversion"]
