"""How RRDBNet checkpoints (ESRGAN, Real-ESRGAN, BSRGAN, RealSR...) are recognised and converted.

Three layouts name the same tensors:

- MMagic's = BasicSR's / Real-ESRGAN's = hfmagic's: ``conv_first``, ``body.N.rdb{1,2,3}.conv{1..5}``,
  ``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``, ``conv_last`` (MMagic ``state_dict``,
  BasicSR ``params_ema`` / ``params``);
- the original ESRGAN repository's ``nn.Sequential`` (``RRDB_ESRGAN_x4.pth``, and the files spandrel
  loads as "old ESRGAN"): ``model.0`` = conv_first, ``model.1.sub.N.RDB{j}.conv{k}.0`` = the dense
  blocks, ``model.1.sub.<num_blocks>`` = conv_body, ``model.3`` / ``model.6`` = conv_up1 / conv_up2,
  ``model.8`` = conv_hr, ``model.10`` = conv_last;
- BSRGAN's / RealSR's: ``conv_first``, ``RRDB_trunk.N.RDB{j}.conv{k}``, ``trunk_conv``, ``upconv1``,
  ``upconv2``, ``HRconv``, ``conv_last``.

The forward is the same in all three. The scale comes from conv_first's input channels: in_channels
x 4 (x2) or x 16 (x1) for the pixel-unshuffled input, assuming as many input as output channels.
"""

from __future__ import annotations

import re

from ..conversion import RenameRules, Shapes, SRConversionSpec
from .configuration_rrdbnet import RRDBNetConfig
from .modeling_rrdbnet import RRDBNet

_ESRGAN_TO_HF: RenameRules = [
    (r"^model\.0\.", "conv_first."),
    (r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.", r"body.\1.rdb\2.conv\3."),
    (r"^model\.1\.sub\.\d+\.(weight|bias)$", r"conv_body.\1"),  # the conv after the last RRDB
    (r"^model\.3\.", "conv_up1."),
    (r"^model\.6\.", "conv_up2."),
    (r"^model\.8\.", "conv_hr."),
    (r"^model\.10\.", "conv_last."),
]
_BSRGAN_TO_HF: RenameRules = [
    (r"^RRDB_trunk\.(\d+)\.RDB(\d)\.", r"body.\1.rdb\2."),
    (r"^trunk_conv\.", "conv_body."),
    (r"^upconv1\.", "conv_up1."),
    (r"^upconv2\.", "conv_up2."),
    (r"^HRconv\.", "conv_hr."),
]
_HF_TO_BSRGAN: RenameRules = [
    (r"^body\.(\d+)\.rdb(\d)\.", r"RRDB_trunk.\1.RDB\2."),
    (r"^conv_body\.", "trunk_conv."),
    (r"^conv_up1\.", "upconv1."),
    (r"^conv_up2\.", "upconv2."),
    (r"^conv_hr\.", "HRconv."),
]


def _hf_to_esrgan(num_blocks: int) -> RenameRules:
    return [
        (r"^conv_first\.", "model.0."),
        (r"^body\.(\d+)\.rdb(\d)\.conv(\d)\.", r"model.1.sub.\1.RDB\2.conv\3.0."),
        (r"^conv_body\.", f"model.1.sub.{num_blocks}."),
        (r"^conv_up1\.", "model.3."),
        (r"^conv_up2\.", "model.6."),
        (r"^conv_hr\.", "model.8."),
        (r"^conv_last\.", "model.10."),
    ]


class RRDBNetConversion(SRConversionSpec):
    arch = "rrdbnet"
    display_name = "RRDBNet"
    config_class = RRDBNetConfig
    model_class = RRDBNet
    summary_fields = ("mid_channels", "num_blocks", "growth_channels")
    layout_names = {"esrgan": "original ESRGAN", "bsrgan": "BSRGAN/RealSR"}

    def identifies(self, keys: set[str]) -> bool:
        return any(
            re.match(r"body\.\d+\.rdb1\.", k) or k.startswith("RRDB_trunk.") or re.match(r"model\.1\.sub\.\d+\.RDB1\.", k)
            for k in keys
        )

    def naming(self, keys) -> str | None:
        if any(k.startswith("model.1.sub.") for k in keys):
            return "esrgan"
        if any(k.startswith("RRDB_trunk.") for k in keys):
            return "bsrgan"
        return None  # MMagic's names are BasicSR's and Real-ESRGAN's

    def rename_rules(self, naming: str, keys) -> tuple[RenameRules, RenameRules] | None:
        if naming == "bsrgan":
            return _BSRGAN_TO_HF, _HF_TO_BSRGAN
        if naming == "esrgan":
            blocks = [int(m[1]) for k in keys if (m := re.match(r"model\.1\.sub\.(\d+)\.RDB", k))]
            return _ESRGAN_TO_HF, _hf_to_esrgan(max(blocks) + 1 if blocks else 0)
        return None

    def infer_config(self, shapes: Shapes) -> tuple[dict, str, int]:
        mid, first_in = shapes("conv_first.weight")[:2]
        out = shapes("conv_last.weight")[0]
        for key in ("conv_up1.weight", "conv_up2.weight"):
            if key not in shapes.tensors:
                raise ValueError(
                    f"{shapes.name(key)} is missing: RRDBNet upsamples in two nearest x2 stages (conv_up1, conv_up2) at "
                    "every scale (x1/x2 pixel-unshuffle the input first). Weights with a single upsampling stage "
                    "(e.g. BSRGAN's x2 model) are another network, which hfmagic does not convert."
                )
        first = shapes.name("conv_first.weight")
        unshuffle = next((m for m in (1, 2, 4) if first_in == out * m * m), None)
        if unshuffle is None:
            raise ValueError(
                f"{first} takes {first_in} input channels for {out} output channels ({shapes.name('conv_last.weight')}): "
                f"not {out} (x4), {out}*2^2 (x2, pixel-unshuffled input) nor {out}*4^2 (x1); these weights are "
                "not an RRDBNet hfmagic can read (it assumes as many input as output channels)."
            )
        scale = 4 // unshuffle
        how = "no pixel-unshuffle" if unshuffle == 1 else f"the input pixel-unshuffled by {unshuffle}"
        evidence = f"{first} takes {first_in} = {out}*{unshuffle}^2 input channels ({how}), so the weights are x{scale}"
        config = {
            "upscale_factor": scale,
            "in_channels": first_in // (unshuffle * unshuffle),
            "out_channels": out,
            "mid_channels": mid,
            "num_blocks": shapes.count("body."),
            "growth_channels": shapes("body.0.rdb1.conv1.weight")[0] if shapes.has("body.") else 32,
        }
        return config, evidence, scale


__all__ = ["RRDBNetConversion"]
