"""MS-SSIM of generated images, PGGAN style, as MMagic's ``MultiScaleStructureSimilarity``.

The images are split into pairs (``images[0::2]`` against ``images[1::2]``); each pair gets a
multi-scale SSIM (Wang et al. 2003) over 5 scales with 2x2 average downsampling, and the scores
are averaged. Lower means more diverse samples.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from ._common import to_unit_255
from .ssim import gaussian_kernel, ssim_and_contrast

__all__ = ["ms_ssim", "ms_ssim_pairs", "MS_SSIM_WEIGHTS"]

# Wang et al.'s weights (they do not sum to 1; the MATLAB code and PGGAN use them as they are).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _halve(x: torch.Tensor) -> torch.Tensor:
    """2x2 average (PGGAN's ``_hox_downsample``)."""
    return F.avg_pool2d(x, kernel_size=2, stride=2)


def ms_ssim_pairs(
    img1: torch.Tensor,
    img2: torch.Tensor,
    weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
    filter_size: int = 11,
    filter_sigma: float = 1.5,
) -> torch.Tensor:
    """MS-SSIM of each pair (img1[i], img2[i]).

    Args:
        img1, img2: (N, C, H, W) tensors on the [0, 255] scale; H and W divisible by
            2 ** (len(weights) - 1).
    Returns:
        (N,) float64 tensor of MS-SSIM scores.
    """
    im1, im2 = img1.to(torch.float64), img2.to(torch.float64)
    ssims, css = [], []
    for level in range(len(weights)):
        if level:
            im1, im2 = _halve(im1), _halve(im2)
        # The window shrinks (with its sigma) when the image gets smaller than it, as PGGAN.
        size = min(filter_size, *im1.shape[-2:])
        kernel = gaussian_kernel(size, size * filter_sigma / filter_size)
        ssim_value, cs_value = ssim_and_contrast(im1, im2, kernel)
        ssims.append(ssim_value)
        css.append(cs_value)
    # Clipped at 0 before the powers (negative values would give NaN), as PGGAN.
    ssims_t = torch.stack(ssims).clamp(min=0.0)
    css_t = torch.stack(css).clamp(min=0.0)
    w = torch.tensor(weights, dtype=torch.float64, device=ssims_t.device)[:, None]
    return torch.prod(css_t[:-1] ** w[:-1], dim=0) * ssims_t[-1] ** w[-1]


def ms_ssim(
    images: np.ndarray | torch.Tensor,
    value_range: tuple[float, float] = (0.0, 255.0),
    reduction: str = "mean",
    batch_size: int = 256,
) -> float | torch.Tensor:
    """MS-SSIM between the pairs (``images[0::2]``, ``images[1::2]``) of a set of generated images.

    Args:
        images: (N, C, H, W) torch tensor or (N, H, W, C) numpy array, N even, H and W multiples
            of 16; uint8, or float in ``value_range`` (MMagic: [0, 255]; DCGAN output: (-1, 1)).
        reduction: ``"mean"`` (a float, MMagic's value) or ``"none"`` (the (N/2,) scores).
        batch_size: pairs computed at once (bounds memory; does not change the result).
    Returns:
        The mean MS-SSIM (float) or per-pair scores (float64 tensor).
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}.")
    images = to_unit_255(images, value_range)
    num, _, height, width = images.shape
    if num < 2 or num % 2:
        raise ValueError(f"MS-SSIM compares pairs of images: pass an even number >= 2 of images, got {num}.")
    factor = 2 ** (len(MS_SSIM_WEIGHTS) - 1)
    if height % factor or width % factor:
        raise ValueError(
            f"MS-SSIM halves the images 4 times: height and width must be multiples of 16, got {height}x{width}."
        )
    first, second = images[0::2], images[1::2]
    scores = torch.cat(
        [ms_ssim_pairs(first[i : i + batch_size], second[i : i + batch_size]) for i in range(0, num // 2, batch_size)]
    )
    return float(scores.mean()) if reduction == "mean" else scores
