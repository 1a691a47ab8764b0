"""Data for hfmagic: MATLAB-exact bicubic resizing, paired super-resolution datasets built on HF
``datasets``, DIV2K preparation, the standard SR evaluation sets, and GAN image datasets.

- :func:`imresize`: MATLAB/BasicSR bicubic resize in torch (numpy HWC or tensors, batched, CPU/GPU).
- :func:`build_sr_dataset`: an HF dataset whose items are ``{"pixel_values": LR, "labels": HR}``
  tensor pairs (random paired crops, flips, transpose), with :func:`sr_collate_fn`.
- :func:`prepare_div2k` (``hfmagic prepare-div2k``): DIV2K -> HR sub-image dataset.
- :func:`load_eval_set`: Set5/Set14/BSD100/Urban100, DIV2K validation, or HR folders as
  ``(name, lr, hr)`` uint8 pairs.
- :class:`DeviceSRData`: the same pairs made in batches on the GPU (images held in device memory),
  for ``train_sr`` when a DataLoader cannot keep up.
- :func:`load_rgb`, :func:`to_tensor`, :func:`to_numpy`: image decoding and conversions.
- :func:`read_image`, :func:`save_image`: files with their full bit depth, 16-bit colour PNG/TIFF
  included (Pillow alone truncates those to 8 bits), and 16-bit PNG output.

Only torch, numpy and PIL are imported here; ``datasets`` and the Hub client are imported by the
functions that need them, and the other modules load on first use.
"""

from __future__ import annotations

import importlib

from .images import load_rgb, to_numpy, to_tensor
from .imresize import imresize

# public name -> sub-module, imported on first access
_LAZY = {
    **dict.fromkeys(
        ["build_sr_dataset", "sr_collate_fn", "PairedSRTransform", "modcrop"], "sr_dataset"
    ),
    "load_image_dataset": "sources",
    **dict.fromkeys(["DeviceSRData", "CropPlan"], "gpu_pipeline"),
    **dict.fromkeys(["prepare_div2k", "subimage_positions"], "prepare"),
    **dict.fromkeys(["load_eval_set", "EvalPair", "EvalSet"], "eval_sets"),
    **dict.fromkeys(["read_image", "save_image"], "image16"),
    **dict.fromkeys(
        ["build_gan_dataset", "collate_gan_batch", "preprocess_gan_image", "embedded_gan_dataset"], "gan_dataset"
    ),
}

__all__ = ["imresize", "load_rgb", "to_tensor", "to_numpy", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hfmagic.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
