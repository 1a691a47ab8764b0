"""How SRVGGNetCompact checkpoints (Real-ESRGAN's ``realesr-*`` files) are recognised and converted.

hfmagic's names are Real-ESRGAN's (``body.N``: convs at even indices, PReLU slopes at odd ones).
Everything but ReLU vs LeakyReLU is in the tensors: the first conv gives the input channels and the
width, the last index the number of convs, the last conv's ``out_channels * s^2`` outputs the scale
(the output has the input's channels: the input is added back), and PReLU slopes the activation.
ReLU and LeakyReLU(0.1) hold no tensors, so weights without slopes need the ``act_type`` option.
"""

from __future__ import annotations

import math
import re

from ..conversion import Shapes, SRConversionSpec
from .configuration_srvggnet_compact import ACT_TYPES, SRVGGNetCompactConfig
from .modeling_srvggnet_compact import SRVGGNetCompact

_BODY_KEY = re.compile(r"body\.\d+\.(weight|bias)")


class SRVGGNetCompactConversion(SRConversionSpec):
    arch = "srvggnet_compact"
    display_name = "SRVGGNetCompact"
    config_class = SRVGGNetCompactConfig
    model_class = SRVGGNetCompact
    summary_fields = ("mid_channels", "num_convs", "act_type")
    options = ("act_type",)

    def weights_license(self, naming: str | None) -> tuple[str, str]:
        # every published SRVGGNetCompact is Real-ESRGAN's (realesr-*.pth), released under BSD-3-Clause
        return "bsd-3-clause", "Real-ESRGAN's released weights (realesr-*.pth)"

    def identifies(self, keys: set[str]) -> bool:
        # Only flat `body.N.weight/bias` keys: BasicSR's MSRResNet / EDSR and RRDBNet also have a
        # `body.` but with blocks inside it (`body.0.conv1.weight`) and a `conv_first`.
        return "body.0.weight" in keys and all(_BODY_KEY.fullmatch(k) for k in keys)

    def infer_config(self, shapes: Shapes) -> tuple[dict, str, int]:
        mid, in_ch = shapes("body.0.weight")[:2]
        last = shapes.count("body.") - 1
        last_name = shapes.name(f"body.{last}.weight")
        if last < 2 or last % 2:
            raise ValueError(
                f"The last body entry is {last_name}: SRVGGNetCompact's body ends with a conv at an even index >= 2 "
                "(conv, act, ..., conv); these are not SRVGGNetCompact weights."
            )
        last_out = shapes(f"body.{last}.weight")[0]
        scale = math.isqrt(last_out // in_ch)
        if scale < 1 or scale * scale * in_ch != last_out:
            raise ValueError(
                f"{last_name} has {last_out} output channels: not {in_ch}*s^2 for an integer scale s "
                f"({in_ch} = the input channels of {shapes.name('body.0.weight')}); these are not SRVGGNetCompact weights."
            )
        evidence = f"{last_name} has {last_out} = {in_ch}*{scale}^2 output channels, so the weights are x{scale}"
        # PReLU keeps one slope per channel at the odd indices; ReLU and LeakyReLU keep nothing.
        prelu = any(f"body.{i}.weight" in shapes.tensors for i in range(1, last, 2))
        config = {
            "upscale_factor": scale,
            "in_channels": in_ch,
            "out_channels": in_ch,
            "mid_channels": mid,
            "num_convs": last // 2 - 1,
            "act_type": "prelu" if prelu else None,  # None: ReLU or LeakyReLU, settled by finish_config
        }
        return config, evidence, scale

    def finish_config(self, config: dict, naming: str, act_type: str | None = None, **options) -> None:
        if act_type is not None and act_type not in ACT_TYPES:
            raise ValueError(f"Unknown act_type {act_type!r} (--act-type); choose one of {list(ACT_TYPES)}.")
        if config["act_type"] == "prelu":
            if act_type not in (None, "prelu"):
                raise ValueError(
                    f"--act-type {act_type} (act_type={act_type!r}) does not match the weights: they hold PReLU slopes "
                    "(body.1.weight, body.3.weight, ...). Leave --act-type out."
                )
            return
        if act_type is None:
            raise ValueError(
                "These SRVGGNetCompact weights hold no activation tensors (no PReLU slopes at body.1, body.3, ...), so "
                "the network used ReLU or LeakyReLU(0.1), which the weights cannot tell apart: pass --act-type relu or "
                "--act-type leakyrelu (convert_checkpoint(..., act_type=...)), the act_type of the Real-ESRGAN config "
                "the weights were trained with."
            )
        if act_type == "prelu":
            raise ValueError(
                "--act-type prelu does not match the weights: PReLU keeps slopes at body.1, body.3, ... and these "
                "weights have none. Pass --act-type relu or --act-type leakyrelu."
            )
        config["act_type"] = act_type

    def card_note(self, **options) -> str:
        return "The network is Real-ESRGAN's `SRVGGNetCompact` (`realesrgan/archs/srvgg_arch.py`), same weights and outputs."


__all__ = ["SRVGGNetCompactConversion"]
