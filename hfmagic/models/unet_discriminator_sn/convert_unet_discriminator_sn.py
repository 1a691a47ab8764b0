"""How the U-Net discriminator with spectral norm is recognised and converted: MMagic's
Real-ESRGAN checkpoints name its layers ``conv_0`` ... ``conv_9``; Real-ESRGAN / BasicSR (and
hfmagic) ``conv0`` ... ``conv9``. ``skip_connection`` is not in the weights: True, as in MMagic's
and Real-ESRGAN's configs."""

from __future__ import annotations

from ..conversion import DiscriminatorConversionSpec, Shapes
from .configuration_unet_discriminator_sn import UNetDiscriminatorSNConfig
from .modeling_unet_discriminator_sn import UNetDiscriminatorSN

_MARKERS = ("{}0.weight", "{}1.weight_orig", "{}8.weight_orig", "{}9.weight")


class UNetDiscriminatorSNConversion(DiscriminatorConversionSpec):
    arch = "unet_discriminator_sn"
    display_name = "UNetDiscriminatorSN"
    config_class = UNetDiscriminatorSNConfig
    model_class = UNetDiscriminatorSN
    summary_fields = ("in_channels", "mid_channels", "skip_connection")
    mmagic_to_hf = [(r"^conv_(\d+)\.", r"conv\1.")]
    hf_to_mmagic = [(r"^conv(\d+)\.", r"conv_\1.")]

    def identifies(self, keys: set[str]) -> bool:
        return any({marker.format(prefix) for marker in _MARKERS} <= keys for prefix in ("conv", "conv_"))

    def naming(self, keys) -> str:
        return "mmagic" if "conv_0.weight" in keys else "basicsr"

    def infer_config(self, shapes: Shapes) -> dict:
        mid, in_channels = shapes("conv0.weight")[:2]
        return {"in_channels": in_channels, "mid_channels": mid}


__all__ = ["UNetDiscriminatorSNConversion"]
