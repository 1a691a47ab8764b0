"""What converting an architecture's checkpoints needs, as a spec each model folder fills in.

``hfmagic.convert`` reads a checkpoint, unwraps it (MMagic / BasicSR / bare) and asks the
registered specs which one recognises the network's keys; the chosen spec reads the
hyper-parameters from the tensor shapes, renames keys and builds the model. A model folder's
``convert_<arch>.py`` subclasses :class:`SRConversionSpec` (super-resolution networks: one
generator, an upscale factor), :class:`ConversionSpec` (anything else, e.g. a GAN with its
discriminator) or :class:`DiscriminatorConversionSpec` (a stand-alone discriminator, converted
from an SR checkpoint's ``discriminator.*`` next to the generator), and
``register_model(config, model, conversion=Spec())`` makes ``hfmagic convert`` use it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import ClassVar

import torch
from transformers import PretrainedConfig, PreTrainedModel

__all__ = ["ConversionSpec", "SRConversionSpec", "DiscriminatorConversionSpec", "Network", "Shapes", "RenameRules", "rename", "load_strict", "preview"]

logger = logging.getLogger("hfmagic.convert")

StateDict = dict[str, torch.Tensor]
# (regex, replacement) pairs; the first rule that changes a key wins.
RenameRules = list[tuple[str, "str | Callable[[re.Match], str]"]]


def rename(key: str, rules: RenameRules) -> str:
    for pattern, repl in rules:
        new = re.sub(pattern, repl, key)
        if new != key:
            return new
    return key


def preview(keys, limit: int = 8) -> str:
    """``"a, b, c, ... (n more)"``: a few sorted keys for messages."""
    keys = sorted(keys)
    more = f", ... ({len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


class Network:
    """One network's tensors as found in the checkpoint, and how to name them in messages."""

    def __init__(self, tensors: StateDict, where: str, prefix: str = ""):
        self.tensors = dict(tensors)
        self.where = where  # e.g. "checkpoint['state_dict']"
        self.prefix = prefix  # e.g. "generator_ema.module."

    def name(self, key: str) -> str:
        return f"{self.prefix}{key}"


class Shapes:
    """Tensor shapes of one network (hfmagic names), with messages in the checkpoint's names."""

    def __init__(self, tensors: StateDict, name: Callable[[str], str]):
        self.tensors, self.name = tensors, name

    def __call__(self, key: str) -> tuple[int, ...]:
        if key not in self.tensors:
            raise ValueError(
                f"Key {self.name(key)!r} is missing; the architecture cannot be read from the weights without it. "
                f"Keys present: {preview(self.name(k) for k in self.tensors)}."
            )
        return tuple(self.tensors[key].shape)

    def count(self, prefix: str) -> int:
        """Number of numbered children under ``prefix`` (largest index + 1, so a gap shows up as missing keys)."""
        pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
        indices = [int(m[1]) for k in self.tensors if (m := pattern.match(k))]
        return max(indices) + 1 if indices else 0

    def has(self, prefix: str) -> bool:
        return any(k.startswith(prefix) for k in self.tensors)


def load_strict(model: PreTrainedModel, tensors: StateDict, name: Callable[[str], str], where: str, description: str) -> None:
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
        raise ValueError(f"{where} does not match the {description} read from its tensor shapes: " + " | ".join(problems))
    model.load_state_dict({**expected, **tensors}, strict=True)
    model.eval()


class ConversionSpec:
    """How one architecture's checkpoints are recognised and converted.

    Class attributes: ``arch`` (``--arch``'s value; the config's ``model_type``), ``display_name``,
    ``summary_fields`` (config fields worth naming in messages), ``has_discriminator`` (GANs: the
    checkpoint's ``discriminator.*`` is converted too and ``convert`` returns a pair),
    ``takes_scale`` (``--scale`` applies),
    ``options`` (the ``convert_checkpoint`` keyword options it takes besides ``scale``: ``convert``
    gets them, with None for those left out; ``convert_checkpoint`` refuses the others).
    """

    arch: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    summary_fields: ClassVar[tuple[str, ...]] = ()
    has_discriminator: ClassVar[bool] = False
    takes_scale: ClassVar[bool] = False
    options: ClassVar[tuple[str, ...]] = ()

    def identifies(self, keys: set[str]) -> bool:
        """Whether a network's keys (in any naming this spec reads) are this architecture's."""
        raise NotImplementedError

    # Display names of the namings (besides "mmagic" / "basicsr") that ``naming`` may return: other
    # codebases' layouts of the same network, e.g. {"esrgan": "original ESRGAN"}.
    layout_names: ClassVar[dict[str, str]] = {}

    def naming(self, keys) -> str | None:
        """Whose layer names ``keys`` use: "basicsr", "mmagic" (= hfmagic's), another layout named
        in ``layout_names``, or None when the codebases agree or the architecture exists in one only."""
        return None

    def convert(self, generator: Network, discriminator: Network | None, naming: str, scale: int | None, **options):
        """The converted model in eval mode; ``(generator, discriminator or None)`` when
        ``has_discriminator``."""
        raise NotImplementedError

    def describe(self, config: Mapping | PretrainedConfig) -> str:
        """E.g. "MSRResNet (x4, mid_channels=64, num_blocks=16)" from a config or a dict of its fields."""
        get = config.get if isinstance(config, Mapping) else lambda k: getattr(config, k, None)
        parts = [f"x{get('upscale_factor')}"] if get("upscale_factor") else []
        parts += [f"{k}={list(v) if isinstance(v, tuple) else v}" for k in self.summary_fields if (v := get(k)) is not None]
        return f"{self.display_name} ({', '.join(parts)})" if parts else self.display_name

    def describe_tensors(self, tensors: StateDict, name: Callable[[str], str]) -> str:
        """A short description of the network ``tensors`` hold (for the wrong ``--arch`` error)."""
        return self.display_name

    def card_note(self, **options) -> str:
        """Extra text for the converted model's card."""
        return ""

    def weights_license(self, naming: str | None) -> tuple[str, str]:
        """``(Hub license id, whose weights)`` the converted card declares for checkpoints named the
        ``naming`` way: MMagic's and BasicSR's released weights are Apache-2.0; a spec whose
        published weights come from elsewhere overrides it (``hfmagic convert --license`` wins)."""
        return "apache-2.0", "MMagic's and BasicSR's released weights"


class SRConversionSpec(ConversionSpec):
    """A super-resolution network: one generator, hyper-parameters and the upscale factor read
    from the shapes. Subclasses set ``config_class`` / ``model_class``, ``identifies`` and
    ``infer_config``; BasicSR naming differences go in ``basicsr_to_hf`` / ``hf_to_basicsr``
    (with ``naming``), and forward differences in ``finish_config``."""

    config_class: ClassVar[type[PretrainedConfig]]
    model_class: ClassVar[type[PreTrainedModel]]
    takes_scale = True
    basicsr_to_hf: ClassVar[RenameRules] = []
    hf_to_basicsr: ClassVar[RenameRules] = []
    # Set when the weights do not hold the scale (SRCNN): the message asking for --scale.
    scale_not_in_weights: ClassVar[str | None] = None

    def infer_config(self, shapes: Shapes) -> tuple[dict, str | None, int | None]:
        """``(config fields, evidence for the scale, scale)`` from the shapes (hfmagic names);
        the scale is None when the weights do not hold it."""
        raise NotImplementedError

    def finish_config(self, config: dict, naming: str, **options) -> None:
        """Set, in place, what the shapes do not say (e.g. BasicSR's forward differences); gets the
        ``options`` the spec declares."""

    def rename_rules(self, naming: str, keys) -> tuple[RenameRules, RenameRules] | None:
        """``(to hfmagic's names, back to the checkpoint's)`` for the checkpoint ``keys`` named the
        ``naming`` way; None when they are hfmagic's already. Default: ``basicsr_to_hf`` /
        ``hf_to_basicsr`` for "basicsr"; a spec with more layouts overrides it."""
        if naming == "basicsr" and self.basicsr_to_hf:
            return self.basicsr_to_hf, self.hf_to_basicsr
        return None

    def _to_hf(self, net: Network, naming: str) -> tuple[StateDict, Callable[[str], str]]:
        rules = self.rename_rules(naming, net.tensors)
        if rules is None:
            return net.tensors, net.name
        to_hf, back = rules
        tensors = {rename(k, to_hf): v for k, v in net.tensors.items()}
        return tensors, lambda key: net.name(rename(key, back))

    def describe_tensors(self, tensors: StateDict, name: Callable[[str], str]) -> str:
        hf_tensors, hf_name = self._to_hf(Network(tensors, ""), self.naming(tensors) or "mmagic")
        try:
            return self.describe(self.infer_config(Shapes(hf_tensors, lambda k: name(hf_name(k))))[0])
        except ValueError:
            return self.display_name

    def convert(self, generator: Network, discriminator: Network | None, naming: str, scale: int | None, **options):
        tensors, name = self._to_hf(generator, naming)
        config, evidence, inferred = self.infer_config(Shapes(tensors, name))
        if inferred is None:
            if scale is None:
                raise ValueError(self.scale_not_in_weights or f"{self.display_name}'s scale is not in its weights: pass --scale.")
            inferred = scale
        elif scale is not None and scale != inferred:
            raise ValueError(f"--scale {scale} does not match the weights: {evidence}. Pass --scale {inferred} or leave --scale out.")
        config["upscale_factor"] = inferred
        self.finish_config(config, naming, **options)
        model = self.model_class(self.config_class(**config))
        load_strict(model, tensors, name, generator.where, self.describe(model.config))
        return model


class DiscriminatorConversionSpec:
    """A stand-alone discriminator (its own config and model class): converted from the
    ``discriminator.*`` tensors of a checkpoint whose generator another spec converts (MMagic's
    SRGAN / ESRGAN / Real-ESRGAN). Not an ``--arch`` value: ``hfmagic convert`` asks every
    registered discriminator spec whether it ``identifies`` the discriminator's keys, and skips
    the discriminator (logged) when none does.

    Subclasses set ``arch`` (the config's ``model_type``), ``display_name``, ``config_class``,
    ``model_class``, ``summary_fields``, ``identifies`` and ``infer_config``; a codebase whose
    names differ from hfmagic's goes in ``mmagic_to_hf`` / ``hf_to_mmagic`` with ``naming``.
    """

    arch: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    config_class: ClassVar[type[PretrainedConfig]]
    model_class: ClassVar[type[PreTrainedModel]]
    summary_fields: ClassVar[tuple[str, ...]] = ()
    mmagic_to_hf: ClassVar[RenameRules] = []
    hf_to_mmagic: ClassVar[RenameRules] = []

    def identifies(self, keys: set[str]) -> bool:
        """Whether a discriminator's keys (any naming this spec reads) are this architecture's."""
        raise NotImplementedError

    def naming(self, keys) -> str | None:
        """"mmagic" when ``keys`` use MMagic's names and those differ from hfmagic's (then
        ``mmagic_to_hf`` renames them); None otherwise."""
        return None

    def infer_config(self, shapes: Shapes) -> dict:
        """The config fields, read from the tensor shapes (hfmagic names)."""
        raise NotImplementedError

    def describe(self, config: Mapping | PretrainedConfig) -> str:
        """E.g. "ModifiedVGG (in_channels=3, mid_channels=64)"."""
        get = config.get if isinstance(config, Mapping) else lambda k: getattr(config, k, None)
        parts = [f"{k}={v}" for k in self.summary_fields if (v := get(k)) is not None]
        return f"{self.display_name} ({', '.join(parts)})" if parts else self.display_name

    def convert(self, discriminator: Network) -> PreTrainedModel:
        """The converted discriminator, in eval mode; a missing, left-over or mis-shaped key is an error."""
        tensors, name = discriminator.tensors, discriminator.name
        if self.naming(tensors) == "mmagic" and self.mmagic_to_hf:
            tensors = {rename(k, self.mmagic_to_hf): v for k, v in tensors.items()}
            name = lambda key: discriminator.name(rename(key, self.hf_to_mmagic))  # noqa: E731
        model = self.model_class(self.config_class(**self.infer_config(Shapes(tensors, name))))
        load_strict(model, tensors, name, discriminator.where, f"discriminator {self.describe(model.config)}")
        return model
