"""A device-resident paired SR data path: HR images live on the GPU as uint8 (int16 once a 16-bit image
is among them, see :class:`DeviceSRData`), and every batch is cut,
degraded and augmented there, so the model, not a CPU DataLoader, sets the pace.

It reproduces :class:`~hfmagic.data.sr_dataset.PairedSRTransform` (the CPU path) number for number
for the same random choices: the HR image cropped to a multiple of the scale (``modcrop``), a paired
random crop chosen in LR coordinates (``top``, ``left`` in ``0 .. h/s - p/s``), the LR made with
MATLAB bicubic (:func:`~hfmagic.data.imresize`) as if the whole image were resized and rounded to
uint8 levels, then horizontal flip, vertical flip and transpose applied to LR and HR alike.

Two ways to make the LR, both equal to resizing the whole image:

- ``lr_mode="precompute"`` (default): every image is resized once when the data is built, on the
  device; a batch is then two gathers. The fastest; the LR images take 1/s^2 of the HR memory.
- ``lr_mode="online"``: each batch resizes its HR patches plus a margin of 3 LR pixels, in one
  batched ``imresize`` call. The margin is filled by the image's own symmetric padding where the
  patch touches the border, so the kernel sees what it sees in a whole-image resize.

```python
>>> data = DeviceSRData.from_source("path/to/div2k_sub", scale=4, gt_patch_size=128, device="cuda")
>>> for batch in data.loader(batch_size=16, seed=0):      # endless
...     loss = model(**batch).loss                         # pixel_values (16, 3, 32, 32), labels (16, 3, 128, 128)
>>> train_sr(model, data, SRTrainingArguments(...))        # or let the training loop draw the batches
```

``train_sr`` (and ``examples/train_sr.py --data_on_device``) takes a ``DeviceSRData`` in place of a
dataset: micro-batch ``j`` of a run is :meth:`DeviceSRData.batch_at` ``(j, ...)``, drawn from a generator
seeded with ``(seed, j)``, so a resumed run sees the batches an uninterrupted one would, and W ranks
with batch B share out the batch one process with batch B*W would draw.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from .images import image_size, load_rgb
from .imresize import imresize
from .sr_dataset import round_uint16_levels

__all__ = ["CropPlan", "DeviceSRData"]

# LR pixels of context resized around a patch (as the CPU path): the x-s bicubic kernel reaches
# 2 LR pixels from a pixel centre; one more for the tap rounding.
_LR_MARGIN = 3
# 16-bit storage: value - 32768 as int16 (every backend indexes and flips int16; torch's uint16 does not).
_OFFSET16 = 32768


class CropPlan:
    """The random choices of one batch, as int64/bool tensors of length B on the data's device:
    ``index`` (image), ``top``/``left`` (LR pixel of the crop's corner), ``hflip``, ``vflip``, ``transpose``."""

    def __init__(self, index, top, left, hflip, vflip, transpose):
        self.index, self.top, self.left = index, top, left
        self.hflip, self.vflip, self.transpose = hflip, vflip, transpose

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def __getitem__(self, rows: slice) -> CropPlan:
        """The choices of ``rows`` of the batch (e.g. one rank's share of a global batch)."""
        return CropPlan(*(t[rows] for t in (self.index, self.top, self.left, self.hflip, self.vflip, self.transpose)))


class DeviceSRData:
    """HR images held on ``device`` as one padded uint8 tensor (N, 3, H_max, W_max), each image cropped
    to a multiple of ``scale``; batches of ``{"pixel_values", "labels"}`` made on the device.

    16-bit images keep their precision as in the CPU path (``x / 65535``, LR rounded to uint16
    levels): when one is among the images, all are held as int16 (``value - 32768``, 8-bit images
    as ``value * 257``, which gives the same floats as ``value / 255``), twice the memory. With
    ``lr_mode="online"`` a 16-bit LR pixel next to the image border may differ from the CPU path's
    by one uint16 level, rarely (the folded margin sums in another order; 8-bit levels hide that).

    Args:
        images: RGB uint8/uint16 arrays (H, W, 3) or tensors (3, H, W), or anything :func:`load_rgb` reads.
        scale: upscale factor s.
        gt_patch_size: HR patch side p (a multiple of s, at most the smallest image side).
        device: where the images live and batches are made.
        lr_mode: ``"precompute"`` or ``"online"`` (see the module docstring).
        augment: random horizontal flip, vertical flip and transpose, p = 0.5 each.
        skip_small: drop (with a warning) images smaller than ``gt_patch_size`` instead of raising.
    """

    def __init__(
        self,
        images: Sequence[Any],
        *,
        scale: int,
        gt_patch_size: int,
        device: str | torch.device = "cpu",
        lr_mode: str = "precompute",
        augment: bool = True,
        skip_small: bool = False,
    ):
        if not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale must be a positive int (2, 3, 4, ...); got {scale!r}.")
        if gt_patch_size < scale or gt_patch_size % scale:
            raise ValueError(f"gt_patch_size={gt_patch_size} must be a positive multiple of scale={scale}.")
        if lr_mode not in ("precompute", "online"):
            raise ValueError(f"lr_mode must be 'precompute' or 'online', got {lr_mode!r}.")
        if len(images) == 0:
            raise ValueError("DeviceSRData needs at least one image.")
        self.scale, self.gt_patch_size, self.lr_mode, self.augment = (
            scale,
            gt_patch_size,
            lr_mode,
            augment,
        )
        self.device = _resolve(device)
        # Sizes first (file headers, nothing decoded), then one image at a time decoded, cropped to a
        # multiple of the scale (modcrop) and copied to the device: the host never holds them all.
        sizes = [self._size(image) for image in images]
        sizes = [(h - h % scale, w - w % scale) for h, w in sizes]
        small = [(i, hw) for i, hw in enumerate(sizes) if min(hw) < gt_patch_size]
        keep = list(range(len(images)))
        if small and skip_small and len(small) < len(images):
            warnings.warn(
                f"Skipping {len(small)} image(s) smaller than gt_patch_size={gt_patch_size} (index, (H, W)): {small[:5]}.",
                stacklevel=2,
            )
            dropped = {i for i, _ in small}
            keep = [i for i in keep if i not in dropped]
        elif small:
            raise ValueError(
                f"{len(small)} of {len(images)} image(s) are smaller than gt_patch_size={gt_patch_size} after cropping to a "
                f"multiple of {scale} (index, (H, W)): {small[:5]}. Remove them, lower gt_patch_size"
                + (" or pass skip_small=True." if len(small) < len(images) else ".")
            )
        self.sizes = torch.tensor([sizes[i] for i in keep], dtype=torch.int64, device=self.device)  # (N, 2)
        h_max, w_max = (int(v) for v in self.sizes.max(dim=0).values)
        self.hr = torch.zeros(len(keep), 3, h_max, w_max, dtype=torch.uint8, device=self.device)
        self.lr = None
        self.deep: torch.Tensor | None = None  # (N,) bool: which images are 16-bit, once one is
        self._generator: torch.Generator | None = None  # batch_at's, reseeded for every batch
        if lr_mode == "precompute":
            self.lr = torch.zeros(len(keep), 3, h_max // scale, w_max // scale, dtype=torch.uint8, device=self.device)
        for slot, i in enumerate(keep):
            h, w = sizes[i]
            hr = self._to_chw(images[i])
            if hr.shape[1] - hr.shape[1] % scale != h or hr.shape[2] - hr.shape[2] % scale != w:
                raise ValueError(f"Image {i} decodes to {tuple(hr.shape[1:])} but its header says {(h, w)} (H, W).")
            hr = hr[:, :h, :w].to(self.device)
            deep = hr.dtype != torch.uint8
            if deep and self.deep is None:
                self._widen()
            lr = None
            if self.lr is not None:
                if deep:
                    lr = round_uint16_levels(imresize(hr.float(), 1.0 / scale)).to(torch.int32)
                else:
                    lr = imresize(hr.float(), 1.0 / scale, round_uint8=True)
            if self.deep is not None:
                self.deep[slot] = deep
                hr, lr = (None if t is None else self._as_int16(t) for t in (hr, lr))
            self.hr[slot, :, :h, :w] = hr
            if lr is not None:
                self.lr[slot, :, : h // scale, : w // scale] = lr

    @classmethod
    def from_source(
        cls,
        source: Any,
        *,
        scale: int,
        gt_patch_size: int,
        image_column: str = "image",
        split: str = "train",
        **kwargs,
    ) -> DeviceSRData:
        """Decode every image of ``source`` (anything :func:`~hfmagic.data.sr_dataset.load_image_dataset`
        loads: folder, parquet, ``save_to_disk`` folder, Hub id, ``datasets.Dataset``) into device memory."""
        import datasets

        from .sr_dataset import load_image_dataset

        dataset = load_image_dataset(source, split=split)
        if image_column not in (dataset.column_names or []):
            raise ValueError(f"{source!r} has no column {image_column!r}; its columns are {dataset.column_names}.")
        if isinstance((dataset.features or {}).get(image_column), datasets.Image):
            dataset = dataset.cast_column(image_column, datasets.Image(decode=False))
        # read from the (memory-mapped) dataset on access: the host never holds more than one image
        images = _LazyColumn(dataset, image_column)
        return cls(images, scale=scale, gt_patch_size=gt_patch_size, **kwargs)

    @staticmethod
    def _size(image: Any) -> tuple[int, int]:
        """(H, W) of an image source without decoding files or bytes."""
        if isinstance(image, torch.Tensor):
            return int(image.shape[-2]), int(image.shape[-1])
        return image_size(image)

    @staticmethod
    def _to_chw(image: Any) -> torch.Tensor:
        """(3, H, W) uint8, or int32 holding 0..65535 for a 16-bit image."""
        if isinstance(image, torch.Tensor):
            if image.dtype not in (torch.uint8, torch.uint16) or image.dim() != 3 or image.shape[0] != 3:
                raise ValueError(f"Image tensors must be uint8 or uint16 (3, H, W); got {image.dtype} {tuple(image.shape)}.")
            return image if image.dtype == torch.uint8 else image.to(torch.int32)
        array = load_rgb(image, keep_16bit=True)
        tensor = torch.from_numpy(array).permute(2, 0, 1)
        return tensor.to(torch.int32) if array.dtype == np.uint16 else tensor

    @staticmethod
    def _as_int16(image: torch.Tensor) -> torch.Tensor:
        """uint8 (scaled by 257) or int32 0..65535 -> int16 storage (value - 32768)."""
        values = image.to(torch.int32) * 257 if image.dtype == torch.uint8 else image.to(torch.int32)
        return (values - _OFFSET16).to(torch.int16)

    def _widen(self) -> None:
        """Switch the storage to int16 (first 16-bit image): the 8-bit images so far become value * 257."""
        self.deep = torch.zeros(self.hr.shape[0], dtype=torch.bool, device=self.device)
        self.hr = self._as_int16(self.hr)
        if self.lr is not None:
            self.lr = self._as_int16(self.lr)

    def __len__(self) -> int:
        return int(self.hr.shape[0])

    def to(self, device: str | torch.device) -> DeviceSRData:
        """Move the images to ``device`` (in place; returns ``self``)."""
        device = _resolve(device)
        self.device = device
        self.sizes, self.hr = self.sizes.to(device), self.hr.to(device)
        if self.lr is not None:
            self.lr = self.lr.to(device)
        self._generator = None
        return self

    # ------------------------------------------------------------------ randomness
    def plan(self, batch_size: int, generator: torch.Generator | None = None) -> CropPlan:
        """Random choices for one batch: images uniformly with replacement, crop corners uniform over
        each image's valid LR range, flips/transpose with probability 0.5 (all drawn on the device)."""
        dev = self.device
        index = torch.randint(0, len(self), (batch_size,), device=dev, generator=generator)
        lq = self.gt_patch_size // self.scale
        span = self.sizes[index] // self.scale - lq + 1  # (B, 2) number of valid corners
        corner = (torch.rand(batch_size, 2, device=dev, generator=generator, dtype=torch.float64) * span).long()
        corner = torch.minimum(corner, span - 1)
        coins = torch.rand(batch_size, 3, device=dev, generator=generator) < 0.5
        if not self.augment:
            coins.zero_()
        return CropPlan(index, corner[:, 0], corner[:, 1], coins[:, 0], coins[:, 1], coins[:, 2])

    # ------------------------------------------------------------------ batches
    def batch(self, plan: CropPlan) -> dict[str, torch.Tensor]:
        """``{"pixel_values": (B, 3, p/s, p/s), "labels": (B, 3, p, p)}`` float32 in [0, 1] on the device."""
        s, p = self.scale, self.gt_patch_size
        lq = p // s
        if self.deep is not None:
            return self._batch16(plan)
        hr = self._gather(self.hr, plan.index, plan.top * s, plan.left * s, p, self.sizes[plan.index])
        if self.lr is not None:
            lr = self._gather(
                self.lr,
                plan.index,
                plan.top,
                plan.left,
                lq,
                self.sizes[plan.index] // s,
            ).float()
        else:
            m = _LR_MARGIN
            # HR patch plus m LR pixels on every side, out-of-image pixels mirrored (MATLAB's symmetric padding)
            region = self._gather(
                self.hr,
                plan.index,
                (plan.top - m) * s,
                (plan.left - m) * s,
                p + 2 * m * s,
                self.sizes[plan.index],
            )
            lr = imresize(region.float(), 1.0 / s, round_uint8=True)[:, :, m : m + lq, m : m + lq].float()
        lr, hr = self._augment(lr, hr.float(), plan)
        return {"pixel_values": lr.div_(255.0), "labels": hr.div_(255.0)}

    def _batch16(self, plan: CropPlan) -> dict[str, torch.Tensor]:
        """:meth:`batch` for int16 storage: values in 0..65535, each image's LR rounded to its own levels."""
        s, p = self.scale, self.gt_patch_size
        lq, m = p // s, _LR_MARGIN
        sizes = self.sizes[plan.index]
        hr = self._gather(self.hr, plan.index, plan.top * s, plan.left * s, p, sizes).float() + _OFFSET16
        if self.lr is not None:
            lr = self._gather(self.lr, plan.index, plan.top, plan.left, lq, sizes // s).float() + _OFFSET16
        else:
            region = self._gather(self.hr, plan.index, (plan.top - m) * s, (plan.left - m) * s, p + 2 * m * s, sizes)
            deep = self.deep[plan.index][:, None, None, None]
            region = region.float() + _OFFSET16
            # 8-bit images resize in 0..255 and round to uint8 levels, exactly as without 16-bit images
            small = imresize(torch.where(deep, region, region / 257), 1.0 / s)[:, :, m : m + lq, m : m + lq]
            lr = torch.where(deep, round_uint16_levels(small), torch.floor(small + 0.5).clamp_(0, 255) * 257)
        lr, hr = self._augment(lr, hr, plan)
        return {"pixel_values": lr.div_(65535.0), "labels": hr.div_(65535.0)}

    def batch_at(
        self, step: int, batch_size: int, *, seed: int = 0, rank: int = 0, world_size: int = 1
    ) -> dict[str, torch.Tensor]:
        """Micro-batch ``step`` of a run, rank ``rank``'s share: the plan of a batch of
        ``batch_size * world_size`` is drawn from a generator seeded with ``(seed, step)``, and this rank
        gets rows ``rank * batch_size`` to ``(rank + 1) * batch_size``. A pure function of its arguments
        (on one device): what makes a resumed run, or W ranks, see the same data as one straight run."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}.")
        if self._generator is None:
            self._generator = torch.Generator(device=self.device)
        state = np.random.SeedSequence([int(seed), 2, int(step)]).generate_state(2, dtype=np.uint32)
        self._generator.manual_seed((int(state[0]) << 31) ^ int(state[1]))
        plan = self.plan(batch_size * world_size, self._generator)
        return self.batch(plan[rank * batch_size : (rank + 1) * batch_size])

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One random batch (see :meth:`plan` and :meth:`batch`)."""
        return self.batch(self.plan(batch_size, generator))

    def loader(
        self, batch_size: int, seed: int | None = None, num_batches: int | None = None
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Yield random batches (endlessly, or ``num_batches`` of them) from a generator on the device
        seeded with ``seed``."""
        generator = None
        if seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(seed)
        count = 0
        while num_batches is None or count < num_batches:
            yield self.sample(batch_size, generator)
            count += 1

    @staticmethod
    def _gather(images: torch.Tensor, index, top, left, size: int, sizes: torch.Tensor) -> torch.Tensor:
        """(B, C, size, size) windows of ``images[index]`` at (top, left); coordinates outside an image
        (whose own size is ``sizes``) are folded back by symmetric padding (edge pixel repeated)."""
        offsets = torch.arange(size, device=images.device)
        rows = _symmetric(top[:, None] + offsets, sizes[:, 0:1])  # (B, size)
        cols = _symmetric(left[:, None] + offsets, sizes[:, 1:2])
        # Advanced indices around a slice: the result is (B, size, size, C); only the window is read.
        window = images[index[:, None, None], :, rows[:, :, None], cols[:, None, :]]
        return window.permute(0, 3, 1, 2)

    @staticmethod
    def _augment(lr: torch.Tensor, hr: torch.Tensor, plan: CropPlan) -> tuple[torch.Tensor, torch.Tensor]:
        # Same order as the CPU path: horizontal flip, vertical flip, transpose (square patches).
        # Applied unconditionally: testing mask.any() would make the host wait for the device.
        for mask, op in (
            (plan.hflip, lambda t: t.flip(-1)),
            (plan.vflip, lambda t: t.flip(-2)),
            (plan.transpose, lambda t: t.transpose(-1, -2)),
        ):
            m = mask[:, None, None, None]
            lr, hr = torch.where(m, op(lr), lr), torch.where(m, op(hr), hr)
        return lr.contiguous(), hr.contiguous()

    def memory_bytes(self) -> int:
        """Device memory the images take (HR plus precomputed LR)."""
        tensors = [self.hr] + ([self.lr] if self.lr is not None else [])
        return sum(t.numel() * t.element_size() for t in tensors)


class _LazyColumn(Sequence):
    """``dataset[i][column]`` on access (encoded images: bytes or paths)."""

    def __init__(self, dataset: Any, column: str):
        self.dataset, self.column = dataset, column

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(index)][self.column]


def _resolve(device: str | torch.device) -> torch.device:
    """``device`` with its index ("cuda" -> "cuda:<current>"), so that generators and tensors agree."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def _symmetric(index: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """Fold indices into ``0 .. length-1`` as ``... 1 0 | 0 1 ... n-1 | n-1 n-2 ...`` (period 2n)."""
    folded = torch.remainder(index, 2 * length)
    return torch.where(folded >= length, 2 * length - 1 - folded, folded)


def loader_rate(data: DeviceSRData, batch_size: int, num_batches: int = 20, seed: int = 0) -> float:
    """Pairs per second the device path makes (after one warm-up batch), synchronising CUDA."""
    import time

    generator = torch.Generator(device=data.device).manual_seed(seed)
    data.sample(batch_size, generator)
    if data.device.type == "cuda":
        torch.cuda.synchronize(data.device)
    start = time.perf_counter()
    for _ in range(num_batches):
        data.sample(batch_size, generator)
    if data.device.type == "cuda":
        torch.cuda.synchronize(data.device)
    return num_batches * batch_size / (time.perf_counter() - start) if num_batches else math.inf
