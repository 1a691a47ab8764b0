"""Convert MMagic and BasicSR checkpoints into hfmagic models and ``from_pretrained`` folders.

A checkpoint is read with ``torch.load(weights_only=True)`` (no code runs), the network's
tensors are picked out (MMagic: ``state_dict`` with ``generator.`` / ``generator_ema.module.`` /
``discriminator.`` prefixes; BasicSR: ``params`` / ``params_ema``; or a bare state dict),
renamed to hfmagic's keys (MMagic's names already are hfmagic's), and every hyper-parameter
(channels, blocks, scale, image size, ...) is read from the tensor shapes, so checkpoints with
non-default sizes convert too. The converted model gives the same outputs as the original:

- BasicSR's MSRResNet applies LeakyReLU(0.1) after each pixel shuffle: the converted config
  sets ``upsample_lrelu=True``.
- BasicSR's EDSR scales its input by ``img_range=255`` after subtracting the mean: the
  converted config holds ``rgb_std = 1/255``, which is the same computation.
- MMagic's DCGAN checkpoints were trained on BGR images: the generator's output channels and
  the discriminator's input channels are reversed, so the converted generator draws RGB and
  the converted discriminator scores RGB (``bgr_to_rgb=False`` keeps them as they are).

Tensors outside the converted network(s) (an SRGAN's discriminator or perceptual loss, a data
preprocessor) are skipped and logged; inside it, a missing or left-over key is an error.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from transformers import PreTrainedModel

from .models import (
    EDSR,
    SRCNN,
    DCGANConfig,
    DCGANDiscriminator,
    DCGANGenerator,
    EDSRConfig,
    MSRResNet,
    MSRResNetConfig,
    SRCNNConfig,
)

__all__ = ["ARCHS", "SOURCES", "convert_checkpoint", "load_checkpoint"]

logger = logging.getLogger(__name__)

ARCHS = ("srcnn", "msrresnet", "edsr", "dcgan")
SOURCES = ("auto", "mmagic", "basicsr")

_ARCH_NAMES = {"srcnn": "SRCNN", "msrresnet": "MSRResNet", "edsr": "EDSR", "dcgan": "DCGAN"}
_SR_CLASSES = {"srcnn": (SRCNNConfig, SRCNN), "msrresnet": (MSRResNetConfig, MSRResNet), "edsr": (EDSRConfig, EDSR)}

# MMagic's top-level prefixes; the EMA one comes first since it is the longer match.
_EMA_PREFIX, _GEN_PREFIX, _DISC_PREFIX = "generator_ema.module.", "generator.", "discriminator."

StateDict = dict[str, torch.Tensor]


# ----------------------------------------------------------------------------- key renaming
def _even_stage(match: re.Match) -> str:
    # BasicSR's Upsample is Sequential(conv, PixelShuffle, conv, PixelShuffle, ...): convs sit at even indices.
    return f"upsample.{int(match[1]) // 2}.upsample_conv.{match[2]}"


# BasicSR key -> hfmagic key, and back (for error messages in the checkpoint's own names).
_BASICSR_TO_HF: dict[str, list[tuple[str, str | Callable]]] = {
    "msrresnet": [
        (r"^body\.", "trunk_net."),
        (r"^upconv1\.", "upsample1.upsample_conv."),
        (r"^upconv2\.", "upsample2.upsample_conv."),
    ],
    "edsr": [(r"^upsample\.(\d*[02468])\.(weight|bias)$", _even_stage)],
}
_HF_TO_BASICSR: dict[str, list[tuple[str, str | Callable]]] = {
    "msrresnet": [
        (r"^trunk_net\.", "body."),
        (r"^upsample1\.upsample_conv\.", "upconv1."),
        (r"^upsample2\.upsample_conv\.", "upconv2."),
    ],
    "edsr": [(r"^upsample\.(\d+)\.upsample_conv\.", lambda m: f"upsample.{2 * int(m[1])}.")],
}


def _rename(key: str, rules: list[tuple[str, str | Callable]]) -> str:
    for pattern, repl in rules:
        new = re.sub(pattern, repl, key)
        if new != key:
            return new
    return key


# ----------------------------------------------------------------------------- reading
def load_checkpoint(path: str | os.PathLike) -> Mapping:
    """Read a checkpoint file safely (``torch.load(weights_only=True)``, on CPU).

    Raises ``FileNotFoundError`` when there is no such file and ``ValueError`` when the file is
    not a PyTorch checkpoint or holds Python objects beyond tensors and plain containers.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Checkpoint {str(path)!r} does not exist or is not a file; pass the .pth file saved by MMagic or BasicSR."
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises KeyError/EOFError/UnpicklingError/RuntimeError on foreign files
        unsupported = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if unsupported:
            raise ValueError(
                f"{str(path)!r} holds a Python object of type {unsupported[1]}, which torch.load(weights_only=True) "
                "refuses to run (MMEngine checkpoints can carry a message_hub or optimizer objects). If you trust the "
                "file, keep only its weights: `ckpt = torch.load(path, weights_only=False); "
                "torch.save({'state_dict': ckpt['state_dict']}, 'weights.pth')`, then convert weights.pth."
            ) from err
        raise ValueError(
            f"{str(path)!r} is not a PyTorch checkpoint (torch.load failed with {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no message'}); pass a .pth file saved by MMagic or BasicSR."
        ) from err
    if not isinstance(obj, Mapping):
        raise ValueError(
            f"{str(path)!r} holds a {type(obj).__name__}, not a checkpoint dict; expected an MMagic checkpoint "
            "({'state_dict': ...}), a BasicSR one ({'params': ...}) or a state dict."
        )
    return obj


def _is_state_dict(obj: object) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def _preview(keys, limit: int = 8) -> str:
    keys = sorted(keys)
    more = f", ... ({len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


class _Network:
    """One network's tensors as found in the checkpoint, and how to name them in messages."""

    def __init__(self, tensors: StateDict, where: str, prefix: str = ""):
        self.tensors = dict(tensors)
        self.where = where  # e.g. "checkpoint['state_dict']"
        self.prefix = prefix  # e.g. "generator_ema.module."

    def name(self, key: str) -> str:
        return f"{self.prefix}{key}"


def _split_checkpoint(
    obj: Mapping, source: str, ema: bool | None, arch: str
) -> tuple[str, _Network, _Network | None, bool]:
    """Pick the generator (and, for DCGAN, the discriminator) out of a checkpoint.

    Returns the container kind ("mmagic", "basicsr" or "bare"), the generator, the
    discriminator (None when absent or not wanted) and whether the generator is the EMA one
    (``ema=None``: the EMA generator when the checkpoint holds one, as MMagic tests with it).
    """
    if "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        container, state, where = "mmagic", obj["state_dict"], "checkpoint['state_dict']"
    elif "params" in obj or "params_ema" in obj:
        container = "basicsr"
    elif _is_state_dict(obj):
        container, state, where = "bare", obj, "the state dict"
    else:
        raise ValueError(
            f"Not a checkpoint hfmagic can read: no 'state_dict' (MMagic), no 'params'/'params_ema' (BasicSR), and "
            f"not a plain state dict of tensors. Top-level keys: {_preview(map(str, obj))}."
        )
    if source != "auto" and container != "bare" and container != source:
        found = {
            "mmagic": "an MMagic checkpoint (it has 'state_dict')",
            "basicsr": "a BasicSR checkpoint (it has 'params')",
        }
        raise ValueError(
            f"--source {source} does not match the file: it is {found[container]}; "
            f"pass --source {container} or leave --source out."
        )

    if container == "basicsr":
        if arch == "dcgan":
            raise ValueError("BasicSR has no DCGAN: a 'params' checkpoint cannot be converted with --arch dcgan.")
        if ema is None:
            ema = "params_ema" in obj
            if ema:
                logger.info("Converting 'params_ema' (the EMA weights); --no-ema (ema=False) converts 'params'.")
        key, other = ("params_ema", "params") if ema else ("params", "params_ema")
        if key not in obj:
            hint = "leave out --ema (ema=True)" if ema else "leave out --no-ema (ema=False)"
            raise ValueError(
                f"The BasicSR checkpoint has no {key!r} (it holds {other!r}): {hint} to convert {other!r}."
            )
        if not _is_state_dict(obj[key]):
            raise ValueError(f"checkpoint[{key!r}] is not a state dict of tensors.")
        return container, _Network(obj[key], f"checkpoint[{key!r}]"), None, ema

    groups: dict[str, StateDict] = {_EMA_PREFIX: {}, _GEN_PREFIX: {}, _DISC_PREFIX: {}}
    skipped: dict[str, int] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{where}[{key!r}] is a {type(value).__name__}, not a tensor.")
        prefix = next((p for p in groups if key.startswith(p)), None)
        if prefix is not None:
            groups[prefix][key[len(prefix) :]] = value
        elif not key.startswith("generator_ema."):  # generator_ema.steps: the EMA's counter, not a weight
            head = key.split(".", 1)[0]
            skipped[head] = skipped.get(head, 0) + 1

    if not any(groups.values()):
        if container == "mmagic":
            raise ValueError(
                f"{where} has no 'generator.' / 'generator_ema.module.' keys; keys found: {_preview(state)}."
            )
        # A bare state dict of the network itself.
        if ema:
            raise ValueError(f"{where} is a bare state dict with no EMA generator: leave out --ema (ema=True).")
        return container, _Network(state, where), None, False

    if skipped:
        logger.info(
            "Skipped tensors outside the converted network(s): %s",
            ", ".join(f"{h}.* ({n})" for h, n in skipped.items()),
        )
    if ema is None:
        ema = bool(groups[_EMA_PREFIX])
        if ema:
            logger.info(
                "Converting the EMA generator ('%s*'), which MMagic tests with; --no-ema (ema=False) converts the "
                "raw generator.",
                _EMA_PREFIX,
            )
    chosen, other = (_EMA_PREFIX, _GEN_PREFIX) if ema else (_GEN_PREFIX, _EMA_PREFIX)
    if not groups[chosen]:
        if ema:
            raise ValueError(
                f"{where} has no EMA generator ('{_EMA_PREFIX}*' keys; EMA was off in training): leave out --ema (ema=True)."
            )
        hint = "leave out --no-ema (ema=False) to convert the EMA generator" if groups[other] else "is this a generator checkpoint?"
        raise ValueError(f"{where} has no '{_GEN_PREFIX}*' keys: {hint}.")
    if not ema and groups[_EMA_PREFIX]:
        logger.info(
            "Converting the raw generator as asked; the checkpoint's EMA generator ('%s*') is what MMagic tests with.",
            _EMA_PREFIX,
        )
    generator = _Network(groups[chosen], where, chosen)
    discriminator = None
    if groups[_DISC_PREFIX]:
        if arch == "dcgan":
            discriminator = _Network(groups[_DISC_PREFIX], where, _DISC_PREFIX)
        else:
            logger.info(
                "Skipped the discriminator (%d tensors): only the generator of an SR model is converted.",
                len(groups[_DISC_PREFIX]),
            )
    return container, generator, discriminator, ema


def _names_used(arch: str, keys) -> str | None:
    """Whose layer names ``keys`` use: "basicsr", "mmagic" (= hfmagic's), or None when both agree (SRCNN)."""
    if arch == "msrresnet":
        if any(k.startswith(("body.", "upconv1.", "upconv2.")) for k in keys):
            return "basicsr"
        if any(k.startswith(("trunk_net.", "upsample1.", "upsample2.")) for k in keys):
            return "mmagic"
    if arch == "edsr":
        if any(re.match(r"upsample\.\d+\.(weight|bias)$", k) for k in keys):
            return "basicsr"
        if any(k.startswith("upsample.") for k in keys):
            return "mmagic"
    return None


def _naming(arch: str, net: _Network, container: str, source: str) -> str:
    """Whose key names the generator uses; a clash with the file's layout or ``source`` is an error
    (it decides the forward's details, e.g. BasicSR's LeakyReLU after the pixel shuffles)."""
    names = _names_used(arch, net.tensors)
    declared = container if container != "bare" else (source if source != "auto" else None)
    if names and declared and names != declared:
        codebase = {"mmagic": "MMagic", "basicsr": "BasicSR"}
        if container == "bare":
            why, fix = f"--source {source}", f"pass --source {names} (or leave --source out)"
        else:
            why, fix = (
                "the file's layout",
                f"save the tensors as a bare state dict and convert that with --source {names}",
            )
        raise ValueError(
            f"{net.where} uses {codebase[names]}'s layer names ({_preview(net.tensors, 4)}) but {why} says "
            f"{codebase[declared]}: {fix}."
        )
    return names or declared or "mmagic"


def _detect_arch(keys) -> str | None:
    """The architecture a set of keys (either naming) belongs to, from the layer names only."""
    keys = set(keys)
    if any(k.startswith(("noise2feat.", "upsampling.", "downsamples.")) for k in keys):
        return "dcgan"
    if any(k.startswith("conv_after_body.") for k in keys):
        return "edsr"
    if any(k.startswith(("trunk_net.", "upsample1.", "upconv1.", "conv_hr.")) for k in keys):
        return "msrresnet"
    if {"conv1.weight", "conv3.weight"} <= keys and "conv_first.weight" not in keys:
        return "srcnn"
    return None


# ----------------------------------------------------------------------------- shapes -> config
class _Shapes:
    """Tensor shapes of one network (hfmagic names), with messages in the checkpoint's names."""

    def __init__(self, tensors: StateDict, name: Callable[[str], str]):
        self.tensors, self.name = tensors, name

    def __call__(self, key: str) -> tuple[int, ...]:
        if key not in self.tensors:
            raise ValueError(
                f"Key {self.name(key)!r} is missing; the architecture cannot be read from the weights without it. "
                f"Keys present: {_preview(self.name(k) for k in self.tensors)}."
            )
        return tuple(self.tensors[key].shape)

    def count(self, prefix: str) -> int:
        """Number of numbered children under ``prefix`` (largest index + 1, so a gap shows up as missing keys)."""
        pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
        indices = [int(m[1]) for k in self.tensors if (m := pattern.match(k))]
        return max(indices) + 1 if indices else 0

    def has(self, prefix: str) -> bool:
        return any(k.startswith(prefix) for k in self.tensors)


def _infer_srcnn(shapes: _Shapes) -> tuple[dict, str | None, int | None]:
    w1, w2, w3 = shapes("conv1.weight"), shapes("conv2.weight"), shapes("conv3.weight")
    config = {"channels": (w1[1], w1[0], w2[0], w3[0]), "kernel_sizes": (w1[2], w2[2], w3[2])}
    return config, None, None  # the scale is not in the weights


def _infer_msrresnet(shapes: _Shapes) -> tuple[dict, str, int]:
    mid, in_ch = shapes("conv_first.weight")[:2]
    up1 = shapes("upsample1.upsample_conv.weight")[0]
    up1_name = shapes.name("upsample1.upsample_conv.weight")
    if shapes.has("upsample2."):
        scale = 4
        evidence = (
            f"{shapes.name('upsample2.upsample_conv.weight')} exists and {up1_name} has {up1} = {mid}*2^2 output "
            "channels (two x2 stages), so the weights are x4"
        )
        if up1 != 4 * mid:
            raise ValueError(
                f"Inconsistent weights: {shapes.name('upsample2.upsample_conv.weight')} exists (x4), but {up1_name} "
                f"has {up1} output channels, not {mid}*2^2."
            )
    else:
        scale = round(math.sqrt(up1 / mid))
        evidence = (
            f"{up1_name} has {up1} = {mid}*{scale}^2 output channels and there is no second stage, "
            f"so the weights are x{scale}"
        )
        if scale not in (2, 3) or scale * scale * mid != up1:
            raise ValueError(
                f"{up1_name} has {up1} output channels for {mid} features: not {mid}*2^2 (x2) nor {mid}*3^2 (x3); "
                "these are not MSRResNet weights."
            )
    config = {
        "upscale_factor": scale,
        "in_channels": in_ch,
        "out_channels": shapes("conv_last.weight")[0],
        "mid_channels": mid,
        "num_blocks": shapes.count("trunk_net."),
    }
    return config, evidence, scale


def _infer_edsr(shapes: _Shapes) -> tuple[dict, str, int]:
    mid, in_ch = shapes("conv_first.weight")[:2]
    stages = shapes.count("upsample.")
    ratios = [shapes(f"upsample.{i}.upsample_conv.weight")[0] / mid for i in range(stages)]
    names = ", ".join(
        f"{shapes.name(f'upsample.{i}.upsample_conv.weight')} ({int(r * mid)} channels)" for i, r in enumerate(ratios)
    )
    if stages >= 1 and all(r == 4 for r in ratios):
        scale = 2**stages
        evidence = f"the upsampler has {stages} x2 stage(s) [{names}], so the weights are x{scale}"
    elif ratios == [9]:
        scale = 3
        evidence = f"the upsampler has one x3 stage [{names}], so the weights are x3"
    else:
        raise ValueError(
            f"EDSR's upsampler must be x2 stages ({mid}*4 channels each) or one x3 stage ({mid}*9 channels); "
            f"found {stages} stage(s): [{names}]."
        )
    config = {
        "upscale_factor": scale,
        "in_channels": in_ch,
        "out_channels": shapes("conv_last.weight")[0],
        "mid_channels": mid,
        "num_blocks": shapes.count("body."),
    }
    return config, evidence, scale


def _infer_dcgan(generator: _Shapes, discriminator: _Shapes | None) -> dict:
    noise_size, base = generator("noise2feat.conv.weight")[:2]
    kernel = generator("noise2feat.conv.weight")[2]
    # noise2feat turns the 1x1 noise into a kernel x kernel map; each upsampling block and the output layer double it.
    image_size = kernel * 2 ** (generator.count("upsampling.") + 1)
    config = {
        "image_size": image_size,
        "num_channels": generator("output_layer.conv.weight")[1],
        "noise_size": noise_size,
        "generator_base_channels": base,
        "generator_input_scale": kernel,
    }
    if discriminator is not None:
        d_base, d_channels = discriminator("downsamples.0.conv.weight")[:2]
        if d_channels != config["num_channels"]:
            raise ValueError(
                f"The generator draws {config['num_channels']}-channel images but the discriminator's "
                f"{discriminator.name('downsamples.0.conv.weight')} takes {d_channels} channels."
            )
        config["discriminator_base_channels"] = d_base
        config["discriminator_output_scale"] = image_size // 2 ** discriminator.count("downsamples.")
    return config


# Hyper-parameters worth naming in messages, per architecture.
_SUMMARY_FIELDS = {
    "srcnn": ("channels", "kernel_sizes"),
    "msrresnet": ("mid_channels", "num_blocks", "upsample_lrelu"),
    "edsr": ("mid_channels", "num_blocks", "res_scale", "rgb_std"),
    "dcgan": ("image_size", "num_channels", "noise_size", "generator_base_channels", "discriminator_base_channels"),
}


def _describe(arch: str, config: Mapping | object) -> str:
    """E.g. "MSRResNet (x4, mid_channels=64, num_blocks=16)" from a config or a dict of its fields."""
    get = config.get if isinstance(config, Mapping) else lambda k: getattr(config, k, None)
    parts = [f"x{get('upscale_factor')}"] if arch != "dcgan" and get("upscale_factor") else []
    parts += [
        f"{k}={list(v) if isinstance(v, tuple) else v}" for k in _SUMMARY_FIELDS[arch] if (v := get(k)) is not None
    ]
    return f"{_ARCH_NAMES[arch]} ({', '.join(parts)})" if parts else _ARCH_NAMES[arch]


def _what_the_shapes_say(arch: str, tensors: StateDict, name: Callable[[str], str]) -> str:
    """A short description of the network ``tensors`` hold, for the wrong ``--arch`` error."""
    shapes = _Shapes(tensors, name)
    try:
        if arch == "dcgan":
            return _describe(arch, _infer_dcgan(shapes, None) if shapes.has("noise2feat.") else {})
        if _names_used(arch, tensors) == "basicsr":
            shapes = _Shapes({_rename(k, _BASICSR_TO_HF[arch]): v for k, v in tensors.items()}, name)
        config = {"srcnn": _infer_srcnn, "msrresnet": _infer_msrresnet, "edsr": _infer_edsr}[arch](shapes)[0]
        return _describe(arch, config)
    except ValueError:
        return _ARCH_NAMES[arch]


# ----------------------------------------------------------------------------- loading
def _load_strict(
    model: PreTrainedModel, tensors: StateDict, name: Callable[[str], str], where: str, description: str
) -> None:
    """Copy ``tensors`` into ``model``; any missing, left-over or mis-shaped key is an error listing them all."""
    expected = model.state_dict()
    # BatchNorm's batch counter is bookkeeping that older checkpoints lack; it does not change outputs.
    missing = [k for k in expected if k not in tensors and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in tensors if k not in expected]
    mismatched = [
        f"{name(k)}: {tuple(tensors[k].shape)} in the checkpoint, {tuple(expected[k].shape)} expected"
        for k in tensors
        if k in expected and tensors[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {', '.join(name(k) for k in missing)}")
    if unexpected:
        problems.append(f"left-over keys: {', '.join(name(k) for k in unexpected)}")
    if mismatched:
        problems.append(f"wrong shapes: {'; '.join(mismatched)}")
    if problems:
        raise ValueError(
            f"{where} does not match the {description} read from its tensor shapes: " + " | ".join(problems)
        )
    model.load_state_dict({**expected, **tensors}, strict=True)
    model.eval()


def _convert_sr(arch: str, net: _Network, naming: str, scale: int | None, res_scale: float | None) -> PreTrainedModel:
    tensors = net.tensors
    name = net.name
    if naming == "basicsr" and arch in _BASICSR_TO_HF:
        tensors = {_rename(k, _BASICSR_TO_HF[arch]): v for k, v in tensors.items()}
        name = lambda key: net.name(_rename(key, _HF_TO_BASICSR[arch]))  # noqa: E731
    shapes = _Shapes(tensors, name)
    config_kwargs, evidence, inferred = {"srcnn": _infer_srcnn, "msrresnet": _infer_msrresnet, "edsr": _infer_edsr}[
        arch
    ](shapes)
    if inferred is None:  # SRCNN
        if scale is None:
            raise ValueError(
                "SRCNN's scale is not stored in its weights (it upsamples bicubically before its first conv): pass "
                "--scale (scale=...), e.g. --scale 4 for MMagic's srcnn_x4k915 checkpoints."
            )
        inferred = scale
    elif scale is not None and scale != inferred:
        raise ValueError(
            f"--scale {scale} does not match the weights: {evidence}. Pass --scale {inferred} or leave --scale out."
        )
    config_kwargs["upscale_factor"] = inferred

    if arch == "msrresnet" and naming == "basicsr":
        config_kwargs["upsample_lrelu"] = True  # BasicSR's forward has LeakyReLU(0.1) after each pixel shuffle
    if arch == "edsr":
        if res_scale is None:
            # Not in the weights: EDSR-baseline uses 1.0; the large EDSR (256 features, 32 blocks) 0.1,
            # in both codebases.
            large = config_kwargs["mid_channels"] == 256 and config_kwargs["num_blocks"] == 32
            res_scale = 0.1 if large else 1.0
            logger.info(
                "EDSR res_scale is not stored in the weights; using %s (pass res_scale to override).", res_scale
            )
        config_kwargs["res_scale"] = res_scale
        if naming == "basicsr":
            # BasicSR: (x - mean) * 255 ... / 255 + mean, i.e. MMagic's (x - mean) / std ... * std + mean
            # with std = 1/255.
            config_kwargs["rgb_std"] = (1 / 255,) * config_kwargs["in_channels"]
    elif res_scale is not None:
        raise ValueError(f"res_scale only applies to EDSR, not {_ARCH_NAMES[arch]}.")

    config_cls, model_cls = _SR_CLASSES[arch]
    model = model_cls(config_cls(**config_kwargs))
    _load_strict(model, tensors, name, net.where, _describe(arch, model.config))
    return model


def _bgr_to_rgb(generator: StateDict, discriminator: StateDict | None) -> None:
    """Reverse the image channels in place: the generator's output (ConvTranspose2d weight is
    (in, out, k, k), so dim 1, plus the bias) and the discriminator's input (Conv2d weight dim 1)."""
    generator["output_layer.conv.weight"] = generator["output_layer.conv.weight"].flip(1)
    if "output_layer.conv.bias" in generator:
        generator["output_layer.conv.bias"] = generator["output_layer.conv.bias"].flip(0)
    if discriminator is not None:
        discriminator["downsamples.0.conv.weight"] = discriminator["downsamples.0.conv.weight"].flip(1)


def _convert_dcgan(
    generator: _Network, discriminator: _Network | None, bgr_to_rgb: bool
) -> tuple[DCGANGenerator, DCGANDiscriminator | None]:
    g_shapes = _Shapes(generator.tensors, generator.name)
    d_shapes = _Shapes(discriminator.tensors, discriminator.name) if discriminator is not None else None
    try:
        config = DCGANConfig(**_infer_dcgan(g_shapes, d_shapes))
    except ValueError as err:
        raise ValueError(f"The DCGAN weights describe an unsupported configuration: {err}") from err
    g_tensors = dict(generator.tensors)
    d_tensors = dict(discriminator.tensors) if discriminator is not None else None
    if bgr_to_rgb:
        if config.num_channels == 3:
            # Check the shapes first so that a malformed checkpoint fails with the key list, not in flip().
            _Shapes(g_tensors, generator.name)("output_layer.conv.weight")
            _bgr_to_rgb(g_tensors, d_tensors)
        else:
            logger.info("%d-channel DCGAN: no BGR -> RGB permutation.", config.num_channels)
    g_model = DCGANGenerator(config)
    _load_strict(g_model, g_tensors, generator.name, generator.where, f"generator of {_describe('dcgan', config)}")
    d_model = None
    if d_tensors is not None:
        d_model = DCGANDiscriminator(config)
        _load_strict(
            d_model,
            d_tensors,
            discriminator.name,
            discriminator.where,
            f"discriminator of {_describe('dcgan', config)}",
        )
    return g_model, d_model


# ----------------------------------------------------------------------------- entry point
def convert_checkpoint(
    checkpoint: str | os.PathLike | Mapping,
    output_dir: str | os.PathLike | None = None,
    *,
    arch: str,
    scale: int | None = None,
    source: str = "auto",
    ema: bool | None = None,
    bgr_to_rgb: bool = True,
    res_scale: float | None = None,
    push_to_hub: str | None = None,
    private: bool | None = None,
    token: str | None = None,
) -> PreTrainedModel | tuple[DCGANGenerator, DCGANDiscriminator | None]:
    """Convert an MMagic or BasicSR checkpoint into hfmagic model(s), optionally saved and pushed.

    Args:
        checkpoint: path of a ``.pth`` file (read with ``torch.load(weights_only=True)``), or the
            already loaded dict: MMagic's ``{'state_dict': ..., 'meta': ...}``, BasicSR's
            ``{'params': ..., 'params_ema': ...}``, or a bare state dict.
        output_dir: folder to write (``from_pretrained``-loadable; for DCGAN the generator at its
            root and the discriminator under ``discriminator/``). None: do not save.
        arch: "srcnn", "msrresnet", "edsr" or "dcgan". A checkpoint of another architecture is an error.
        scale: the upscale factor. Read from the weights (then this only checks it) except for
            SRCNN, whose scale is not in its weights and must be given.
        source: "mmagic", "basicsr" or "auto" (from the checkpoint's layout and key names).
        ema: convert the EMA generator (``generator_ema.module.*`` / ``params_ema``); ``False``: the
            raw generator; ``None`` (default): the EMA generator when the checkpoint holds one (what
            MMagic tests with), else the raw one.
        bgr_to_rgb: DCGAN only: reverse the channels of MMagic's BGR-trained GAN (see module doc).
        res_scale: EDSR only: the residual scale, which the weights do not hold (default: 1.0,
            or 0.1 for the large EDSR with 256 features and 32 blocks).
        push_to_hub: a repo id to upload the folder to (via ``hfmagic.hub.push_folder_to_hub``).
        private, token: passed to the push.

    Returns:
        The SR model in eval mode, or ``(generator, discriminator)`` for DCGAN (the
        discriminator is None when the checkpoint has none).
    """
    if arch not in ARCHS:
        raise ValueError(f"Unknown arch {arch!r}; choose one of {list(ARCHS)}.")
    if source not in SOURCES:
        raise ValueError(f"Unknown source {source!r}; choose one of {list(SOURCES)}.")
    if arch == "dcgan" and scale is not None:
        raise ValueError("--scale does not apply to DCGAN (the image size is read from the weights).")
    if arch != "dcgan" and not bgr_to_rgb:
        raise ValueError("--no-bgr-to-rgb only applies to DCGAN (the SR models take RGB input in every codebase).")
    if output_dir is not None and Path(output_dir).exists() and not Path(output_dir).is_dir():
        raise ValueError(f"output_dir {output_dir} exists and is not a folder: give a new or existing folder.")
    label = None if isinstance(checkpoint, Mapping) else Path(checkpoint).name
    obj = checkpoint if isinstance(checkpoint, Mapping) else load_checkpoint(checkpoint)

    container, generator, discriminator, ema = _split_checkpoint(obj, source, ema, arch)
    found = _detect_arch(generator.tensors)
    if found is not None and found != arch:
        raise ValueError(
            f"--arch {arch} does not match the checkpoint: its tensors are those of "
            f"{_what_the_shapes_say(found, generator.tensors, generator.name)}. Pass --arch {found}."
        )
    if arch == "dcgan":
        if container == "bare" and source == "basicsr":
            raise ValueError("BasicSR has no DCGAN: use --source mmagic (or auto) with --arch dcgan.")
        result = _convert_dcgan(generator, discriminator, bgr_to_rgb)
        naming = "mmagic"
        models = [m for m in result if m is not None]
    else:
        naming = _naming(arch, generator, container, source)
        result = _convert_sr(arch, generator, naming, scale, res_scale)
        models = [result]
    summary = _describe(arch, models[0].config)
    origin = "BasicSR" if naming == "basicsr" else "MMagic"
    logger.info("Converted the %s %s%s.", origin, summary, " (EMA generator)" if ema else "")

    if output_dir is None and push_to_hub:
        with tempfile.TemporaryDirectory() as tmp:
            _save(result, arch, tmp, origin, ema, label, bgr_to_rgb, push_to_hub)
            _push(tmp, push_to_hub, private, token)
    elif output_dir is not None:
        _save(result, arch, output_dir, origin, ema, label, bgr_to_rgb, push_to_hub)
        if push_to_hub:
            _push(output_dir, push_to_hub, private, token)
    return result


def _save(
    result, arch: str, output_dir, origin: str, ema: bool, label: str | None, bgr_to_rgb: bool, repo_id: str | None
) -> None:
    from . import hub

    name = f" `{label}`" if label else ""
    note = f"Converted from the {origin} checkpoint{name}{' (EMA generator)' if ema else ''} with `hfmagic convert`."
    if arch == "dcgan" and bgr_to_rgb:
        note += " MMagic trained it on BGR images; its channels were reversed so that it takes and draws RGB."
    if arch == "dcgan" and result[1] is not None:
        hub.save_gan_pretrained(*result, output_dir, extra_text=note, repo_id=repo_id)
    else:
        model = result[0] if arch == "dcgan" else result
        model.save_pretrained(output_dir)
        hub.write_model_card(output_dir, model, extra_text=note, repo_id=repo_id)
    logger.info("Saved to %s.", output_dir)


def _push(folder, repo_id: str, private: bool | None, token: str | None) -> None:
    from . import hub

    url = hub.push_folder_to_hub(
        folder, repo_id, private=private, token=token, commit_message="Upload weights converted with hfmagic convert"
    )
    logger.info("Pushed to %s.", url)
