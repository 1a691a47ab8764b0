from .configuration_stylegan2 import StyleGAN2Config
from .modeling_stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator, StyleGAN2PreTrainedModel
from .convert_stylegan2 import StyleGAN2Conversion

__all__ = ["StyleGAN2Config", "StyleGAN2Conversion", "StyleGAN2Generator", "StyleGAN2Discriminator", "StyleGAN2PreTrainedModel"]
