"""Tiny settings for each of hfmagic's registered architectures (the tester's part of transformers'
ModelTesterMixin): the common tests in test_models.py and test_convert.py run over every registered
architecture with these, and fail for an architecture that has none."""

from hfmagic.models import DiscriminatorConfig, SuperResolutionConfig, registered_models

TINY_CONFIGS = {
    "srcnn": {"channels": (3, 8, 4, 3)},
    "msrresnet": {"mid_channels": 8, "num_blocks": 2},
    "edsr": {"mid_channels": 8, "num_blocks": 2},
    "srvggnet_compact": {"mid_channels": 8, "num_convs": 2},
    "rrdbnet": {"mid_channels": 8, "num_blocks": 1, "growth_channels": 4},
    "dcgan": {"image_size": 16, "noise_size": 8, "generator_base_channels": 32, "discriminator_base_channels": 8},
    "stylegan2": {"out_size": 16, "style_channels": 8, "num_mlps": 2, "max_channels": 8},
    "modified_vgg": {"mid_channels": 4},
    "unet_discriminator_sn": {"mid_channels": 4},
}

# hfmagic's own architectures (tests register models of their own too), by model_type.
HFMAGIC_MODELS = {
    model_type: pair for model_type, pair in registered_models().items() if pair[1].__module__.startswith("hfmagic.")
}
SR_MODEL_TYPES = [t for t, (config_class, _) in HFMAGIC_MODELS.items() if issubclass(config_class, SuperResolutionConfig)]
# Stand-alone discriminators (their configs subclass DiscriminatorConfig): registered architectures,
# but no generators, so the generator tests leave them out.
DISCRIMINATOR_MODEL_TYPES = [t for t, (config_class, _) in HFMAGIC_MODELS.items() if issubclass(config_class, DiscriminatorConfig)]


def tiny_model(model_type: str, **overrides):
    """A randomly initialised tiny model of a registered architecture (the generator, for a GAN; the
    discriminator, for a stand-alone discriminator)."""
    config_class, model_class = HFMAGIC_MODELS[model_type]
    return model_class(config_class(**{**TINY_CONFIGS[model_type], **overrides}))
