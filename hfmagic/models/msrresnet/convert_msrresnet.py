"""How MSRResNet checkpoints (MMagic's and BasicSR's) are recognised and converted.

MMagic's names are hfmagic's. BasicSR names the trunk ``body.`` and the upsampling convs
``upconv1`` / ``upconv2``, and its forward applies LeakyReLU(0.1) after each pixel shuffle: the
converted config sets ``upsample_lrelu=True``.
"""

from __future__ import annotations

import math

from ..conversion import Shapes, SRConversionSpec
from .configuration_msrresnet import MSRResNetConfig
from .modeling_msrresnet import MSRResNet


class MSRResNetConversion(SRConversionSpec):
    arch = "msrresnet"
    display_name = "MSRResNet"
    config_class = MSRResNetConfig
    model_class = MSRResNet
    summary_fields = ("mid_channels", "num_blocks", "upsample_lrelu")
    basicsr_to_hf = [
        (r"^body\.", "trunk_net."),
        (r"^upconv1\.", "upsample1.upsample_conv."),
        (r"^upconv2\.", "upsample2.upsample_conv."),
    ]
    hf_to_basicsr = [
        (r"^trunk_net\.", "body."),
        (r"^upsample1\.upsample_conv\.", "upconv1."),
        (r"^upsample2\.upsample_conv\.", "upconv2."),
    ]

    def identifies(self, keys: set[str]) -> bool:
        # BSRGAN's RRDBNet also has upconv1 (next to its RRDB_trunk)
        return (
            any(k.startswith(("trunk_net.", "upsample1.", "upconv1.")) for k in keys)
            and "conv_after_body.weight" not in keys
            and not any(k.startswith("RRDB_trunk.") for k in keys)
        )

    def naming(self, keys) -> str | None:
        if any(k.startswith(("body.", "upconv1.", "upconv2.")) for k in keys):
            return "basicsr"
        if any(k.startswith(("trunk_net.", "upsample1.", "upsample2.")) for k in keys):
            return "mmagic"
        return None

    def infer_config(self, shapes: Shapes) -> tuple[dict, str, int]:
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

    def finish_config(self, config: dict, naming: str, **options) -> None:
        if naming == "basicsr":
            config["upsample_lrelu"] = True  # BasicSR's forward has LeakyReLU(0.1) after each pixel shuffle


__all__ = ["MSRResNetConversion"]
