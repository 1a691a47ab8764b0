"""U-Net discriminator with spectral norm: configuration."""

from __future__ import annotations

from typing import ClassVar

from ..discriminator_base import DiscriminatorConfig


class UNetDiscriminatorSNConfig(DiscriminatorConfig):
    r"""Configuration of [`UNetDiscriminatorSN`], Real-ESRGAN's U-Net discriminator with spectral
    normalisation (MMagic's `UNetDiscriminatorWithSpectralNorm`): one real/fake logit per pixel of
    images in [0, 1] whose height and width are multiples of 8.

    Args:
        in_channels (`int`, *optional*, defaults to 3):
            Channels of the scored images.
        mid_channels (`int`, *optional*, defaults to 64):
            Channels of the first convolution; 2x, 4x and 8x after the three downsamplings.
        skip_connection (`bool`, *optional*, defaults to `True`):
            Add each encoder feature map to the decoder map of the same size (as Real-ESRGAN).

    Example:

    ```python
    >>> from hfmagic import UNetDiscriminatorSN, UNetDiscriminatorSNConfig
    >>> discriminator = UNetDiscriminatorSN(UNetDiscriminatorSNConfig())
    ```
    """

    model_type = "unet_discriminator_sn"
    mmagic_module: ClassVar[str | None] = "UNetDiscriminatorWithSpectralNorm"
    card_input_shape: ClassVar[str] = "(N, {in_channels}, H, W) with H and W multiples of 8"
    card_output_shape: ClassVar[str] = "(N, 1, H, W)"

    skip_connection: bool = True


__all__ = ["UNetDiscriminatorSNConfig"]
