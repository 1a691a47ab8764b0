"""How MMagic's DCGAN checkpoints are recognised and converted (generator and discriminator).

MMagic's DCGAN checkpoints were trained on BGR images: the generator's output channels and the
discriminator's input channels are reversed, so the converted generator draws RGB and the
converted discriminator scores RGB (``bgr_to_rgb=False`` keeps them as they are).
"""

from __future__ import annotations

import logging

from ..conversion import ConversionSpec, Network, Shapes, StateDict, load_strict
from .configuration_dcgan import DCGANConfig
from .modeling_dcgan import DCGANDiscriminator, DCGANGenerator

logger = logging.getLogger("hfmagic.convert")


def _infer_config(generator: Shapes, discriminator: Shapes | None) -> dict:
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


def _bgr_to_rgb(generator: StateDict, discriminator: StateDict | None) -> None:
    """Reverse the image channels in place: the generator's output (ConvTranspose2d weight is
    (in, out, k, k), so dim 1, plus the bias) and the discriminator's input (Conv2d weight dim 1)."""
    generator["output_layer.conv.weight"] = generator["output_layer.conv.weight"].flip(1)
    if "output_layer.conv.bias" in generator:
        generator["output_layer.conv.bias"] = generator["output_layer.conv.bias"].flip(0)
    if discriminator is not None:
        discriminator["downsamples.0.conv.weight"] = discriminator["downsamples.0.conv.weight"].flip(1)


class DCGANConversion(ConversionSpec):
    arch = "dcgan"
    display_name = "DCGAN"
    summary_fields = ("image_size", "num_channels", "noise_size", "generator_base_channels", "discriminator_base_channels")
    has_discriminator = True
    options = ("bgr_to_rgb",)

    def identifies(self, keys: set[str]) -> bool:
        return any(k.startswith(("noise2feat.", "upsampling.", "downsamples.")) for k in keys)

    def describe_tensors(self, tensors: StateDict, name) -> str:
        shapes = Shapes(tensors, name)
        try:
            return self.describe(_infer_config(shapes, None) if shapes.has("noise2feat.") else {})
        except ValueError:
            return self.display_name

    def card_note(self, bgr_to_rgb: bool | None = None, **options) -> str:
        if bgr_to_rgb is False:
            return ""
        return "MMagic trained it on BGR images; its channels were reversed so that it takes and draws RGB."

    def convert(self, generator: Network, discriminator: Network | None, naming: str, scale: int | None, bgr_to_rgb: bool | None = None, **options):
        if naming == "basicsr":
            raise ValueError("BasicSR has no DCGAN: a BasicSR checkpoint (or --source basicsr) cannot hold one.")
        g_shapes = Shapes(generator.tensors, generator.name)
        d_shapes = Shapes(discriminator.tensors, discriminator.name) if discriminator is not None else None
        try:
            config = DCGANConfig(**_infer_config(g_shapes, d_shapes))
        except ValueError as err:
            raise ValueError(f"The DCGAN weights describe an unsupported configuration: {err}") from err
        g_tensors = dict(generator.tensors)
        d_tensors = dict(discriminator.tensors) if discriminator is not None else None
        if bgr_to_rgb is not False:
            if config.num_channels == 3:
                # Check the shapes first so that a malformed checkpoint fails with the key list, not in flip().
                g_shapes("output_layer.conv.weight")
                _bgr_to_rgb(g_tensors, d_tensors)
            else:
                logger.info("%d-channel DCGAN: no BGR -> RGB permutation.", config.num_channels)
        g_model = DCGANGenerator(config)
        load_strict(g_model, g_tensors, generator.name, generator.where, f"generator of {self.describe(config)}")
        d_model = None
        if d_tensors is not None:
            d_model = DCGANDiscriminator(config)
            load_strict(d_model, d_tensors, discriminator.name, discriminator.where, f"discriminator of {self.describe(config)}")
        return g_model, d_model


__all__ = ["DCGANConversion"]
