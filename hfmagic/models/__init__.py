"""hfmagic's architectures, registered with transformers' Auto classes on import."""

import difflib
import inspect

from transformers import AutoConfig, AutoModel, AutoModelForImageToImage, PretrainedConfig, PreTrainedModel

from .conversion import ConversionSpec, DiscriminatorConversionSpec
from .dcgan import DCGANConfig, DCGANConversion, DCGANDiscriminator, DCGANGenerator, DCGANPreTrainedModel
from .discriminator_base import DiscriminatorConfig, DiscriminatorPreTrainedModel
from .edsr import EDSR, EDSRConfig, EDSRConversion
from .modified_vgg import ModifiedVGGConfig, ModifiedVGGConversion, ModifiedVGGDiscriminator
from .msrresnet import MSRResNet, MSRResNetConfig, MSRResNetConversion
from .rrdbnet import RRDBNet, RRDBNetConfig, RRDBNetConversion
from .sr_base import SuperResolutionConfig, SuperResolutionPreTrainedModel
from .srcnn import SRCNN, SRCNNConfig, SRCNNConversion
from .stylegan2 import StyleGAN2Config, StyleGAN2Conversion, StyleGAN2Discriminator, StyleGAN2Generator, StyleGAN2PreTrainedModel
from .srvggnet_compact import SRVGGNetCompact, SRVGGNetCompactConfig, SRVGGNetCompactConversion
from .unet_discriminator_sn import UNetDiscriminatorSN, UNetDiscriminatorSNConfig, UNetDiscriminatorSNConversion

# model_type -> how `hfmagic convert` recognises and converts that architecture's checkpoints.
_CONVERSIONS: dict[str, ConversionSpec] = {}
# model_type -> how `hfmagic convert` recognises a stand-alone discriminator next to a generator.
_DISCRIMINATOR_CONVERSIONS: dict[str, DiscriminatorConversionSpec] = {}
# model_type -> (config class, model class), in registration order.
_REGISTERED: dict[str, tuple[type[PretrainedConfig], type[PreTrainedModel]]] = {}


def register_model(
    config_class: type[PretrainedConfig],
    model_class: type[PreTrainedModel],
    conversion: ConversionSpec | DiscriminatorConversionSpec | None = None,
) -> None:
    """Register a (config, model) pair with ``AutoConfig``/``AutoModel`` (and, for super-resolution
    models, ``AutoModelForImageToImage``), so ``AutoModel.from_pretrained`` finds it by ``model_type``;
    with ``conversion`` (a ``hfmagic.models.conversion.ConversionSpec`` whose ``arch`` is the
    ``model_type``), ``hfmagic convert`` recognises and converts its checkpoints too.

    A stand-alone discriminator (its config a ``DiscriminatorConfig`` subclass, e.g. SRGAN's
    ``ModifiedVGGDiscriminator``) is registered the same way, with a ``DiscriminatorConversionSpec``:
    it is then no ``--arch`` of its own, but ``hfmagic convert`` converts a checkpoint's
    ``discriminator.*`` with it next to the generator (see :func:`discriminator_conversion_specs`).

    Registering the same pair twice is a no-op; a ``model_type`` already taken by another class
    raises ``ValueError``.
    """
    model_type = getattr(config_class, "model_type", "")
    if not model_type:
        raise ValueError(f"{config_class.__name__} needs a class attribute `model_type = \"...\"` to be registered.")
    if getattr(model_class, "config_class", None) is not config_class:
        raise ValueError(
            f"{model_class.__name__}.config_class must be {config_class.__name__} "
            f"(add `config_class = {config_class.__name__}` to the model class)."
        )
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if model_type in CONFIG_MAPPING:
        taken = CONFIG_MAPPING[model_type]
        # the same class defined again (a re-run notebook cell, a reloaded module) may re-register
        if (taken.__module__, taken.__qualname__) != (config_class.__module__, config_class.__qualname__):
            raise ValueError(
                f"model_type {model_type!r} is already taken by {taken.__module__}.{taken.__qualname__}: give "
                f"{config_class.__name__} a model_type of its own (e.g. \"my-{model_type}\"), or folders saved with the "
                f"other class would load as {model_class.__name__}."
            )
    try:
        AutoConfig.register(model_type, config_class, exist_ok=True)
    except ValueError as err:
        raise ValueError(f"model_type {model_type!r} cannot be registered: {err}") from err
    mappings = [AutoModel]
    if issubclass(model_class, SuperResolutionPreTrainedModel):
        mappings.append(AutoModelForImageToImage)
    for auto_class in mappings:
        auto_class.register(config_class, model_class, exist_ok=True)
    _REGISTERED[model_type] = (config_class, model_class)
    if conversion is not None:
        is_discriminator = issubclass(config_class, DiscriminatorConfig)
        expected = DiscriminatorConversionSpec if is_discriminator else ConversionSpec
        if not isinstance(conversion, expected) or conversion.arch != model_type:
            raise ValueError(
                f"conversion must be a {expected.__name__} instance whose arch is {model_type!r} (the config's model_type), "
                f"got {conversion!r}."
            )
        (_DISCRIMINATOR_CONVERSIONS if is_discriminator else _CONVERSIONS)[model_type] = conversion


def registered_models() -> dict[str, tuple[type[PretrainedConfig], type[PreTrainedModel]]]:
    """Every registered architecture: ``model_type -> (config class, model class)`` (for a GAN,
    the generator; hfmagic's own first, then the user's). Stand-alone discriminators are among them;
    their config classes subclass ``DiscriminatorConfig``."""
    return dict(_REGISTERED)


def conversion_specs() -> dict[str, ConversionSpec]:
    """The registered architectures that ``hfmagic convert`` converts (its ``--arch`` values), by
    ``model_type``; stand-alone discriminators are in :func:`discriminator_conversion_specs`."""
    return dict(_CONVERSIONS)


def discriminator_conversion_specs() -> dict[str, DiscriminatorConversionSpec]:
    """The registered stand-alone discriminators ``hfmagic convert`` converts from a checkpoint's
    ``discriminator.*`` (next to a generator that has no discriminator of its own), by ``model_type``."""
    return dict(_DISCRIMINATOR_CONVERSIONS)


def config_fields(config_class: type[PretrainedConfig]) -> list[str]:
    """The architecture's own settings of ``config_class`` (its ``__init__`` arguments that
    transformers' ``PretrainedConfig`` does not have)."""
    base = set(inspect.signature(PretrainedConfig.__init__).parameters)
    return [
        name
        for name, param in inspect.signature(config_class.__init__).parameters.items()
        if name not in base and param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL)
    ]


def check_config_overrides(config_class: type[PretrainedConfig], overrides: object, flags: dict[str, str] | None = None) -> dict:
    """``overrides`` (e.g. a script's ``--model_config_overrides`` JSON) if it is a dict of fields of
    ``config_class``; else ``ValueError`` naming the bad keys and the closest fields. A config takes
    any keyword (a typo would be stored and silently not used), hence this check. ``flags`` maps
    fields a script sets by its own flag (``{"upscale_factor": "--scale"}``) to that flag."""
    example = '{"num_blocks": 4}'
    if not isinstance(overrides, dict):
        raise ValueError(f"config overrides must be a JSON object of config fields, e.g. '{example}'; got {overrides!r}.")
    fields = config_fields(config_class)
    problems = []
    for key in overrides:
        if flags and key in flags:
            problems.append(f"{key!r} is set by {flags[key]}")
        elif key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            problems.append(f"{key!r} is not a field of {config_class.__name__}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    if problems:
        settable = [f for f in fields if not (flags and f in flags)]
        raise ValueError(f"{'; '.join(problems)}. The fields of {config_class.__name__}: {', '.join(settable)}.")
    return overrides


for _config, _model, _conversion in (
    (SRCNNConfig, SRCNN, SRCNNConversion()),
    (MSRResNetConfig, MSRResNet, MSRResNetConversion()),
    (EDSRConfig, EDSR, EDSRConversion()),
    (SRVGGNetCompactConfig, SRVGGNetCompact, SRVGGNetCompactConversion()),
    (RRDBNetConfig, RRDBNet, RRDBNetConversion()),
    (DCGANConfig, DCGANGenerator, DCGANConversion()),
    (StyleGAN2Config, StyleGAN2Generator, StyleGAN2Conversion()),
    (ModifiedVGGConfig, ModifiedVGGDiscriminator, ModifiedVGGConversion()),
    (UNetDiscriminatorSNConfig, UNetDiscriminatorSN, UNetDiscriminatorSNConversion()),
):
    register_model(_config, _model, conversion=_conversion)

__all__ = [
    "check_config_overrides",
    "conversion_specs",
    "discriminator_conversion_specs",
    "ConversionSpec",
    "DiscriminatorConversionSpec",
    "registered_models",
    "config_fields",
    "register_model",
    "SuperResolutionConfig",
    "SuperResolutionPreTrainedModel",
    "SRCNNConfig",
    "SRCNN",
    "MSRResNetConfig",
    "MSRResNet",
    "EDSRConfig",
    "EDSR",
    "SRVGGNetCompactConfig",
    "SRVGGNetCompact",
    "RRDBNetConfig",
    "RRDBNet",
    "DCGANConfig",
    "DCGANGenerator",
    "DCGANDiscriminator",
    "DCGANPreTrainedModel",
    "StyleGAN2Config",
    "StyleGAN2Generator",
    "StyleGAN2Discriminator",
    "StyleGAN2PreTrainedModel",
    "DiscriminatorConfig",
    "DiscriminatorPreTrainedModel",
    "ModifiedVGGConfig",
    "ModifiedVGGDiscriminator",
    "UNetDiscriminatorSNConfig",
    "UNetDiscriminatorSN",
]
