"""hfmagic: MMagic's super-resolution and GAN models, Hugging Face-native.

Names are imported lazily (``import hfmagic`` stays cheap for the CLI); ``from hfmagic import
MSRResNet`` imports transformers and registers every architecture with the Auto classes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    **dict.fromkeys(
        [
            "register_model",
            "SuperResolutionConfig",
            "SuperResolutionPreTrainedModel",
            "SRCNNConfig",
            "SRCNN",
            "MSRResNetConfig",
            "MSRResNet",
            "EDSRConfig",
            "EDSR",
            "SRVGGNetCompactConfig",
            "SRVGGNetCompact",
            "RRDBNetConfig",
            "RRDBNet",
            "DCGANConfig",
            "DCGANGenerator",
            "DCGANDiscriminator",
            "DCGANPreTrainedModel",
            "StyleGAN2Config",
            "StyleGAN2Generator",
            "StyleGAN2Discriminator",
            "StyleGAN2PreTrainedModel",
            "DiscriminatorConfig",
            "DiscriminatorPreTrainedModel",
            "ModifiedVGGConfig",
            "ModifiedVGGDiscriminator",
            "UNetDiscriminatorSNConfig",
            "UNetDiscriminatorSN",
        ],
        "hfmagic.models",
    ),
    "convert_checkpoint": "hfmagic.convert",
    "SuperResolutionPipeline": "hfmagic.pipelines",
    **dict.fromkeys(["psnr", "ssim", "ms_ssim", "swd", "fid", "SlicedWassersteinDistance"], "hfmagic.metrics"),
    **dict.fromkeys(["evaluate_sr", "evaluate_gan"], "hfmagic.evaluation"),
    **dict.fromkeys(["DCGANPipeline", "GANPipeline", "StyleGAN2Pipeline"], "hfmagic.pipelines"),
    **dict.fromkeys(["SRTrainingArguments", "SRTrainingResult", "train_sr", "CosineRestartLR", "SRGAN", "SRGANTrainingArguments", "train_srgan"], "hfmagic.training"),
    **dict.fromkeys(["GAN", "GANTrainingArguments", "train_gan"], "hfmagic.training"),
    **dict.fromkeys(["build_gan_dataset", "collate_gan_batch"], "hfmagic.data"),
    **dict.fromkeys(
        ["imresize", "build_sr_dataset", "sr_collate_fn", "prepare_div2k", "load_eval_set", "load_rgb"], "hfmagic.data"
    ),
    "DeviceSRData": "hfmagic.data.gpu_pipeline",
    **dict.fromkeys(["PerceptualLoss", "GANLoss"], "hfmagic.losses"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hfmagic' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # pragma: no cover
    from .models import *  # noqa: F401,F403
