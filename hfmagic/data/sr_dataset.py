"""Paired super-resolution data from any HF dataset with an image column.

``build_sr_dataset`` loads the images (Hub id, local image folder, parquet, ``save_to_disk``
folder, or a ``datasets.Dataset``) and attaches an on-the-fly transform that does what MMagic's
SR training pipeline does:

1. decode the HR image once, as RGB uint8 (grayscale/RGBA/palette are converted), or RGB uint16
   for 16-bit sources, which keep their precision all the way (``x / 65535``);
2. crop it to a multiple of the scale (MMagic's ``modcrop``), or to ``scale x`` the size of the
   image in the LR column when the dataset has one;
3. pick a random LR patch of ``gt_patch_size // scale`` and the HR patch at the same place
   (MMagic's ``PairedRandomCrop``);
4. make the LR patch with MATLAB bicubic (:func:`~hfmagic.data.imresize`), rounded to uint8 levels
   as the DIV2K LR PNGs are (16-bit HR: to uint16 levels, as MATLAB's ``imresize`` of a uint16
   image). Only the HR patch plus a small margin is resized, which gives the same
   pixels as resizing the whole image and cropping (the kernel never reaches past the margin);
5. flip horizontally, vertically and transpose, each with probability 0.5 (MMagic's ``Flip``
   x2 and ``RandomTransposeHW``), identically for LR and HR.

Randomness comes from torch's RNG: the global one by default (so ``DataLoader`` worker seeding and
``accelerate.utils.set_seed`` apply), or a private generator when ``seed`` is given.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .images import image_size, load_rgb
from .imresize import imresize
from .sources import load_image_dataset

if TYPE_CHECKING:  # pragma: no cover
    import datasets

__all__ = [
    "build_sr_dataset",
    "load_image_dataset",
    "PairedSRTransform",
    "sr_collate_fn",
    "modcrop",
]

logger = logging.getLogger(__name__)

# Name of the row-number column build_sr_dataset adds, so errors can say which row is bad.
ROW_COLUMN = "__hfmagic_row__"
# LR pixels of context kept around a patch before resizing: the x-s bicubic kernel reaches
# 2 LR pixels (4*s HR pixels wide) from a pixel centre; one more for the tap rounding.
_LR_MARGIN = 3


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop an (H, W, ...) array to H and W multiples of ``scale`` (bottom/right rows dropped)."""
    h, w = image.shape[:2]
    return image[: h - h % scale, : w - w % scale]


# --------------------------------------------------------------------------- transform


class PairedSRTransform:
    """Batch transform for ``Dataset.with_transform``: rows of HR images -> LR/HR tensor pairs.

    Input batch: ``{image_column: [...], lr_column: [...] (optional), ROW_COLUMN: [...] (optional)}``
    with images as anything :func:`~hfmagic.data.load_rgb` reads (datasets' ``{"bytes", "path"}``
    dicts with ``decode=False`` avoid a second decode).
    Output batch: ``{"pixel_values": [float32 (3, h, w) in [0, 1]], "labels": [float32 (3, h*s, w*s) in [0, 1]]}``;
    ``h = w = gt_patch_size // scale`` when patches are cropped, the whole (mod-cropped) image otherwise.
    """

    def __init__(
        self,
        scale: int,
        gt_patch_size: int | None,
        *,
        image_column: str = "image",
        lr_column: str | None = None,
        augment: bool = True,
        seed: int | None = None,
    ):
        if not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale must be a positive int (2, 3, 4, ...); got {scale!r}.")
        if gt_patch_size is not None and (gt_patch_size < scale or gt_patch_size % scale):
            raise ValueError(f"gt_patch_size={gt_patch_size} must be a positive multiple of scale={scale} (e.g. 128 for x2/x4, 96 for x3).")
        self.scale = scale
        self.gt_patch_size = gt_patch_size
        self.image_column = image_column
        self.lr_column = lr_column
        self.augment = augment
        self.seed = seed
        self._generator: torch.Generator | None = None
        self._generator_owner: tuple[int, int] | None = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_generator"], state["_generator_owner"] = None, None  # each process makes its own
        return state

    # ---- randomness
    def _rng(self) -> torch.Generator | None:
        """None (torch's global RNG) without a seed; otherwise a generator per process and DataLoader
        worker. In a worker it is seeded from (seed, the worker's torch seed): torch draws that anew
        for every epoch's workers (reproducibly under ``torch.manual_seed``), so workers neither repeat
        each other's crops nor their own of the previous epoch."""
        if self.seed is None:
            return None
        info = torch.utils.data.get_worker_info()
        owner = (os.getpid(), info.id if info is not None else -1)
        if self._generator is None or self._generator_owner != owner:
            if info is None:
                generator_seed = self.seed * 1000003
            else:
                state = np.random.SeedSequence([self.seed % 2**64, info.seed]).generate_state(2, dtype=np.uint32)
                generator_seed = (int(state[0]) << 31) ^ int(state[1])
            self._generator = torch.Generator().manual_seed(generator_seed)
            self._generator_owner = owner
        return self._generator

    def _randint(self, high: int) -> int:
        """Uniform int in [0, high]."""
        return int(torch.randint(0, high + 1, (1,), generator=self._rng()).item())

    def _coin(self) -> bool:
        return bool(torch.rand(1, generator=self._rng()).item() < 0.5)

    # ---- one pair
    @staticmethod
    def _describe(row: Any, source: Any) -> str:
        where = f"row {row}" if row is not None else "an image"
        path = source.get("path") if isinstance(source, dict) else source if isinstance(source, str) else None
        return f"{where} ({path})" if path else where

    @classmethod
    def _load(cls, source: Any, row: Any) -> np.ndarray:
        try:
            return load_rgb(source, keep_16bit=True)
        except (OSError, SyntaxError) as err:  # PIL: unidentified, truncated or broken files
            raise ValueError(f"{cls._describe(row, source)} cannot be read as an image ({err}). Fix or remove it.") from err

    def make_pair(self, hr_source: Any, lr_source: Any = None, row: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode and crop one HR image (and its LR when given); returns (lr, hr) float tensors in [0, 1]."""
        s = self.scale
        hr = self._load(hr_source, row)
        lr = None
        if lr_source is not None:
            lr = self._load(lr_source, row)
            h_lr, w_lr = lr.shape[:2]
            h, w = hr.shape[:2]
            if not (h_lr * s <= h < (h_lr + 1) * s and w_lr * s <= w < (w_lr + 1) * s):
                raise ValueError(
                    f"{self._describe(row, hr_source)}: HR is {h}x{w} (HxW) but its LR is {h_lr}x{w_lr}; "
                    f"with scale={s} the HR must be {h_lr * s}x{w_lr * s} (up to {s - 1} extra rows/columns). "
                    "Check `scale` and `lr_column`."
                )
            hr = hr[: h_lr * s, : w_lr * s]
        else:
            hr = modcrop(hr, s)
        h, w = hr.shape[:2]
        p = self.gt_patch_size
        if (p is not None and (h < p or w < p)) or h < s or w < s:
            raise ValueError(
                f"{self._describe(row, hr_source)} is {h}x{w} (HxW after cropping to a multiple of {s}), "
                f"smaller than gt_patch_size={p or s}. Remove it, lower gt_patch_size, or pass skip_small=True "
                "to build_sr_dataset (examples/train_sr.py: --skip_small_images) to skip such images."
            )
        if p is None:
            lr_t = self._to_tensor(lr) if lr is not None else self._downscale(hr)
            return self._augment(lr_t, self._to_tensor(hr))
        # Paired random crop, chosen in LR coordinates as MMagic's PairedRandomCrop does.
        lq = p // s
        h_lr, w_lr = h // s, w // s
        top, left = self._randint(h_lr - lq), self._randint(w_lr - lq)
        gt = hr[top * s : top * s + p, left * s : left * s + p]
        if lr is not None:
            lr_t = self._to_tensor(lr[top : top + lq, left : left + lq])
        else:
            # Resize the patch plus a margin, clipped to the image (at the border, the image's own
            # symmetric padding then applies), and keep the centre: equal to resizing the whole image.
            t0, l0 = max(0, top - _LR_MARGIN), max(0, left - _LR_MARGIN)
            t1, l1 = min(h_lr, top + lq + _LR_MARGIN), min(w_lr, left + lq + _LR_MARGIN)
            lr_t = self._downscale(hr[t0 * s : t1 * s, l0 * s : l1 * s])
            lr_t = lr_t[:, top - t0 : top - t0 + lq, left - l0 : left - l0 + lq]
        return self._augment(lr_t, self._to_tensor(gt))

    @staticmethod
    def _to_tensor(image: np.ndarray) -> torch.Tensor:
        """uint8 or uint16 (h, w, 3) -> float (3, h, w) in [0, 1]."""
        peak = 65535.0 if image.dtype == np.uint16 else 255.0
        return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(peak)

    def _downscale(self, hr: np.ndarray) -> torch.Tensor:
        """HR uint8/uint16 (h, w, 3) -> LR float (3, h/s, w/s) in [0, 1], MATLAB bicubic rounded to
        the HR's levels (uint8 or uint16: half away from zero, saturated)."""
        x = torch.from_numpy(np.ascontiguousarray(hr)).permute(2, 0, 1).float()
        if hr.dtype == np.uint16:
            return round_uint16_levels(imresize(x, 1.0 / self.scale)).div_(65535.0)
        return imresize(x, 1.0 / self.scale, round_uint8=True).float().div_(255.0)

    def _augment(self, lr: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.augment:
            if self._coin():  # horizontal flip
                lr, gt = lr.flip(-1), gt.flip(-1)
            if self._coin():  # vertical flip
                lr, gt = lr.flip(-2), gt.flip(-2)
            if self._coin():  # transpose H and W
                lr, gt = lr.transpose(-1, -2), gt.transpose(-1, -2)
        return lr.contiguous(), gt.contiguous()

    def __call__(self, batch: dict[str, list]) -> dict[str, list[torch.Tensor]]:
        images = batch[self.image_column]
        lrs = batch[self.lr_column] if self.lr_column else [None] * len(images)
        rows = batch.get(ROW_COLUMN, [None] * len(images))
        pixel_values, labels = [], []
        for hr_source, lr_source, row in zip(images, lrs, rows):
            lr, gt = self.make_pair(hr_source, lr_source, row)
            pixel_values.append(lr)
            labels.append(gt)
        return {"pixel_values": pixel_values, "labels": labels}


def round_uint16_levels(x: torch.Tensor) -> torch.Tensor:
    """Float values in 0..65535 rounded as MATLAB converts to uint16 (half away from zero,
    saturated), kept as float."""
    return torch.floor(x + 0.5).clamp_(0, 65535)


def sr_collate_fn(examples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack ``pixel_values`` (N, 3, h, w) and ``labels`` (N, 3, H, W); whole images of different
    sizes cannot be stacked, so that raises a ValueError telling to use batch size 1."""
    batch = {}
    for key in ("pixel_values", "labels"):
        tensors = [example[key] for example in examples]
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) > 1:
            raise ValueError(
                f"Cannot batch {key} of different shapes {sorted(shapes)}: whole images (gt_patch_size=None) "
                "need batch_size=1, or crop patches with gt_patch_size."
            )
        batch[key] = torch.stack(tensors)
    return batch


# --------------------------------------------------------------------------- builder


def _drop_small(dataset, image_column: str, min_size: int, scale: int, skip: bool = True):
    """Rows whose (mod-cropped) HR image is at least min_size on both sides; reads image headers only.
    ``skip=False``: raise a ValueError naming the smaller images instead (before any training)."""
    keep, skipped = [], []
    columns = [image_column] + ([ROW_COLUMN] if ROW_COLUMN in dataset.column_names else [])
    for start, batch in zip(range(0, len(dataset), 256), dataset.select_columns(columns).iter(batch_size=256)):
        for offset, source in enumerate(batch[image_column]):
            try:
                h, w = image_size(source)
            except (OSError, SyntaxError) as err:
                raise ValueError(
                    f"{PairedSRTransform._describe(start + offset, source)} cannot be read as an image ({err}). Fix or remove it."
                ) from err
            h, w = h - h % scale, w - w % scale
            if h >= min_size and w >= min_size:
                keep.append(start + offset)
            else:
                skipped.append(f"{PairedSRTransform._describe(start + offset, source)} {h}x{w}")
    if skipped:
        shown = "; ".join(skipped[:5]) + (f"; ... ({len(skipped) - 5} more)" if len(skipped) > 5 else "")
        if not skip:
            raise ValueError(
                f"{len(skipped)} of {len(dataset)} training image(s) are smaller than gt_patch_size={min_size} (HxW after "
                f"cropping to a multiple of {scale}): {shown}. Remove them, lower gt_patch_size, or skip them with "
                "skip_small=True (examples/train_sr.py: --gt_patch_size, --skip_small_images)."
            )
        warnings.warn(f"build_sr_dataset skipped {len(skipped)} image(s) smaller than {min_size} px: {shown}", stacklevel=3)
    return dataset.select(keep) if skipped else dataset


def build_sr_dataset(
    source: "str | os.PathLike | datasets.Dataset | datasets.DatasetDict",
    *,
    scale: int,
    gt_patch_size: int | None,
    split: str = "train",
    image_column: str = "image",
    lr_column: str | None = None,
    augment: bool = True,
    skip_small: bool = False,
    seed: int | None = None,
    data_files: Any = None,
    check_sizes: bool = False,
) -> "datasets.Dataset | datasets.IterableDataset":
    """A paired SR dataset: every item is ``{"pixel_values": LR, "labels": HR}``.

    Args:
        source: Hub dataset id, local image folder, parquet file/glob, ``save_to_disk`` folder, or
            a ``datasets`` object (see :func:`load_image_dataset`).
        scale: upscale factor s (2, 3, 4, ...).
        gt_patch_size: HR patch size p (a multiple of s); ``None`` keeps whole images (validation).
        split: split to load.
        image_column: column with the HR images.
        lr_column: column with ready-made LR images (HR must be ``s x`` their size, up to s-1 extra
            pixels). ``None`` uses a column ``lr_x{s}`` or ``lr`` when the dataset has one, and
            otherwise makes LR from HR with MATLAB bicubic.
        augment: random horizontal flip, vertical flip and transpose (p = 0.5 each).
        skip_small: drop images smaller than ``gt_patch_size`` up front (reading their headers)
            with a warning; otherwise such an image raises ``ValueError`` naming its row and size.
        seed: seed of a private torch generator for crops and flips; ``None`` uses torch's global
            RNG. In a DataLoader worker the generator is seeded from ``seed`` and the worker's torch
            seed, which torch draws for every epoch from the main process's RNG: epochs differ, and
            are reproducible when that RNG is seeded (``torch.manual_seed``, accelerate's
            ``set_seed``, or ``DataLoader(generator=...)``). ``train_sr`` needs neither: it seeds
            every sample itself.
        data_files: passed to ``datasets.load_dataset`` (Hub ids and image folders).
        check_sizes: without ``skip_small``, read every image's header now and raise a
            ``ValueError`` naming those smaller than ``gt_patch_size`` (a training script: before
            the run starts), instead of when their sample is drawn. Not for streamed datasets.

    Returns:
        The ``datasets.Dataset`` with the transform attached (``with_transform``): indexing or
        iterating gives ``pixel_values`` float32 (3, p/s, p/s) and ``labels`` float32 (3, p, p),
        both RGB in [0, 1] (whole images: (3, H/s, W/s) and (3, H, W)). Batch with
        :func:`sr_collate_fn` (or torch's default collate). An ``IterableDataset`` source gives
        an ``IterableDataset`` with the same items. Different data per rank/worker is the
        DataLoader's (accelerate's) job.
    """
    import datasets

    transform = PairedSRTransform(scale, gt_patch_size, image_column=image_column, augment=augment, seed=seed)
    dataset = load_image_dataset(source, split=split, data_files=data_files)
    columns = list(dataset.column_names or [])
    if image_column not in columns:
        raise ValueError(f"Dataset {source!r} has no column {image_column!r}; its columns are {columns}. Pass image_column=...")
    if lr_column is None:
        lr_column = next((c for c in (f"lr_x{scale}", "lr") if c in columns), None)
    elif lr_column not in columns:
        raise ValueError(f"Dataset {source!r} has no column {lr_column!r} (lr_column); its columns are {columns}.")
    transform.lr_column = lr_column

    # Decode ourselves (once, to RGB uint8): keep the encoded bytes/paths.
    features = dataset.features or {}
    for column in filter(None, (image_column, lr_column)):
        if isinstance(features.get(column), datasets.Image):
            dataset = dataset.cast_column(column, datasets.Image(decode=False))
    used = [c for c in (image_column, lr_column) if c]

    if isinstance(dataset, datasets.IterableDataset):
        if skip_small and gt_patch_size:

            def large_enough(example):
                h, w = image_size(example[image_column])
                return h - h % scale >= gt_patch_size and w - w % scale >= gt_patch_size

            dataset = dataset.filter(large_enough)
        return dataset.map(transform, batched=True, batch_size=16, remove_columns=columns)

    # Row numbers (of the source dataset) for error messages; added before any filtering.
    dataset = dataset.add_column(ROW_COLUMN, np.arange(len(dataset)))
    if skip_small or (check_sizes and gt_patch_size):
        dataset = _drop_small(dataset, image_column, gt_patch_size or scale, scale, skip=skip_small)
        if len(dataset) == 0:
            raise ValueError(f"No image of {source!r} is at least {gt_patch_size} px on both sides; lower gt_patch_size.")
    return dataset.with_transform(transform, columns=used + [ROW_COLUMN], output_all_columns=False)
