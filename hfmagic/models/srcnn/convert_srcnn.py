"""How SRCNN checkpoints (MMagic's ``SRCNNNet``; BasicSR has none) are recognised and converted."""

from __future__ import annotations

from ..conversion import Shapes, SRConversionSpec
from .configuration_srcnn import SRCNNConfig
from .modeling_srcnn import SRCNN


class SRCNNConversion(SRConversionSpec):
    arch = "srcnn"
    display_name = "SRCNN"
    config_class = SRCNNConfig
    model_class = SRCNN
    summary_fields = ("channels", "kernel_sizes")
    scale_not_in_weights = (
        "SRCNN's scale is not stored in its weights (it upsamples bicubically before its first conv): pass "
        "--scale (scale=...), e.g. --scale 4 for MMagic's srcnn_x4k915 checkpoints."
    )

    def identifies(self, keys: set[str]) -> bool:
        return {"conv1.weight", "conv3.weight"} <= keys and "conv_first.weight" not in keys

    def infer_config(self, shapes: Shapes) -> tuple[dict, None, None]:
        w1, w2, w3 = shapes("conv1.weight"), shapes("conv2.weight"), shapes("conv3.weight")
        config = {"channels": (w1[1], w1[0], w2[0], w3[0]), "kernel_sizes": (w1[2], w2[2], w3[2])}
        return config, None, None  # the scale is not in the weights


__all__ = ["SRCNNConversion"]
