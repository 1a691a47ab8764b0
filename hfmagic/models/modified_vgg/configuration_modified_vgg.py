"""ModifiedVGG discriminator configuration."""

from __future__ import annotations

from typing import ClassVar

from ..discriminator_base import DiscriminatorConfig


class ModifiedVGGConfig(DiscriminatorConfig):
    r"""Configuration of [`ModifiedVGGDiscriminator`], MMagic's `ModifiedVGG`: the VGG-style
    discriminator of SRGAN and ESRGAN, for 128x128 images in [0, 1].

    Args:
        in_channels (`int`, *optional*, defaults to 3):
            Channels of the scored images.
        mid_channels (`int`, *optional*, defaults to 64):
            Channels of the first convolution; doubled at stages 1-3 (up to 8x in the last two).

    The input size is fixed at 128x128 (`ModifiedVGGConfig.input_size`, as MMagic asserts): five
    stride-2 stages leave a 4x4 map, which `linear1` flattens.

    Example:

    ```python
    >>> from hfmagic import ModifiedVGGConfig, ModifiedVGGDiscriminator
    >>> discriminator = ModifiedVGGDiscriminator(ModifiedVGGConfig())
    ```
    """

    model_type = "modified_vgg"
    mmagic_module: ClassVar[str | None] = "ModifiedVGG"
    # The one input size: linear1 takes mid_channels * 8 * 4 * 4 features.
    input_size: ClassVar[int] = 128
    card_input_shape: ClassVar[str] = "(N, {in_channels}, 128, 128)"
    example_image_size: ClassVar[int] = 128


__all__ = ["ModifiedVGGConfig"]
