"""How MMagic's ModifiedVGG discriminator (SRGAN / ESRGAN checkpoints' ``discriminator.*``) is
recognised and converted. MMagic's names are hfmagic's."""

from __future__ import annotations

from ..conversion import DiscriminatorConversionSpec, Shapes
from .configuration_modified_vgg import ModifiedVGGConfig
from .modeling_modified_vgg import ModifiedVGGDiscriminator


class ModifiedVGGConversion(DiscriminatorConversionSpec):
    arch = "modified_vgg"
    display_name = "ModifiedVGG"
    config_class = ModifiedVGGConfig
    model_class = ModifiedVGGDiscriminator
    summary_fields = ("in_channels", "mid_channels")

    def identifies(self, keys: set[str]) -> bool:
        return {"conv0_0.weight", "conv0_1.weight", "bn4_1.weight", "linear1.weight", "linear2.weight"} <= keys

    def infer_config(self, shapes: Shapes) -> dict:
        mid, in_channels = shapes("conv0_0.weight")[:2]
        features = shapes("linear1.weight")[1]
        side = ModifiedVGGConfig.input_size // 2**5
        if features != mid * 8 * side * side:
            raise ValueError(
                f"{shapes.name('linear1.weight')} takes {features} features, not {mid}*8*{side}*{side} = "
                f"{mid * 8 * side * side}: this ModifiedVGG was not built for {ModifiedVGGConfig.input_size}x"
                f"{ModifiedVGGConfig.input_size} images, the only size MMagic's (and hfmagic's) takes."
            )
        return {"in_channels": in_channels, "mid_channels": mid}


__all__ = ["ModifiedVGGConversion"]
