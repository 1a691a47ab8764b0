"""GAN sampling: :class:`GANPipeline` draws images from a generator; :func:`make_grid` tiles them."""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import check_model_source
from ..logging_utils import progress_bar
from .device import resolve_device, resolve_dtype
from .image_io import to_uint8

__all__ = ["GANPipeline", "make_grid"]


def _to_pil(array: np.ndarray) -> Image.Image:
    """(H, W, 1 or 3) uint8 -> an "L" or "RGB" image."""
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


class GANPipeline:
    """Draw images from a GAN generator: any generator with ``sample_noise(num, generator)`` and a
    ``forward`` taking that noise as its first argument and returning images in [-1, 1] (hfmagic
    exports it under each GAN's name too, e.g. ``DCGANPipeline``).

    Args:
        generator: the generator model; moved to ``device``/``dtype`` and put in eval mode
            (BatchNorm uses its running statistics).
        device, dtype: as for :class:`SuperResolutionPipeline`, except that ``dtype`` defaults to
            ``"float32"`` (``"auto"`` is accepted).
    """

    def __init__(
        self,
        generator: torch.nn.Module,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
    ):
        if not callable(getattr(generator, "sample_noise", None)):
            raise TypeError(
                f"{type(self).__name__} needs a GAN generator with a `sample_noise(num, generator)` method, got "
                f"{type(generator).__name__} (super-resolution models go to SuperResolutionPipeline)."
            )
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model = generator.to(device=self.device, dtype=self.dtype).eval()

    @classmethod
    def from_pretrained(
        cls,
        model_id_or_path: str | Path,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        **kwargs,
    ) -> GANPipeline:
        """Load the generator at the root of a GAN repo or folder (``AutoModel`` maps the config's
        ``model_type`` to the registered generator class); ``kwargs`` go to ``from_pretrained``."""
        from transformers import AutoConfig, AutoModel

        check_model_source(model_id_or_path)  # an MMagic checkpoint or a folder without config.json: say so
        torch_dtype = resolve_dtype(dtype, resolve_device(device))
        hub_options = ("revision", "subfolder", "token", "cache_dir", "local_files_only", "force_download", "proxies", "trust_remote_code")
        config_kwargs = {k: v for k, v in kwargs.items() if k in hub_options}
        config = AutoConfig.from_pretrained(str(model_id_or_path), **config_kwargs)
        discriminator = getattr(type(config), "card_classes", {}).get("discriminator")
        if discriminator is not None and discriminator in (config.architectures or []):
            raise ValueError(
                f"{model_id_or_path} holds a GAN discriminator ({discriminator}), which scores images and draws "
                "none: load the GAN repo's root (its generator) instead of its discriminator/ folder."
            )
        generator = AutoModel.from_pretrained(str(model_id_or_path), dtype=torch_dtype, **kwargs)
        return cls(generator, device=device, dtype=torch_dtype)

    def __call__(
        self,
        num_images: int = 1,
        seed: int | None = None,
        batch_size: int = 64,
        progress: bool = False,
        truncation: float | None = None,
    ) -> list[Image.Image]:
        """Generate ``num_images`` PIL images ("RGB", or "L" for a one-channel generator).

        The noise for all images is drawn first, on CPU, from ``torch.Generator().manual_seed(seed)``,
        so a seed gives the same noise on every device and for every ``batch_size`` (on CPU the
        images are bitwise the same for any batch size; another device may round its arithmetic
        differently, by a uint8 step in rare pixels). Pixels go
        from [-1, 1] to uint8 as in MMagic: ``round(clamp((x + 1) / 2, 0, 1) * 255)``.
        """
        if num_images < 1:
            raise ValueError(f"num_images must be >= 1, got {num_images}.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        accepted = inspect.signature(self.model.forward).parameters
        extra = {"randomize_noise": False} if "randomize_noise" in accepted else {}
        if truncation is not None:
            if "truncation" not in accepted:
                raise ValueError(f"{type(self.model).__name__} has no truncation: leave truncation (--truncation) out.")
            if not 0.0 <= truncation <= 1.0:
                raise ValueError(f"truncation must be in [0, 1] (1: none), got {truncation}.")
            extra["truncation"] = truncation
        rng = torch.Generator().manual_seed(seed) if seed is not None else None
        noise = self.model.sample_noise(num_images, generator=rng)
        images: list[Image.Image] = []
        chunks = noise.split(batch_size)
        for chunk in progress_bar(chunks, desc="sampling", disable=not progress, leave=False):
            with torch.inference_mode():
                fakes = self.model(chunk.to(device=self.device, dtype=self.dtype), **extra)
            for fake in fakes:
                images.append(_to_pil(to_uint8(fake, -1.0, 1.0)))
        return images


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
        images = [_to_pil(to_uint8(image.detach(), -1.0, 1.0)) for image in images]
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
