"""Convert MMagic and BasicSR checkpoints into hfmagic models and ``from_pretrained`` folders.

A checkpoint is read with ``torch.load(weights_only=True)`` (no code runs) or from a
``.safetensors`` file, the network's tensors are picked out (MMagic: ``state_dict`` with
``generator.`` / ``generator_ema.module.`` / ``discriminator.`` prefixes; BasicSR: ``params`` /
``params_ema``; or a bare state dict), and the architecture is recognised from the key names by
the registered architectures' conversion specs (``hfmagic/models/<arch>/convert_<arch>.py``).
The spec reads every hyper-parameter (channels, blocks, scale, image size, ...) from the tensor
shapes, renames keys to hfmagic's (MMagic's names already are hfmagic's) and builds the model,
which gives the same outputs as the original.

An SR checkpoint's ``discriminator.*`` (MMagic's SRGAN / ESRGAN / Real-ESRGAN) is converted too
when a registered stand-alone discriminator recognises its keys (``discriminator_conversion_specs``);
the folder then holds the generator at its root and the discriminator under ``discriminator/``.
Tensors outside the converted network(s) (an unrecognised discriminator, a perceptual loss, a data
preprocessor) are skipped and logged; inside them, a missing or left-over key is an error.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from transformers import PreTrainedModel

from .models import conversion_specs, discriminator_conversion_specs
from .models.conversion import ConversionSpec, Network, preview

__all__ = ["SOURCES", "archs", "convert_checkpoint", "detect_arch", "load_checkpoint"]

logger = logging.getLogger(__name__)

SOURCES = ("auto", "mmagic", "basicsr")

# MMagic's top-level prefixes; the EMA one comes first since it is the longer match.
_EMA_PREFIX, _GEN_PREFIX, _DISC_PREFIX = "generator_ema.module.", "generator.", "discriminator."
# convert_checkpoint's architecture-specific options, as the CLI spells them.
_OPTION_FLAGS = {"res_scale": "--res-scale", "bgr_to_rgb": "--no-bgr-to-rgb", "act_type": "--act-type"}


def archs() -> list[str]:
    """The ``arch`` values ``convert_checkpoint`` takes: the registered architectures with a conversion spec."""
    return sorted(conversion_specs())


# ----------------------------------------------------------------------------- reading
def load_checkpoint(path: str | os.PathLike) -> Mapping:
    """Read a checkpoint file safely: ``.safetensors`` with safetensors, anything else with
    ``torch.load(weights_only=True)``, on CPU.

    Raises ``FileNotFoundError`` when there is no such file and ``ValueError`` when the file is
    not a PyTorch checkpoint or holds Python objects beyond tensors and plain containers.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Checkpoint {str(path)!r} does not exist or is not a file; pass the .pth file saved by MMagic or BasicSR."
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except Exception as err:  # safetensors raises SafetensorError on a damaged or foreign file
            raise ValueError(f"{str(path)!r} is not a readable .safetensors file ({err}).") from err
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


# ----------------------------------------------------------------------------- unwrapping
def _container(obj: Mapping, source: str) -> str:
    """"mmagic", "basicsr" or "bare"; a clash with ``source`` is an error."""
    if "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        container = "mmagic"
    elif "params" in obj or "params_ema" in obj:
        container = "basicsr"
    elif _is_state_dict(obj):
        container = "bare"
    else:
        raise ValueError(
            f"Not a checkpoint hfmagic can read: no 'state_dict' (MMagic), no 'params'/'params_ema' (BasicSR), and "
            f"not a plain state dict of tensors. Top-level keys: {preview(map(str, obj))}."
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
    return container


def _unwrap_basicsr(obj: Mapping, ema: bool | None) -> tuple[Network, bool]:
    """BasicSR's ``params_ema`` (preferred when ``ema`` is None) or ``params``."""
    if ema is None:
        ema = "params_ema" in obj
        if ema:
            logger.info("Converting 'params_ema' (the EMA weights); --no-ema (ema=False) converts 'params'.")
    key, other = ("params_ema", "params") if ema else ("params", "params_ema")
    if key not in obj:
        hint = "leave out --ema (ema=True)" if ema else "leave out --no-ema (ema=False)"
        raise ValueError(f"The BasicSR checkpoint has no {key!r} (it holds {other!r}): {hint} to convert {other!r}.")
    if not _is_state_dict(obj[key]):
        raise ValueError(f"checkpoint[{key!r}] is not a state dict of tensors.")
    return Network(obj[key], f"checkpoint[{key!r}]"), ema


def _group_prefixes(state: Mapping, where: str) -> dict[str, dict]:
    """MMagic's keys grouped by network prefix; what lies outside them is logged as skipped."""
    groups: dict[str, dict] = {_EMA_PREFIX: {}, _GEN_PREFIX: {}, _DISC_PREFIX: {}}
    skipped: dict[str, int] = {}
    if not any(k.startswith(_EMA_PREFIX) for k in state):
        # MMGeneration's (MMagic 0.x) layout: the EMA generator as a plain copy, "generator_ema.*"
        state = {(_EMA_PREFIX + k[len("generator_ema.") :] if k.startswith("generator_ema.") and k != "generator_ema.steps" else k): v for k, v in state.items()}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{where}[{key!r}] is a {type(value).__name__}, not a tensor.")
        prefix = next((p for p in groups if key.startswith(p)), None)
        if prefix is not None:
            groups[prefix][key[len(prefix) :]] = value
        elif not key.startswith("generator_ema."):  # generator_ema.steps: the EMA's counter, not a weight
            head = key.split(".", 1)[0]
            skipped[head] = skipped.get(head, 0) + 1
    if skipped and any(groups.values()):
        logger.info("Skipped tensors outside the converted network(s): %s", ", ".join(f"{h}.* ({n})" for h, n in skipped.items()))
    return groups


def _unwrap_mmagic(state: Mapping, where: str, container: str, ema: bool | None) -> tuple[Network, Network | None, bool]:
    """The generator (EMA one preferred when ``ema`` is None) and the discriminator of an MMagic
    state dict; a bare state dict without prefixes is the network itself."""
    groups = _group_prefixes(state, where)
    if not any(groups.values()):
        if container == "mmagic":
            raise ValueError(f"{where} has no 'generator.' / 'generator_ema.module.' keys; keys found: {preview(state)}.")
        if ema:
            raise ValueError(f"{where} is a bare state dict with no EMA generator: leave out --ema (ema=True).")
        return Network(state, where), None, False
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
    discriminator = Network(groups[_DISC_PREFIX], where, _DISC_PREFIX) if groups[_DISC_PREFIX] else None
    return Network(groups[chosen], where, chosen), discriminator, ema


def _split_checkpoint(obj: Mapping, source: str, ema: bool | None) -> tuple[str, Network, Network | None, bool]:
    """``(container, generator, discriminator or None, whether the generator is the EMA one)``."""
    container = _container(obj, source)
    if container == "basicsr":
        generator, ema = _unwrap_basicsr(obj, ema)
        return container, generator, None, ema
    where = "checkpoint['state_dict']" if container == "mmagic" else "the state dict"
    state = obj["state_dict"] if container == "mmagic" else obj
    return (container, *_unwrap_mmagic(state, where, container, ema))


# ----------------------------------------------------------------------------- architecture
def detect_arch(keys) -> str | None:
    """The registered architecture whose conversion spec recognises ``keys`` (a network's key
    names, MMagic or BasicSR naming), or None. Two specs recognising them is an error."""
    keys = set(keys)
    found = _recognising(keys)
    if len(found) > 1:
        raise ValueError(
            f"The checkpoint's keys ({preview(keys, 4)}) are recognised by several architectures: {', '.join(found)}. "
            f"Pass --arch (arch=...) with one of them."
        )
    return found[0] if found else None


def _recognising(keys: set[str]) -> list[str]:
    return sorted(arch for arch, spec in conversion_specs().items() if spec.identifies(keys))


def _choose_spec(arch: str | None, generator: Network) -> ConversionSpec:
    specs = conversion_specs()
    if arch is None:
        found = detect_arch(generator.tensors)
        if found is None:
            raise ValueError(
                f"No registered architecture recognises {generator.where}'s keys ({preview(map(generator.name, generator.tensors), 6)}). "
                f"hfmagic converts {', '.join(s.display_name for s in specs.values())}; if the checkpoint is one of "
                "them with unusual key names, pass --arch to see which keys do not match."
            )
        return specs[found]
    recognising = _recognising(set(generator.tensors))
    if recognising and arch not in recognising:
        found = recognising[0]
        raise ValueError(
            f"--arch {arch} does not match the checkpoint: its tensors are those of "
            f"{specs[found].describe_tensors(generator.tensors, generator.name)}. Pass --arch {found} (or leave --arch out)."
        )
    return specs[arch]


def _discriminator_spec(discriminator: Network):
    """The registered stand-alone discriminator spec recognising ``discriminator``'s keys, or None."""
    keys = set(discriminator.tensors)
    found = [spec for _, spec in sorted(discriminator_conversion_specs().items()) if spec.identifies(keys)]
    if len(found) > 1:
        raise ValueError(
            f"The discriminator's keys ({preview(map(discriminator.name, keys), 4)}) are recognised by several "
            f"discriminators: {', '.join(spec.display_name for spec in found)}."
        )
    return found[0] if found else None


def _naming(spec: ConversionSpec, net: Network, container: str, source: str) -> str:
    """Whose key names the generator uses; a clash with the file's layout or ``source`` is an error
    (it decides the forward's details, e.g. BasicSR's LeakyReLU after the pixel shuffles)."""
    names = spec.naming(net.tensors)
    declared = container if container != "bare" else (source if source != "auto" else None)
    if names in spec.layout_names:  # another codebase's layout (e.g. the original ESRGAN's): any container
        return names
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
            f"{net.where} uses {codebase[names]}'s layer names ({preview(net.tensors, 4)}) but {why} says "
            f"{codebase[declared]}: {fix}."
        )
    return names or declared or "mmagic"


def _check_options(spec: ConversionSpec, scale: int | None, options: dict) -> None:
    """Refuse what does not apply to ``spec`` (options left at their defaults are None here)."""
    if scale is not None and not spec.takes_scale:
        raise ValueError(f"--scale does not apply to {spec.display_name} (its size is read from the weights).")
    for option, value in options.items():
        if value is not None and option not in spec.options:
            takers = [s.display_name for s in conversion_specs().values() if option in s.options]
            raise ValueError(
                f"{_OPTION_FLAGS.get(option, option)} ({option}=...) only applies to {', '.join(takers) or 'no architecture'}, "
                f"not {spec.display_name}."
            )


# ----------------------------------------------------------------------------- entry point
def convert_checkpoint(
    checkpoint: str | os.PathLike | Mapping,
    output_dir: str | os.PathLike | None = None,
    *,
    arch: str | None = None,
    scale: int | None = None,
    source: str = "auto",
    ema: bool | None = None,
    bgr_to_rgb: bool = True,
    res_scale: float | None = None,
    act_type: str | None = None,
    push_to_hub: str | None = None,
    private: bool | None = None,
    token: str | None = None,
    return_discriminator: bool = False,
    license: str | None = None,
) -> PreTrainedModel | tuple[PreTrainedModel, PreTrainedModel | None]:
    """Convert an MMagic, BasicSR, Real-ESRGAN or ESRGAN checkpoint into hfmagic model(s), optionally saved and pushed.

    Args:
        checkpoint: path of a ``.pth`` file (read with ``torch.load(weights_only=True)``) or a
            ``.safetensors`` file, or the already loaded dict: MMagic's ``{'state_dict': ...,
            'meta': ...}``, BasicSR's ``{'params': ..., 'params_ema': ...}``, or a bare state dict.
        output_dir: folder to write (``from_pretrained``-loadable; for a GAN the generator at its
            root and the discriminator under ``discriminator/``). None: do not save.
        arch: one of :func:`archs` (``"srcnn"``, ``"msrresnet"``, ``"edsr"``, ``"dcgan"``, and any
            architecture registered with a conversion spec). None (default): recognised from the
            checkpoint's keys; given, it is checked against them.
        scale: the upscale factor. Read from the weights (then this only checks it) except for
            SRCNN, whose scale is not in its weights and must be given.
        source: "mmagic", "basicsr" or "auto" (from the checkpoint's layout and key names).
        ema: convert the EMA generator (``generator_ema.module.*`` / ``params_ema``); ``False``: the
            raw generator; ``None`` (default): the EMA generator when the checkpoint holds one (what
            MMagic tests with), else the raw one.
        bgr_to_rgb: GANs only: reverse the channels of MMagic's BGR-trained GANs (see the model
            folder's ``convert_<arch>.py``); False for weights that are RGB already.
        res_scale: EDSR only: the residual scale, which the weights do not hold (default: 1.0,
            or 0.1 for the large EDSR with 256 features and 32 blocks).
        act_type: SRVGGNetCompact only: ``"relu"`` or ``"leakyrelu"`` for weights without PReLU
            slopes (the two hold no tensors); PReLU is read from the weights, so leave it None there.
        push_to_hub: a repo id to upload the folder to (via ``hfmagic.hub.push_folder_to_hub``).
        private, token: passed to the push.
        license: the Hub license id the saved card declares (e.g. ``"bsd-3-clause"`` for Real-ESRGAN's
            RRDBNet files, ``"none"`` for none); default: the architecture's published weights'
            (Apache-2.0 for MMagic's and BasicSR's, BSD-3-Clause for Real-ESRGAN's compact nets).
        return_discriminator: also return the discriminator converted next to an SR generator
            (MMagic's SRGAN / ESRGAN / Real-ESRGAN checkpoints): ``(generator, discriminator or
            None)``. It is converted and saved (under ``discriminator/``) either way.

    Returns:
        The SR model in eval mode (``(model, discriminator or None)`` with
        ``return_discriminator=True``), or ``(generator, discriminator)`` for a GAN whose spec
        converts its own discriminator (DCGAN; the discriminator is None when the checkpoint has none).
    """
    if source not in SOURCES:
        raise ValueError(f"Unknown source {source!r}; choose one of {list(SOURCES)}.")
    if arch is not None and arch not in conversion_specs():
        raise ValueError(f"Unknown arch {arch!r}; choose one of {archs()}.")
    if output_dir is not None and Path(output_dir).exists() and not Path(output_dir).is_dir():
        raise ValueError(f"output_dir {output_dir} exists and is not a folder: give a new or existing folder.")
    label = None if isinstance(checkpoint, Mapping) else Path(checkpoint).name
    obj = checkpoint if isinstance(checkpoint, Mapping) else load_checkpoint(checkpoint)

    container, generator, discriminator, ema = _split_checkpoint(obj, source, ema)
    spec = _choose_spec(arch, generator)
    options = {"res_scale": res_scale, "bgr_to_rgb": None if bgr_to_rgb else False, "act_type": act_type}
    _check_options(spec, scale, options)
    d_spec = None  # a stand-alone discriminator next to a generator that has none of its own
    if discriminator is not None and not spec.has_discriminator:
        d_spec = _discriminator_spec(discriminator)
        if d_spec is None:
            logger.info(
                "Skipped the discriminator (%d tensors): only the generator of %s is converted.",
                len(discriminator.tensors),
                spec.display_name,
            )
            discriminator = None
    naming = _naming(spec, generator, container, source)
    result = spec.convert(
        generator, None if d_spec else discriminator, naming, scale, **{k: options[k] for k in spec.options}
    )
    models = [m for m in result if m is not None] if spec.has_discriminator else [result]
    origin = spec.layout_names.get(naming) or ("BasicSR" if naming == "basicsr" else "MMagic")
    logger.info("Converted the %s %s%s.", origin, spec.describe(models[0].config), " (EMA generator)" if ema else "")
    if d_spec is not None:
        models.append(d_spec.convert(discriminator))
        logger.info("Converted its discriminator, %s.", d_spec.describe(models[1].config))
        if return_discriminator:
            result = (result, models[1])
    elif return_discriminator and not spec.has_discriminator:
        result = (result, None)

    declared, whose = spec.weights_license(naming)
    if license is not None:
        declared, whose = (None if license in ("", "none") else license), None
    name = f" `{label}`" if label else ""
    note = f"Converted from the {origin} checkpoint{name}{' (EMA generator)' if ema else ''} with `hfmagic convert`."
    extra = spec.card_note(**{k: options[k] for k in spec.options})
    note = f"{note} {extra}" if extra else note
    if output_dir is None and push_to_hub:
        with tempfile.TemporaryDirectory() as tmp:
            _save(models, tmp, note, push_to_hub, declared, whose)
            _push(tmp, push_to_hub, private, token)
    elif output_dir is not None:
        _save(models, output_dir, note, push_to_hub, declared, whose)
        if push_to_hub:
            _push(output_dir, push_to_hub, private, token)
    return result


def _save(
    models: list[PreTrainedModel], output_dir, note: str, repo_id: str | None, license: str | None, whose: str | None
) -> None:
    from . import hub

    if whose:  # the architecture's published weights (spec.weights_license)
        note += (
            f" The card declares `{license}`, the license of {whose}; for a checkpoint from elsewhere (or trained "
            "yourself), it is that checkpoint's license: `hfmagic convert --license ID` sets it."
        )
    if len(models) == 2:
        hub.save_gan_pretrained(*models, output_dir, extra_text=note, repo_id=repo_id, license=license)
    else:
        models[0].save_pretrained(output_dir)
        hub.write_model_card(output_dir, models[0], extra_text=note, repo_id=repo_id, license=license)
    logger.info("Saved to %s.", output_dir)


def _push(folder, repo_id: str, private: bool | None, token: str | None) -> None:
    from . import hub

    url = hub.push_folder_to_hub(
        folder, repo_id, private=private, token=token, commit_message="Upload weights converted with hfmagic convert"
    )
    logger.info("Pushed to %s.", url)
