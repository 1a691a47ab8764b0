"""GAN sampling: :class:`GANPipeline` draws images from a generator; :func:`make_grid` tiles them."""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
from diffusers import ImagePipelineOutput
from PIL import Image

from ..errors import check_model_source
from .base import HFMagicPipeline, component_of, pipeline_index
from .device import resolve_device, resolve_dtype
from .grid import make_grid, to_pil
from .image_io import to_uint8

__all__ = ["GANPipeline", "make_grid"]


class GANPipeline(HFMagicPipeline):
    """Draw images from a GAN generator: any generator with ``sample_noise(num, generator)`` and a
    ``forward`` taking that noise as its first argument and returning images in [-1, 1] (hfmagic
    exports it under each GAN's name too, e.g. ``DCGANPipeline``).

    A diffusers ``DiffusionPipeline`` with one component, ``generator`` (also ``.model``):
    ``save_pretrained(folder)`` writes ``model_index.json`` and ``generator/``; :meth:`from_pretrained`
    loads that or a GAN repo (generator at the root), and so does
    ``diffusers.DiffusionPipeline.from_pretrained(folder_or_repo, trust_remote_code=True)``;
    ``to(device)``/``to(dtype)`` move the generator.

    Args:
        generator: the generator model; moved to ``device``/``dtype`` and put in eval mode
            (BatchNorm uses its running statistics).
        device, dtype: as for :class:`SuperResolutionPipeline`, except that ``dtype`` defaults to
            ``"float32"`` (``"auto"`` is accepted).
    """

    component_name = "generator"

    def __init__(
        self,
        generator: torch.nn.Module,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
    ):
        super().__init__()
        if not callable(getattr(generator, "sample_noise", None)):
            raise TypeError(
                f"{type(self).__name__} needs a GAN generator with a `sample_noise(num, generator)` method, got "
                f"{type(generator).__name__} (super-resolution models go to SuperResolutionPipeline)."
            )
        device = resolve_device(device)
        self.register_modules(generator=generator.to(device=device, dtype=resolve_dtype(dtype, device)).eval())
        self.set_progress_bar_config(desc="sampling", leave=False)

    @property
    def model(self) -> torch.nn.Module:
        """The generator (the name earlier releases used)."""
        return self.generator

    @classmethod
    def from_pretrained(
        cls,
        model_id_or_path: str | Path,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        **kwargs,
    ) -> GANPipeline:
        """Load the generator at the root of a GAN repo or folder (``AutoModel`` maps the config's
        ``model_type`` to the registered generator class), or the ``generator/`` of a pipeline written by
        :meth:`save_pretrained` (nothing from the repo is run); ``kwargs`` go to ``from_pretrained``."""
        from transformers import AutoConfig, AutoModel

        index = pipeline_index(model_id_or_path, kwargs)
        if index is None:
            check_model_source(model_id_or_path)  # an MMagic checkpoint or a folder without config.json: say so
        else:
            name = component_of(index, "generator", model_id_or_path)
            kwargs["subfolder"] = f"{kwargs['subfolder']}/{name}" if kwargs.get("subfolder") else name
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
        pipeline = cls(generator, device=device, dtype=torch_dtype)
        pipeline.register_to_config(_name_or_path=str(model_id_or_path))
        return pipeline

    def __call__(
        self,
        num_images: int = 1,
        seed: int | None = None,
        batch_size: int = 64,
        progress: bool = False,
        truncation: float | None = None,
        return_dict: bool = False,
    ) -> list[Image.Image] | ImagePipelineOutput:
        """Generate ``num_images`` PIL images ("RGB", or "L" for a one-channel generator); with
        ``return_dict``, diffusers' ``ImagePipelineOutput(images=[...])``. ``progress`` shows a bar over
        batches (``self.progress_bar``, set up with ``set_progress_bar_config``). ``truncation`` (for
        generators whose forward takes it, e.g. StyleGAN2) pulls the latents towards the mean latent.

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
        accepted = inspect.signature(self.generator.forward).parameters
        extra = {"randomize_noise": False} if "randomize_noise" in accepted else {}
        if truncation is not None:
            if "truncation" not in accepted:
                raise ValueError(f"{type(self.generator).__name__} has no truncation: leave truncation (--truncation) out.")
            if not 0.0 <= truncation <= 1.0:
                raise ValueError(f"truncation must be in [0, 1] (1: none), got {truncation}.")
            extra["truncation"] = truncation
        rng = torch.Generator().manual_seed(seed) if seed is not None else None
        noise = self.generator.sample_noise(num_images, generator=rng)
        images: list[Image.Image] = []
        device, dtype = self.device, self.dtype
        for chunk in self._progress(noise.split(batch_size), show=progress):
            with torch.inference_mode():
                fakes = self.generator(chunk.to(device=device, dtype=dtype), **extra)
            for fake in fakes:
                images.append(to_pil(to_uint8(fake, -1.0, 1.0)))
        return ImagePipelineOutput(images=images) if return_dict else images
