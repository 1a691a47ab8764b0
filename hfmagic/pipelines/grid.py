"""Image grids: :func:`make_grid` tiles equally sized images (GAN samples) into one image. Kept apart
from the GAN pipeline so that training code imports it without diffusers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from .image_io import to_uint8

__all__ = ["make_grid", "to_pil"]


def to_pil(array: np.ndarray) -> Image.Image:
    """(H, W, 1 or 3) uint8 -> an "L" or "RGB" image."""
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def make_grid(
    images: Sequence[Image.Image] | torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: int = 0
) -> Image.Image:
    """Tile equally sized images into one image, ``nrow`` per row (default ~sqrt(N); like
    torchvision's make_grid), with ``padding`` pixels of ``pad_value`` between and around them.

    Args:
        images: PIL images of one size and mode, or a (N, C, H, W) tensor in [-1, 1] (a
            generator's output; converted to uint8 as :class:`GANPipeline` does).
    """
    if isinstance(images, torch.Tensor):
        images = [to_pil(to_uint8(image.detach(), -1.0, 1.0)) for image in images]
    if nrow is None:
        nrow = max(math.ceil(math.sqrt(len(images))), 1)
    if not images:
        raise ValueError("make_grid needs at least one image.")
    if nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}.")
    width, height = images[0].size
    mode = images[0].mode
    for image in images:
        if image.size != (width, height) or image.mode != mode:
            raise ValueError(
                f"make_grid needs images of one size and mode; got {image.size} {image.mode} next to "
                f"{(width, height)} {mode}."
            )
    ncol = min(nrow, len(images))
    nrows = math.ceil(len(images) / nrow)
    fill = pad_value if mode == "L" else (pad_value,) * len(mode)
    grid = Image.new(mode, (ncol * (width + padding) + padding, nrows * (height + padding) + padding), fill)
    for i, image in enumerate(images):
        row, col = divmod(i, nrow)
        grid.paste(image, (padding + col * (width + padding), padding + row * (height + padding)))
    return grid
