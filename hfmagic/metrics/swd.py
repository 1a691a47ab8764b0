"""Sliced Wasserstein distance between real and generated images (Karras et al. 2018), as
MMagic's ``SlicedWassersteinDistance``.

Each image (mapped to [-1, 1]) is decomposed into a Laplacian pyramid (5x5 binomial kernel / 256,
zero padding; nearest-neighbour upsampling then blur), down to 16 px and at most 4 levels. From
every level of every image, 128 random 7x7 patches are taken as descriptors; the descriptors of
a level are normalised per channel (separately for real and fake) and compared with the sliced
Wasserstein distance: 4 repeats x 128 random unit directions, projections sorted, mean absolute
difference. Distances are reported x 1e3 per level, with their average.

Randomness comes from ``torch.Generator``s seeded from ``seed``, so a seed gives the same value
on every run, whatever the batch split. Patch centres of level ``l`` (finest is 0): x from a
generator seeded ``seed + 1 + 2 l + o``, y from one seeded ``seed + 2 + 2 l + o``, with ``o = 0``
for real and ``o = 8`` for fake images (at most 4 levels, so the eight streams never share a seed),
each drawing ``torch.randint(r, size - r, (N * nhoods_per_image,))`` per batch. Real and fake
positions are independent, as in MMagic (which draws both from one global stream): the estimator
then has MMagic's expectation, including the sampling term that shared positions would cancel
(shared positions bias the coarse levels low, by ~7% at 32 px and ~30% at 16 px on 64 px photos).
So SWD of a set with itself is small but not 0. Directions, in ``compute``: a generator seeded
``seed`` draws ``torch.randn(dim, dirs_per_repeat)`` per level, per repeat.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch.nn import functional as F

from ._common import to_unit_255

__all__ = [
    "swd",
    "SlicedWassersteinDistance",
    "laplacian_pyramid",
    "extract_descriptors",
    "normalize_descriptors",
    "sliced_wasserstein",
    "swd_resolutions",
]


# Seed offset of the fake images' position streams (real ones use seed + 1 ... seed + 8).
_FAKE_SEED_OFFSET = 8


def _binomial_kernel() -> torch.Tensor:
    """5x5 binomial kernel [1 4 6 4 1]^T [1 4 6 4 1] / 256."""
    row = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
    return torch.outer(row, row) / 256.0


def _blur(x: torch.Tensor, stride: int) -> torch.Tensor:
    channels = x.shape[1]
    weight = _binomial_kernel().to(device=x.device, dtype=x.dtype).expand(channels, 1, 5, 5)
    return F.conv2d(x, weight, padding=2, stride=stride, groups=channels)


def laplacian_pyramid(images: torch.Tensor, num_levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid with ``num_levels`` levels, finest first.

    Args:
        images: (N, C, H, W) float tensor.
    Returns:
        ``num_levels`` tensors (N, C, H / 2^i, W / 2^i): band-pass levels, then the last
        (coarsest) Gaussian level.
    """
    gaussians = [images]
    for _ in range(num_levels - 1):
        gaussians.append(_blur(gaussians[-1], stride=2))
    levels = []
    for fine, coarse in itertools.pairwise(gaussians):
        levels.append(fine - _blur(F.interpolate(coarse, scale_factor=2, mode="nearest"), stride=1))
    levels.append(gaussians[-1])
    return levels


def extract_descriptors(level: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, nhood_size: int = 7) -> torch.Tensor:
    """Square patches around given centres.

    Args:
        level: (N, C, H, W) tensor.
        xs, ys: (N * k,) integer centres; patches ``k*i ... k*i + k - 1`` come from image ``i``.
        nhood_size: odd patch side.
    Returns:
        (N * k, C, nhood_size, nhood_size) patches, indexed ``[patch, channel, x, y]`` (x before
        y, i.e. each patch transposed) as PGGAN's and MMagic's descriptors are: the layout fixes
        which descriptor entry each random direction weighs.
    """
    num, channels = level.shape[:2]
    per_image = xs.numel() // num
    radius = nhood_size // 2
    offsets = torch.arange(-radius, radius + 1, device=level.device)
    image_idx = torch.arange(num, device=level.device).repeat_interleave(per_image)
    cols = (xs.to(level.device)[:, None] + offsets)[:, None, :, None]  # (M, 1, k, 1): x varies along dim 2
    rows = (ys.to(level.device)[:, None] + offsets)[:, None, None, :]  # (M, 1, 1, k): y varies along dim 3
    chans = torch.arange(channels, device=level.device)[None, :, None, None]
    return level[image_idx[:, None, None, None], chans, rows, cols]


def normalize_descriptors(descriptors: torch.Tensor) -> torch.Tensor:
    """Subtract the per-channel mean, divide by the per-channel (unbiased) std, flatten.

    Args:
        descriptors: (M, C, k, k).
    Returns:
        (M, C * k * k).
    """
    mean = descriptors.mean(dim=(0, 2, 3), keepdim=True)
    std = descriptors.std(dim=(0, 2, 3), keepdim=True)
    return ((descriptors - mean) / std).reshape(descriptors.shape[0], -1)


def _sorted_rows(x: torch.Tensor) -> torch.Tensor:
    """Each row of a contiguous (K, M) tensor sorted. On CPU numpy sorts in place (its SIMD sort
    of contiguous float rows is several times faster than torch's CPU sort)."""
    if x.device.type == "cpu":
        x.numpy().sort(axis=1)
        return x
    return torch.sort(x, dim=1).values


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, directions: list[torch.Tensor]) -> float:
    """Sliced Wasserstein distance of two equal-size point sets.

    Args:
        a, b: (M, D) descriptors.
        directions: one (D, K) matrix per repeat (columns need not be normalised; they are).
    Returns:
        Mean over repeats of the mean absolute difference of the sorted projections.
    """
    results = []
    for dirs in directions:
        dirs = dirs.to(device=a.device, dtype=a.dtype)
        dirs = dirs / torch.sqrt((dirs**2).sum(dim=0, keepdim=True))
        # (K, M) projections: one contiguous row per direction, sorted along the points
        proj_a, proj_b = _sorted_rows(dirs.T @ a.T), _sorted_rows(dirs.T @ b.T)
        results.append(float((proj_a - proj_b).abs().mean()))
    return sum(results) / len(results)


def swd_resolutions(image_size: int, max_levels: int = 4, min_size: int = 16) -> list[int]:
    """Pyramid resolutions MMagic uses: image_size, /2, ... while >= 16, at most 4 levels."""
    resolutions = []
    res = image_size
    while res >= min_size and len(resolutions) < max_levels:
        resolutions.append(res)
        res //= 2
    return resolutions


class SlicedWassersteinDistance:
    """Streaming SWD: feed real and fake batches with ``update``, then ``compute``.

    Args:
        image_size: image height (MMagic's ``image_shape[1]``); images must be at least 16 px.
        value_range: range of float inputs (uint8 inputs are read as [0, 255]).
        seed: seeds the patch positions and projection directions.
        nhood_size, nhoods_per_image, dir_repeats, dirs_per_repeat: MMagic's 7, 128, 4, 128.

    Example:

    ```python
    >>> metric = SlicedWassersteinDistance(64, value_range=(-1, 1))
    >>> metric.update(real=real_batch, fake=generator(num_batches=64))
    >>> metric.compute()   # {"64": ..., "32": ..., "16": ..., "avg": ...}
    ```
    """

    def __init__(
        self,
        image_size: int,
        value_range: tuple[float, float] = (0.0, 255.0),
        seed: int = 0,
        nhood_size: int = 7,
        nhoods_per_image: int = 128,
        dir_repeats: int = 4,
        dirs_per_repeat: int = 128,
    ):
        self.resolutions = swd_resolutions(image_size)
        if not self.resolutions:
            raise ValueError(f"SWD needs images of at least 16x16 pixels, got image_size={image_size}.")
        if nhood_size % 2 == 0 or nhood_size > 16:
            raise ValueError(
                f"nhood_size must be odd and at most 15 (patches must fit a 16 px level), got {nhood_size}."
            )
        self.image_size = image_size
        self.value_range = value_range
        self.nhood_size = nhood_size
        self.nhoods_per_image = nhoods_per_image
        self.dir_repeats = dir_repeats
        self.dirs_per_repeat = dirs_per_repeat
        self.seed = seed
        # (x, y) position streams per kind and level. Real and fake get different seeds: shared
        # positions would correlate the two descriptor sets and bias SWD low against MMagic's.
        self._position_generators = {
            kind: [
                tuple(torch.Generator().manual_seed(seed + 1 + 2 * lod + axis + offset) for axis in (0, 1))
                for lod in range(len(self.resolutions))
            ]
            for kind, offset in (("real", 0), ("fake", _FAKE_SEED_OFFSET))
        }
        self._descriptors = {"real": [[] for _ in self.resolutions], "fake": [[] for _ in self.resolutions]}
        # Descriptors are kept on CPU (16384 images x 128 patches x 147 values is 1.2 GB per level and
        # set); ``compute`` runs where the images came from, e.g. the GPU's sort for large sets.
        self._compute_device = torch.device("cpu")

    def num_images(self, kind: str) -> int:
        """Images fed so far as ``kind`` (``"real"`` or ``"fake"``)."""
        return sum(d.shape[0] for d in self._descriptors[kind][0]) // self.nhoods_per_image

    def _add(self, images: np.ndarray | torch.Tensor, kind: str) -> None:
        images = to_unit_255(images, self.value_range, name=f"{kind} images")
        if images.shape[-2] != self.image_size:
            raise ValueError(
                f"{kind} images are {images.shape[-2]} px high, but this SWD was set up for image_size={self.image_size}."
            )
        if images.shape[1] == 1:  # grayscale: as MMagic, compared as 3 equal channels
            images = images.repeat(1, 3, 1, 1)
        images = (images - 127.5) / 127.5  # [0, 255] -> [-1, 1]
        radius = self.nhood_size // 2
        count = images.shape[0] * self.nhoods_per_image
        levels = laplacian_pyramid(images, len(self.resolutions))
        for lod, level in enumerate(levels):
            height, width = level.shape[-2:]
            gen_x, gen_y = self._position_generators[kind][lod]
            xs = torch.randint(radius, width - radius, (count,), generator=gen_x)
            ys = torch.randint(radius, height - radius, (count,), generator=gen_y)
            self._descriptors[kind][lod].append(extract_descriptors(level, xs, ys, self.nhood_size).cpu())
        self._compute_device = images.device

    @torch.no_grad()
    def update(
        self, real: np.ndarray | torch.Tensor | None = None, fake: np.ndarray | torch.Tensor | None = None
    ) -> None:
        """Add a batch of real and/or fake images: (N, C, H, W) tensors (or (N, H, W, C) arrays)."""
        if real is not None:
            self._add(real, "real")
        if fake is not None:
            self._add(fake, "fake")

    @torch.no_grad()
    def compute(self) -> dict[str, float]:
        """SWD x 1e3 per level, keyed by resolution (``"64"``, ``"32"``, ...), plus ``"avg"``."""
        num_real, num_fake = self.num_images("real"), self.num_images("fake")
        if num_real != num_fake or num_real < 2:
            raise ValueError(
                f"SWD compares equally many real and fake images (at least 2 each); got {num_real} real and {num_fake} fake."
            )
        generator = torch.Generator().manual_seed(self.seed)
        distances = []
        for lod in range(len(self.resolutions)):
            real = normalize_descriptors(torch.cat(self._descriptors["real"][lod]).to(self._compute_device))
            fake = normalize_descriptors(torch.cat(self._descriptors["fake"][lod]).to(self._compute_device))
            directions = [
                torch.randn(real.shape[1], self.dirs_per_repeat, generator=generator) for _ in range(self.dir_repeats)
            ]
            distances.append(sliced_wasserstein(real, fake, directions) * 1e3)
        result = {str(res): d for res, d in zip(self.resolutions, distances)}
        result["avg"] = float(np.mean(distances))
        return result


def swd(
    real: np.ndarray | torch.Tensor,
    fake: np.ndarray | torch.Tensor,
    value_range: tuple[float, float] = (0.0, 255.0),
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, float]:
    """SWD between two equally large sets of images (MMagic's metric).

    Args:
        real, fake: (N, C, H, W) tensors or (N, H, W, C) arrays, uint8 or float in ``value_range``.
        seed: seeds the random patches and directions (same seed, same value).
        batch_size: images put through the pyramid at once (does not change the result).
    Returns:
        ``{"<res>": swd x 1e3 for each pyramid level, ..., "avg": mean of the levels}``.
    """
    if len(real) != len(fake):
        raise ValueError(f"SWD compares equally many real and fake images; got {len(real)} real and {len(fake)} fake.")
    size = real.shape[-2] if isinstance(real, torch.Tensor) else real.shape[1]
    metric = SlicedWassersteinDistance(size, value_range=value_range, seed=seed)
    for start in range(0, len(real), batch_size):
        metric.update(real=real[start : start + batch_size], fake=fake[start : start + batch_size])
    return metric.compute()
