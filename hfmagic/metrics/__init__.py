"""Image-quality metrics computed as MMagic computes them: pure functions on numpy/torch images.

- :func:`psnr`, :func:`ssim`: super-resolution (numpy HWC in [0, 255] or torch NCHW in [0, 1]).
- :func:`ms_ssim`, :func:`swd` (:class:`SlicedWassersteinDistance` for streaming): GAN samples.
- :func:`fid`, :func:`frechet_distance`, :func:`inception_score`: with a user-supplied Inception
  TorchScript file.
"""

from .fid import (
    feature_statistics,
    fid,
    frechet_distance,
    inception_features,
    load_inception,
)
from .inception_score import inception_probabilities, inception_score, inception_score_from_probabilities
from .ms_ssim import MS_SSIM_WEIGHTS, ms_ssim
from .psnr import psnr, rgb_to_y
from .ssim import ssim
from .swd import SlicedWassersteinDistance, swd

__all__ = [
    "psnr",
    "ssim",
    "rgb_to_y",
    "ms_ssim",
    "MS_SSIM_WEIGHTS",
    "swd",
    "SlicedWassersteinDistance",
    "fid",
    "frechet_distance",
    "feature_statistics",
    "inception_features",
    "load_inception",
    "inception_score",
    "inception_score_from_probabilities",
    "inception_probabilities",
]
