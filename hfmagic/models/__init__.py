"""hfmagic's architectures, registered with transformers' Auto classes on import."""

from transformers import AutoConfig, AutoModel, AutoModelForImageToImage, PretrainedConfig, PreTrainedModel

from .dcgan import DCGANConfig, DCGANDiscriminator, DCGANGenerator, DCGANPreTrainedModel
from .edsr import EDSR, EDSRConfig
from .msrresnet import MSRResNet, MSRResNetConfig
from .sr_base import SuperResolutionConfig, SuperResolutionPreTrainedModel
from .srcnn import SRCNN, SRCNNConfig


def register_model(config_class: type[PretrainedConfig], model_class: type[PreTrainedModel]) -> None:
    """Register a (config, model) pair with ``AutoConfig``/``AutoModel`` (and, for super-resolution
    models, ``AutoModelForImageToImage``), so ``AutoModel.from_pretrained`` finds it by ``model_type``.

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
    try:
        AutoConfig.register(model_type, config_class, exist_ok=True)
    except ValueError as err:
        raise ValueError(f"model_type {model_type!r} cannot be registered: {err}") from err
    mappings = [AutoModel]
    if issubclass(model_class, SuperResolutionPreTrainedModel):
        mappings.append(AutoModelForImageToImage)
    for auto_class in mappings:
        auto_class.register(config_class, model_class, exist_ok=True)


for _config, _model in ((SRCNNConfig, SRCNN), (MSRResNetConfig, MSRResNet), (EDSRConfig, EDSR), (DCGANConfig, DCGANGenerator)):
    register_model(_config, _model)

__all__ = [
    "register_model",
    "SuperResolutionConfig",
    "SuperResolutionPreTrainedModel",
    "SRCNNConfig",
    "SRCNN",
    "MSRResNetConfig",
    "MSRResNet",
    "EDSRConfig",
    "EDSR",
    "DCGANConfig",
    "DCGANGenerator",
    "DCGANDiscriminator",
    "DCGANPreTrainedModel",
]
