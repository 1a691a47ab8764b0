"""DCGAN configuration (shared by the generator and the discriminator)."""

from __future__ import annotations

import math
from typing import ClassVar

from transformers import PretrainedConfig

from ..config_checks import check_int_fields


class DCGANConfig(PretrainedConfig):
    r"""Configuration of [`DCGANGenerator`] and [`DCGANDiscriminator`] (Radford et al. 2016), with
    MMagic's defaults for 64x64 images.

    Args:
        image_size (`int`, *optional*, defaults to 64):
            Side of the generated (and discriminated) square images; a power of two times
            `generator_input_scale`.
        num_channels (`int`, *optional*, defaults to 3):
            Image channels (3 for RGB, 1 for grayscale).
        noise_size (`int`, *optional*, defaults to 100):
            Length of the generator's noise vector.
        generator_base_channels (`int`, *optional*, defaults to 1024):
            Channels of the generator's first feature map (halved at each upsampling).
        generator_input_scale (`int`, *optional*, defaults to 4):
            Side of the generator's first feature map; 4, the output of MMagic's first 4x4
            transposed convolution on a 1x1 noise map (kept as a field for MMagic parity).
        discriminator_base_channels (`int`, *optional*, defaults to 128):
            Channels after the discriminator's first convolution (doubled at each downsampling).
        discriminator_output_scale (`int`, *optional*, defaults to 4):
            Side of the discriminator's last feature map, before its 4x4 output convolution; 4 gives
            one logit per image. A larger value gives (N, (s - 3) ** 2) logits, as in MMagic.

    Example:

    ```python
    >>> from hfmagic import DCGANConfig, DCGANGenerator, DCGANDiscriminator
    >>> config = DCGANConfig(image_size=64)
    >>> generator, discriminator = DCGANGenerator(config), DCGANDiscriminator(config)
    ```
    """

    model_type = "dcgan"
    hub_kind: ClassVar[str] = "gan"
    mmagic_module: ClassVar[str | None] = "DCGANGenerator"
    # The classes model cards show in their usage snippets.
    card_classes: ClassVar[dict[str, str]] = {"discriminator": "DCGANDiscriminator", "pipeline": "DCGANPipeline"}

    image_size: int = 64
    num_channels: int = 3
    noise_size: int = 100
    generator_base_channels: int = 1024
    generator_input_scale: int = 4
    discriminator_base_channels: int = 128
    discriminator_output_scale: int = 4

    def __post_init__(self, **kwargs):
        check_int_fields(self)
        if self.discriminator_output_scale < 4:
            raise ValueError(
                f"discriminator_output_scale={self.discriminator_output_scale} is too small: the discriminator ends with a "
                "4x4 convolution of its last feature map, which needs a side of at least 4 (4: one logit per image)."
            )
        if self.generator_input_scale != 4:
            raise ValueError(
                f"generator_input_scale={self.generator_input_scale} is not supported: the generator's first layer is a "
                "4x4 transposed convolution of the 1x1 noise map, so its output is always 4x4. Use "
                "generator_input_scale=4 and set image_size for the output size."
            )
        for name, scale in (
            ("generator_input_scale", self.generator_input_scale),
            ("discriminator_output_scale", self.discriminator_output_scale),
        ):
            ratio = self.image_size // scale if scale > 0 else 0
            if scale <= 0 or self.image_size % scale or ratio < 2 or not math.log2(ratio).is_integer():
                raise ValueError(
                    f"image_size={self.image_size} must be {name}={scale} times a power of two (>= 2), "
                    f"e.g. image_size=64 with {name}=4."
                )
        super().__post_init__(**kwargs)


__all__ = ["DCGANConfig"]
