"""Inception Score (IS) as MMagic computes it, with a user-supplied Inception network.

As for FID, no package ships the Inception weights: pass a local TorchScript file, such as
StyleGAN2-ADA's ``inception-2015-12-05.pt`` (MMagic's default ``inception_style="StyleGAN"``).
MMagic's recipe, followed here: images truncated to uint8, resized to 299x299 with Pillow's
bicubic filter, truncated to uint8 again, class probabilities from
``model(images, no_output_bias=True)``; then the N images are cut into ``splits`` equal parts
(the remainder is dropped) and each part scores ``exp(mean_i KL(p(y|x_i) || p(y)))``, ``p(y)`` being
the part's mean prediction. The result is the mean and the (population) standard deviation of the
parts' scores.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from ._common import _accepts_argument, _model_device, _uint8_batches, load_inception

__all__ = ["inception_score", "inception_score_from_probabilities", "inception_probabilities"]


def inception_score_from_probabilities(probabilities: np.ndarray | torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """IS from class probabilities, in float64.

    Args:
        probabilities: (N, K) ``p(y|x)`` of N images (rows are normalised to sum 1, as scipy's
            ``entropy`` does in MMagic).
        splits: number of equal parts; N // splits images each, the rest dropped (MMagic).
    Returns:
        ``(mean, std)`` of the parts' scores (each in [1, K]; higher is better).
    """
    if isinstance(probabilities, torch.Tensor):
        probabilities = probabilities.detach().cpu().numpy()
    probs = np.asarray(probabilities, np.float64)
    if probs.ndim != 2:
        raise ValueError(f"probabilities must be (N, K), got shape {probs.shape}.")
    if splits < 1 or probs.shape[0] < splits:
        raise ValueError(f"Need at least splits={splits} >= 1 images, got {probs.shape[0]}: generate more or lower splits.")
    if (probs < 0).any() or not np.isfinite(probs).all():
        raise ValueError("probabilities must be finite and >= 0 (softmax outputs, not logits).")
    probs = torch.from_numpy(probs / probs.sum(axis=1, keepdims=True))
    size = probs.shape[0] // splits
    scores = []
    for k in range(splits):
        part = probs[k * size : (k + 1) * size]
        marginal = part.mean(dim=0, keepdim=True)
        # KL(p || q) = sum p log p - p log q, with 0 log 0 = 0 (xlogy), as scipy's entropy in MMagic
        kl = (torch.special.xlogy(part, part) - torch.special.xlogy(part, marginal)).sum(dim=1)
        scores.append(float(kl.mean().exp()))
    return float(np.mean(scores)), float(np.std(scores))


def _resize_299(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> uint8 (N, 3, 299, 299) with Pillow's bicubic filter (MMagic's IS default)."""
    out = [
        torch.from_numpy(np.array(Image.fromarray(image.permute(1, 2, 0).numpy()).resize((299, 299), Image.BICUBIC)))
        for image in images.cpu()
    ]
    return torch.stack(out).permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def inception_probabilities(
    model: torch.nn.Module,
    images: np.ndarray | torch.Tensor,
    value_range: tuple[float, float] = (0.0, 255.0),
    batch_size: int = 50,
    resize: bool = True,
) -> np.ndarray:
    """Class probabilities ``p(y|x)`` of RGB images, as MMagic's IS computes them.

    Args:
        model: from :func:`hfmagic.metrics.load_inception`. A module taking ``no_output_bias``
            (StyleGAN's detector) gets the uint8 images and returns probabilities; any other module
            (e.g. a torchvision-style Inception) gets them as float in [-1, 1], ``(x - 127.5) / 127.5``,
            and its output is read as logits (softmax applied), as MMagic does.
        images: (N, 3, H, W) tensor or (N, H, W, 3) array; uint8, or float in ``value_range``
            (truncated to uint8, as MMagic). Grayscale (1 channel) is repeated to RGB.
        resize: resize to 299x299 with Pillow's bicubic filter first (MMagic's default).
    Returns:
        (N, K) float64 array.
    """
    device = _model_device(model)
    styled = _accepts_argument(model, "no_output_bias")
    chunks = []
    for batch in _uint8_batches(images, value_range, batch_size):
        if resize:
            batch = _resize_299(batch)
        batch = batch.to(device)
        if styled:
            out = model(batch, no_output_bias=True)
        else:
            out = torch.softmax(model((batch.float() - 127.5) / 127.5).float(), dim=1)
        chunks.append(out.reshape(out.shape[0], -1).to(torch.float64).cpu())
    return torch.cat(chunks).numpy()


def inception_score(
    images: np.ndarray | torch.Tensor,
    inception_path: str | os.PathLike,
    value_range: tuple[float, float] = (0.0, 255.0),
    splits: int = 10,
    batch_size: int = 50,
    resize: bool = True,
    device: str | torch.device = "cpu",
) -> tuple[float, float]:
    """Inception Score of generated RGB images (higher is better): ``(mean, std)`` over ``splits``.

    Args:
        images: (N, 3, H, W) tensors or (N, H, W, 3) arrays, N >= ``splits``; uint8 or float in
            ``value_range`` (e.g. ``(-1, 1)`` for generator output). MMagic uses 50k images.
        inception_path: local TorchScript Inception file (see :func:`hfmagic.metrics.load_inception`).
    """
    model = load_inception(inception_path, device)
    probabilities = inception_probabilities(model, images, value_range, batch_size, resize)
    return inception_score_from_probabilities(probabilities, splits)
