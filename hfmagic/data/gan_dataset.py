"""Unconditional image data for GAN training, from any HF dataset with an image column.

``build_gan_dataset`` accepts a Hub id (``pcuenq/lsun-bedrooms``), a local image folder (loaded as
``imagefolder`` with ``drop_labels=True``), parquet files, a ``save_to_disk`` folder, or a
``datasets.Dataset`` / ``IterableDataset`` object. Every image is decoded here (not by
``datasets``) so that an unreadable one is reported with its row, or skipped when asked.

Preprocessing as MMagic's unconditional pipelines: bilinear resize without antialiasing (what
``cv2.resize(..., INTER_LINEAR)`` does, MMagic's backend) of the shorter side to ``resolution``,
rounded back to uint8, then a center crop, then ``x / 127.5 - 1``: tensors (C, R, R) in [-1, 1].
16-bit images keep their precision: resized and rounded in 0..65535, then ``x / 32767.5 - 1``.
Channels are RGB (MMagic's released DCGAN checkpoints are BGR; ``hfmagic.convert`` handles that).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .images import load_rgb
from .sources import load_image_dataset

__all__ = [
    "GANImageDataset",
    "GANImageIterableDataset",
    "build_gan_dataset",
    "collate_gan_batch",
    "embedded_gan_dataset",
    "preprocess_gan_image",
]


def preprocess_gan_image(image: Any, resolution: int = 64, num_channels: int = 3) -> torch.Tensor:
    """One image (PIL, path, bytes, ``{"bytes", "path"}`` dict or uint8/uint16 array) -> (C, R, R)
    float32 in [-1, 1].

    The shorter side is resized to ``resolution`` (bilinear, no antialiasing, rounded to uint8 as
    cv2 does; to uint16 levels for 16-bit images), then the center ``resolution`` x ``resolution``
    square is kept. ``num_channels=1`` converts to grayscale with PIL's ITU-R 601 luma ("L" mode;
    the same fixed-point formula in 16 bits for 16-bit images).
    """
    if num_channels not in (1, 3):
        raise ValueError(f"num_channels must be 1 (grayscale) or 3 (RGB), got {num_channels}.")
    if resolution < 1:
        raise ValueError(f"resolution must be a positive number of pixels, got {resolution}.")
    rgb = load_rgb(image, keep_16bit=True)  # (H, W, 3) uint8, or uint16 for 16-bit sources
    peak = 65535.0 if rgb.dtype == np.uint16 else 255.0
    array = rgb if num_channels == 3 else _luma(rgb)
    x = torch.from_numpy(np.array(array)).permute(2, 0, 1).float()  # a writable copy
    height, width = x.shape[1:]
    scale = resolution / min(height, width)
    new_h, new_w = max(resolution, round(height * scale)), max(resolution, round(width * scale))
    x = _resize(x, new_h, new_w, peak)
    top, left = (new_h - resolution) // 2, (new_w - resolution) // 2
    x = x[:, top : top + resolution, left : left + resolution]
    return x.div_(peak / 2).sub_(1.0).contiguous()


def _luma(rgb: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) -> (H, W, 1) gray, same dtype: PIL's "L" conversion (ITU-R 601 luma in 16-bit
    fixed point, rounded), applied to uint16 values as well."""
    if rgb.dtype == np.uint8:
        return np.asarray(Image.fromarray(rgb).convert("L"))[..., None]
    r, g, b = (rgb[..., k].astype(np.int64) for k in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(rgb.dtype)[..., None]


def _resize(x: torch.Tensor, height: int, width: int, peak: float = 255.0) -> torch.Tensor:
    """(C, H, W) float 0..peak -> (C, height, width), bilinear without antialiasing, rounded like
    uint8 (or uint16 for ``peak=65535``)."""
    if (height, width) == tuple(x.shape[1:]):
        return x
    x = F.interpolate(x[None], size=(height, width), mode="bilinear", align_corners=False, antialias=False)[0]
    return x.round_().clamp_(0, peak)


def _describe(value: Any) -> str:
    if isinstance(value, dict) and value.get("path"):
        return f" ({value['path']})"
    if isinstance(value, (str, os.PathLike)):
        return f" ({os.fspath(value)})"
    return ""


class _Decoder:
    """Shared decode-or-skip logic of the map-style and streaming datasets."""

    def __init__(self, resolution: int, num_channels: int, image_column: str, skip_corrupt: bool):
        self.resolution = resolution
        self.num_channels = num_channels
        self.image_column = image_column
        self.skip_corrupt = skip_corrupt
        self.num_skipped = 0  # in this process (each DataLoader worker counts its own)

    def decode(self, value: Any, row: int) -> dict | None:
        try:
            if value is None:
                raise ValueError("the entry is empty")
            pixel_values = preprocess_gan_image(value, self.resolution, self.num_channels)
        except Exception as error:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
            message = f"Image at row {row} of column {self.image_column!r}{_describe(value)} cannot be read: {error}"
            if not self.skip_corrupt:
                raise ValueError(
                    f"{message}. Fix or remove it, or skip unreadable images with skip_corrupt=True "
                    "(--skip_corrupt_images in the training script)."
                ) from error
            self.num_skipped += 1
            warnings.warn(f"{message}; skipped ({self.num_skipped} skipped so far in this process).", stacklevel=2)
            return None
        return {"pixel_values": pixel_values}


class GANImageDataset(torch.utils.data.Dataset):
    """Map-style GAN images: ``dataset[i]`` -> ``{"pixel_values": (C, R, R) in [-1, 1]}``, or None for an
    unreadable image when ``skip_corrupt`` (``collate_gan_batch`` drops those and counts them)."""

    def __init__(self, dataset, resolution: int = 64, num_channels: int = 3, image_column: str = "image", skip_corrupt: bool = False):
        self.dataset = _undecoded(dataset.select_columns([image_column]), image_column)
        self.decoder = _Decoder(resolution, num_channels, image_column, skip_corrupt)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict | None:
        return self.decoder.decode(self.dataset[int(index)][self.decoder.image_column], int(index))

    @property
    def num_skipped(self) -> int:
        return self.decoder.num_skipped


class GANImageIterableDataset(torch.utils.data.IterableDataset):
    """Streaming GAN images over a ``datasets.IterableDataset`` (sharded across DataLoader workers by
    ``datasets``); unreadable images are yielded as None when ``skip_corrupt``. Rows are numbered
    in the order this process reads them."""

    def __init__(self, dataset, resolution: int = 64, num_channels: int = 3, image_column: str = "image", skip_corrupt: bool = False):
        self.dataset = _undecoded(dataset.select_columns([image_column]), image_column)
        self.decoder = _Decoder(resolution, num_channels, image_column, skip_corrupt)

    def shuffle(self, seed: int, buffer_size: int = 1000) -> GANImageIterableDataset:
        """Shuffle the stream (``datasets``' shard order + a buffer of ``buffer_size`` rows), in place."""
        self.dataset = self.dataset.shuffle(seed=seed, buffer_size=buffer_size)
        return self

    def set_epoch(self, epoch: int) -> None:
        """Reshuffles a shuffled stream differently each epoch (called by accelerate's DataLoader)."""
        self.dataset.set_epoch(epoch)

    def __iter__(self):
        for row, example in enumerate(self.dataset):
            yield self.decoder.decode(example[self.decoder.image_column], row)

    @property
    def num_skipped(self) -> int:
        return self.decoder.num_skipped


def collate_gan_batch(items: list[dict | None]) -> dict:
    """Stack items into ``{"pixel_values": (N, C, R, R), "num_skipped": (N,)}``, dropping skipped (None) ones.

    ``num_skipped.sum()`` is the number of images dropped from this batch; it is a per-row tensor
    (the count in row 0) so that accelerate can split and concatenate batches between processes.
    """
    kept = [item["pixel_values"] for item in items if item is not None]
    if not kept:
        raise ValueError(
            f"All {len(items)} images of a batch were unreadable (skipped); check the dataset's image column."
        )
    num_skipped = torch.zeros(len(kept), dtype=torch.long)
    num_skipped[0] = len(items) - len(kept)
    return {"pixel_values": torch.stack(kept), "num_skipped": num_skipped}


def _undecoded(dataset, image_column: str):
    """Let hfmagic decode images itself (so errors name the row) by turning off ``datasets``' decoding."""
    import datasets

    features = dataset.features
    if features is not None and isinstance(features.get(image_column), datasets.Image):
        dataset = dataset.cast_column(image_column, datasets.Image(decode=False))
    return dataset


def build_gan_dataset(
    source: Any,
    resolution: int = 64,
    num_channels: int = 3,
    image_column: str = "image",
    split: str = "train",
    streaming: bool = False,
    skip_corrupt: bool = False,
) -> GANImageDataset | GANImageIterableDataset:
    """GAN training images from any HF image dataset.

    Args:
        source: Hub id, local folder (images, parquet or ``save_to_disk``), parquet file, or a
            ``datasets`` object (see ``load_image_dataset``).
        resolution: side R of the square training images.
        num_channels: 3 (RGB) or 1 (grayscale).
        image_column: the column holding the images.
        split: which split to use.
        streaming: read the data lazily (an ``IterableDataset``) for datasets too big for the disk.
        skip_corrupt: skip unreadable images with a warning (and a count) instead of raising.
    Returns:
        A torch dataset of ``{"pixel_values": (C, R, R) float32 in [-1, 1]}``; batch it with
        ``collate_gan_batch``.
    """
    if num_channels not in (1, 3):
        raise ValueError(f"num_channels must be 1 (grayscale) or 3 (RGB), got {num_channels}.")
    dataset = load_image_dataset(source, split=split, streaming=streaming)
    columns = dataset.column_names
    if columns is not None and image_column not in columns:
        raise ValueError(
            f"The dataset has no column {image_column!r}; its columns are {columns}. "
            "Pass image_column=... (--image_column) naming the column that holds the images."
        )
    import datasets

    cls = GANImageIterableDataset if isinstance(dataset, datasets.IterableDataset) else GANImageDataset
    return cls(dataset, resolution=resolution, num_channels=num_channels, image_column=image_column, skip_corrupt=skip_corrupt)


class _ImageTensors(torch.utils.data.Dataset):
    def __init__(self, images: list[torch.Tensor]):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        return {"pixel_values": self.images[index]}


def embedded_gan_dataset(resolution: int = 64, num_channels: int = 3) -> torch.utils.data.Dataset:
    """A small offline GAN dataset (750 images) from the photographs shipped in ``hfmagic/assets``:
    square crops of 40%, 60% and 80% of each photo's shorter side on a 5 x 5 grid, plus their
    mirror images, resized to ``resolution`` like ``build_gan_dataset``. For smoke runs only."""
    from .embedded import embedded_image, embedded_image_names

    images = []
    for name in embedded_image_names():
        rgb = load_rgb(embedded_image(name))
        array = rgb if num_channels == 3 else np.asarray(Image.fromarray(rgb).convert("L"))[..., None]
        photo = torch.from_numpy(np.array(array)).permute(2, 0, 1).float()
        for fraction in (0.4, 0.6, 0.8):
            # resize the photo once so that a crop of `fraction` of its shorter side becomes R x R
            scale = resolution / (min(photo.shape[1:]) * fraction)
            height, width = (max(resolution, round(side * scale)) for side in photo.shape[1:])
            resized = _resize(photo, height, width).div_(127.5).sub_(1.0)
            for top in np.linspace(0, height - resolution, 5).round().astype(int):
                for left in np.linspace(0, width - resolution, 5).round().astype(int):
                    crop = resized[:, top : top + resolution, left : left + resolution]
                    images += [crop.clone(), crop.flip(-1)]
    return _ImageTensors(images)
