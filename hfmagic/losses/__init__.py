"""Training losses (torch only): MMagic's pixel, perceptual (VGG) and GAN losses, and the
relativistic-average GAN terms of ESRGAN.

- :class:`PerceptualLoss` - VGG feature (and Gram/style) loss; ImageNet VGG19 from the Hub
  (``timm/vgg19.tv_in1k``), a local folder or a .safetensors / .pth file (:mod:`hfmagic.losses.vgg`).
- :class:`GANLoss` - vanilla / lsgan / wgan / wgan-logistic-ns / hinge / l1 / smgan;
  :func:`relativistic_generator_loss`, :func:`relativistic_discriminator_losses` for ESRGAN.
- :func:`pixel_loss`, :data:`PIXEL_LOSSES`, :func:`charbonnier_loss` - the SR models' pixel losses.
"""

from .gan import GAN_TYPES, GANLoss, relativistic_discriminator_losses, relativistic_generator_loss
from .perceptual import PerceptualLoss, gram_matrix
from .pixel import LOSSES as PIXEL_LOSSES
from .pixel import charbonnier_loss, pixel_loss
from .vgg import DEFAULT_VGG_WEIGHTS, VGG_TYPES, VGGFeatureExtractor, load_vgg_weights, vgg_layer_names

__all__ = [
    "DEFAULT_VGG_WEIGHTS",
    "GAN_TYPES",
    "GANLoss",
    "PIXEL_LOSSES",
    "PerceptualLoss",
    "VGGFeatureExtractor",
    "VGG_TYPES",
    "charbonnier_loss",
    "gram_matrix",
    "load_vgg_weights",
    "pixel_loss",
    "relativistic_discriminator_losses",
    "relativistic_generator_loss",
    "vgg_layer_names",
]
