"""Helpers shared by several metrics: images to the [0, 255] scale, and the Inception network
that FID and IS load from a local file."""

from __future__ import annotations

import inspect
import itertools
import os
from pathlib import Path

import numpy as np
import torch

INCEPTION_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"


def to_unit_255(
    images: np.ndarray | torch.Tensor,
    value_range: tuple[float, float] = (0.0, 255.0),
    name: str = "images",
) -> torch.Tensor:
    """A batch of images as a float32 NCHW tensor on the [0, 255] scale.

    Args:
        images: torch (N, C, H, W) or numpy (N, H, W, C) (MMagic's NHWC). uint8 data is always
            read as [0, 255]; float data as ``value_range`` (e.g. ``(-1, 1)`` for generator output).
    """
    if isinstance(images, np.ndarray):
        if images.ndim != 4:
            raise ValueError(f"{name} as a numpy array must be (N, H, W, C), got shape {images.shape}.")
        is_uint8 = images.dtype == np.uint8
        images = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    elif isinstance(images, torch.Tensor):
        if images.dim() != 4:
            raise ValueError(f"{name} must be an (N, C, H, W) tensor, got shape {tuple(images.shape)}.")
        is_uint8 = images.dtype == torch.uint8
    else:
        raise ValueError(
            f"{name} must be a torch tensor (N, C, H, W) or a numpy array (N, H, W, C), got {type(images).__name__}."
        )
    images = images.detach().to(torch.float32)
    if is_uint8:
        return images
    low, high = value_range
    if high <= low:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range!r}.")
    return (images - low) * (255.0 / (high - low))


def load_inception(path: str | os.PathLike, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a TorchScript Inception feature extractor (e.g. StyleGAN2-ADA's ``inception-2015-12-05.pt``).

    Raises:
        FileNotFoundError: the file does not exist (the message says where to get one).
        ValueError: the file is not a TorchScript module.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"Inception weights not found at {str(path)!r}. FID and IS need a local TorchScript Inception "
            f"network: download StyleGAN2-ADA's inception-2015-12-05.pt ({INCEPTION_URL}) on a machine with "
            "internet access and pass its path."
        )
    try:
        model = torch.jit.load(str(path), map_location=device)
    except RuntimeError as err:
        raise ValueError(
            f"{str(path)!r} is not a TorchScript file ({err.__class__.__name__}: {str(err).splitlines()[0]}). "
            f"Use a TorchScript Inception such as StyleGAN2-ADA's inception-2015-12-05.pt ({INCEPTION_URL}); "
            "plain state dicts (e.g. pytorch_fid's pt_inception-2015-12-05-*.pth) are not supported."
        ) from err
    return model.eval()


def _accepts_argument(model: torch.nn.Module, name: str) -> bool:
    """Whether ``model.forward`` (TorchScript or Python) takes an argument ``name``."""
    schema = getattr(getattr(model, "forward", None), "schema", None)
    if schema is not None:  # TorchScript method
        return any(arg.name == name for arg in schema.arguments)
    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def _model_device(model: torch.nn.Module) -> torch.device:
    return next(itertools.chain(model.parameters(), model.buffers()), torch.empty(0)).device


def _uint8_batches(images: np.ndarray | torch.Tensor, value_range: tuple[float, float], batch_size: int):
    """uint8 (B, 3, H, W) CPU batches of the images: truncated to uint8 as MMagic does before the
    StyleGAN Inception, grayscale repeated to RGB."""
    images = to_unit_255(images, value_range)
    if images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)
    for start in range(0, images.shape[0], batch_size):
        yield images[start : start + batch_size].clamp(0, 255).to(torch.uint8)
