"""Inference pipelines: super-resolution of whole images (tiled for large ones) and GAN sampling.

Modules: ``super_resolution`` (the SR pipeline, in preprocess / forward / postprocess order),
``image_io`` (images in and out, 8 and 16 bits), ``device`` (device and ``dtype="auto"``),
``receptive_field`` (how much context a tile needs), ``tiling`` (cores, contexts, batches),
``exact`` (exact mode's policy), ``gan`` (GAN sampling), ``grid`` (image grids), ``swin2sr``
(transformers' Swin2SR models in the SR pipeline), ``base`` (what both pipelines share as diffusers
pipelines: saving, loading, ``to()``, progress bars).

Both pipelines are diffusers ``DiffusionPipeline`` subclasses: ``save_pretrained`` writes diffusers'
layout (``model_index.json`` + a component folder), which their own ``from_pretrained`` and
``diffusers.DiffusionPipeline.from_pretrained(..., trust_remote_code=True)`` load back (see
``base``). They are imported on first use (diffusers takes seconds to import); the helpers below
are not.

```python
>>> from hfmagic import SuperResolutionPipeline, DCGANPipeline
>>> upscale = SuperResolutionPipeline.from_pretrained("org/msrresnet-x4", device="cuda", dtype="float16")
>>> big = upscale("photo.jpg", tile_size=256)          # PIL image, 4x larger
>>> faces = DCGANPipeline.from_pretrained("org/dcgan-celeba")(num_images=16, seed=0)
```

8-bit images go in and out as PIL images; the conversion to uint8 follows MMagic's
``tensor2img`` (clamp to the range, scale to 255, round half to even). 16-bit images (PIL "I;16",
uint16 arrays, 16-bit PNG/TIFF files) are computed from ``x / 65535`` and come back as uint16 arrays
(``round(clamp(y, 0, 1) * 65535)``), never through 8 bits; :func:`hfmagic.data.save_image` writes
them as 16-bit PNG.

Tiling. ``tile_size`` cuts the low-resolution image into cores of ``tile_size`` x ``tile_size``
pixels; each core is fed to the model with ``tile_overlap`` extra pixels of context on every side
(clipped at the image border), and only the core's part of the output is kept. The upscaled image
is written core by core into a preallocated uint8 array, so the memory the model needs is bounded by
``(tile_size + 2 * tile_overlap)`` squared, not by the image. When the overlap is at least the
model's :func:`receptive_field`, every kept output pixel is computed from exactly the same input
pixels as in a whole-image pass. With ``SuperResolutionPipeline(..., exact=True)`` (CPU) it is also
computed with the same arithmetic, so tiled and whole-image outputs are bitwise equal (tested for
SRCNN, MSRResNet and EDSR at x2/x3/x4, tile sizes that do and do not divide the image). By default
(faster kernels) they agree within ~1e-6 in float and up to a rare one-step flip in uint8; the
class docstring lists the shape-dependent kernels that cause it.

Two-stage tiling. Models written as ``forward_head(forward_features(x), x)`` (MSRResNet, EDSR)
are tiled in two stages by default: ``forward_features`` (the residual trunk, at LR resolution)
runs on regions of ``upscale_factor * tile_size / 2`` (at least 512) LR pixels with its own
receptive field as context, and only ``forward_head`` (the upsampling tail that makes the HR-sized
tensors) runs on ``tile_size`` tiles, with the head's few pixels of context. A single-stage tile
recomputes the whole receptive field (35 LR pixels for the 16-block MSRResNet) on every side, which
costs ``((tile + 70) / tile)^2`` of the work: 1.6x at tile 256; two stages cost a few per cent (see
benchmarks/RESULTS.md). The peak memory stays that of a ``tile_size`` tile: a feature region's
64-channel LR maps hold a quarter of the floats of the head's HR maps of one tile (measured on
2200x2200 -> 8800x8800 with tile 512: 3.5 GB, single-stage 3.9 GB; regions twice as large peaked
at 4.7 GB).
"""

from __future__ import annotations

import importlib

from .device import AUTO_DTYPE, DTYPES, native_bf16, resolve_device
from .grid import make_grid
from .receptive_field import (
    probe_receptive_field,
    probe_split_receptive_fields,
    receptive_field,
    split_receptive_fields,
    supports_split,
)
from .tiling import DEFAULT_TILE_OVERLAP, feature_region_size

# The pipeline classes import diffusers: loaded on first use (PEP 562), module by name.
# DCGANPipeline / StyleGAN2Pipeline: the GAN pipeline under the names the README and model cards use.
_LAZY = {"SuperResolutionPipeline": "super_resolution", "GANPipeline": "gan", "DCGANPipeline": "gan", "StyleGAN2Pipeline": "gan"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hfmagic.pipelines' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), "GANPipeline" if module == "gan" else name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "AUTO_DTYPE",
    "DEFAULT_TILE_OVERLAP",
    "DTYPES",
    "DCGANPipeline",
    "GANPipeline",
    "StyleGAN2Pipeline",
    "SuperResolutionPipeline",
    "feature_region_size",
    "make_grid",
    "native_bf16",
    "probe_receptive_field",
    "probe_split_receptive_fields",
    "receptive_field",
    "resolve_device",
    "split_receptive_fields",
    "supports_split",
]
