"""Fréchet Inception distance, with a user-supplied Inception feature extractor.

No package ships the Inception weights, and hfmagic downloads nothing on its own: pass the
path of a TorchScript feature extractor, such as StyleGAN2-ADA's ``inception-2015-12-05.pt``
(the one MMagic's ``inception_style="StyleGAN"`` uses). It is called as MMagic calls it:
``model(images_uint8_nchw_rgb, return_features=True)`` -> (N, 2048) features (a module without
a ``return_features`` argument is called with the images only).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ._common import INCEPTION_URL, _accepts_argument, _model_device, _uint8_batches, load_inception

__all__ = ["fid", "frechet_distance", "load_inception", "inception_features", "feature_statistics", "INCEPTION_URL"]

def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2):
    ``|mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr(sqrtm(sigma1 sigma2))``.

    ``tr(sqrtm(sigma1 sigma2))`` is computed as the sum of the square roots of the eigenvalues of
    the symmetric ``sqrt(sigma1) sigma2 sqrt(sigma1)`` (same eigenvalues), in float64: stable for
    singular covariances, no complex parts to discard, no scipy needed.

    Args:
        mu1, mu2: (D,) means. sigma1, sigma2: (D, D) covariances.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    dim = mu1.shape[0]
    if mu2.shape != (dim,) or sigma1.shape != (dim, dim) or sigma2.shape != (dim, dim):
        raise ValueError(
            f"Shapes do not match: mu1 {mu1.shape}, sigma1 {sigma1.shape}, mu2 {mu2.shape}, sigma2 {sigma2.shape}; "
            "expected (D,) means and (D, D) covariances."
        )
    eigvals, eigvecs = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    sqrt_sigma1 = (eigvecs * np.sqrt(np.clip(eigvals, 0, None))) @ eigvecs.T
    middle = sqrt_sigma1 @ sigma2 @ sqrt_sigma1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)


def feature_statistics(features: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of (N, D) features, in float64."""
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().numpy()
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"Need (N, D) features with N >= 2, got shape {features.shape}.")
    return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False))


@torch.no_grad()
def inception_features(
    model: torch.nn.Module,
    images: np.ndarray | torch.Tensor,
    value_range: tuple[float, float] = (0.0, 255.0),
    batch_size: int = 50,
) -> np.ndarray:
    """Features of RGB images from an Inception extractor.

    Args:
        model: from :func:`load_inception` (or any module mapping uint8 NCHW to (N, D)).
        images: (N, 3, H, W) tensor or (N, H, W, 3) array; uint8, or float in ``value_range``.
            They are converted to uint8 by truncation, as MMagic does before the StyleGAN Inception.
    Returns:
        (N, D) float64 array.
    """
    device = _model_device(model)
    kwargs = {"return_features": True} if _accepts_argument(model, "return_features") else {}
    chunks = []
    for batch in _uint8_batches(images, value_range, batch_size):
        feats = model(batch.to(device), **kwargs)
        if isinstance(feats, (tuple, list)):
            feats = feats[0]
        chunks.append(feats.reshape(feats.shape[0], -1).to(torch.float64).cpu())
    return torch.cat(chunks).numpy()


def fid(
    real: np.ndarray | torch.Tensor,
    fake: np.ndarray | torch.Tensor,
    inception_path: str | os.PathLike,
    value_range: tuple[float, float] = (0.0, 255.0),
    batch_size: int = 50,
    device: str | torch.device = "cpu",
) -> float:
    """FID between real and generated RGB images (lower is better).

    Args:
        real, fake: (N, 3, H, W) tensors or (N, H, W, 3) arrays (N >= 2 each), uint8 or float in
            ``value_range``.
        inception_path: local TorchScript Inception file (see :func:`load_inception`).
    """
    model = load_inception(inception_path, device)
    mu_r, sigma_r = feature_statistics(inception_features(model, real, value_range, batch_size))
    mu_f, sigma_f = feature_statistics(inception_features(model, fake, value_range, batch_size))
    return frechet_distance(mu_f, sigma_f, mu_r, sigma_r)
