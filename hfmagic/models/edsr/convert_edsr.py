"""How EDSR checkpoints (MMagic's ``EDSRNet`` and BasicSR's ``EDSR``) are recognised and converted.

BasicSR's upsampler is ``Sequential(conv, PixelShuffle, conv, ...)``, so its convs sit at even
indices (``upsample.0``, ``upsample.2``); hfmagic's (= MMagic's) are ``upsample.{i}.upsample_conv``.
BasicSR scales its input by ``img_range=255`` after subtracting the mean: the converted config
holds ``rgb_std = 1/255``, which is the same computation. ``res_scale`` is not in the weights.
"""

from __future__ import annotations

import logging
import re

from ..conversion import Shapes, SRConversionSpec
from .configuration_edsr import EDSRConfig
from .modeling_edsr import EDSR

logger = logging.getLogger("hfmagic.convert")


def _even_stage(match: re.Match) -> str:
    return f"upsample.{int(match[1]) // 2}.upsample_conv.{match[2]}"


class EDSRConversion(SRConversionSpec):
    arch = "edsr"
    display_name = "EDSR"
    config_class = EDSRConfig
    model_class = EDSR
    summary_fields = ("mid_channels", "num_blocks", "res_scale", "rgb_std")
    options = ("res_scale",)
    basicsr_to_hf = [(r"^upsample\.(\d*[02468])\.(weight|bias)$", _even_stage)]
    hf_to_basicsr = [(r"^upsample\.(\d+)\.upsample_conv\.", lambda m: f"upsample.{2 * int(m[1])}.")]

    def identifies(self, keys: set[str]) -> bool:
        return any(k.startswith("conv_after_body.") for k in keys)

    def naming(self, keys) -> str | None:
        if any(re.match(r"upsample\.\d+\.(weight|bias)$", k) for k in keys):
            return "basicsr"
        if any(k.startswith("upsample.") for k in keys):
            return "mmagic"
        return None

    def infer_config(self, shapes: Shapes) -> tuple[dict, str, int]:
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

    def finish_config(self, config: dict, naming: str, res_scale: float | None = None, **options) -> None:
        if res_scale is None:
            # Not in the weights: EDSR-baseline uses 1.0; the large EDSR (256 features, 32 blocks) 0.1,
            # in both codebases.
            large = config["mid_channels"] == 256 and config["num_blocks"] == 32
            res_scale = 0.1 if large else 1.0
            logger.info("EDSR res_scale is not stored in the weights; using %s (pass res_scale to override).", res_scale)
        config["res_scale"] = res_scale
        if naming == "basicsr":
            # BasicSR: (x - mean) * 255 ... / 255 + mean, i.e. MMagic's (x - mean) / std ... * std + mean
            # with std = 1/255.
            config["rgb_std"] = (1 / 255,) * config["in_channels"]


__all__ = ["EDSRConversion"]
