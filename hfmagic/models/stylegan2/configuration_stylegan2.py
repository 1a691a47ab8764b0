"""StyleGAN2 configuration (shared by the generator and the discriminator)."""

from __future__ import annotations

import math
from typing import ClassVar

from transformers import PretrainedConfig

from ..config_checks import check_int_fields


class StyleGAN2Config(PretrainedConfig):
    r"""Configuration of [`StyleGAN2Generator`] and [`StyleGAN2Discriminator`] (Karras et al. 2020,
    "config-f"), with MMagic's defaults (`StyleGAN2Generator` / `StyleGAN2Discriminator`).

    Feature widths follow MMagic's table: `max_channels` at 4x4 to 32x32, then
    `16384 * channel_multiplier // resolution` (256 * multiplier at 64x64, 128 * multiplier at
    128x128, ...).

    Args:
        out_size (`int`, *optional*, defaults to 256):
            Side of the generated square images; a power of two >= 4.
        style_channels (`int`, *optional*, defaults to 512):
            Length of the noise (z) and style (w) vectors.
        out_channels (`int`, *optional*, defaults to 3):
            Image channels (3 for RGB).
        num_mlps (`int`, *optional*, defaults to 8):
            Layers of the mapping network (z -> w).
        channel_multiplier (`int`, *optional*, defaults to 2):
            Width multiplier of the 64x64 and larger stages (2: "config-f").
        max_channels (`int`, *optional*, defaults to 512):
            Width of the 4x4 to 32x32 stages (512 in MMagic; smaller values make test-sized models).
        blur_kernel (`list[int]`, *optional*, defaults to `[1, 3, 3, 1]`):
            1-D taps (an even number) of the FIR filter used when resampling (its normalised outer product).
        lr_mlp (`float`, *optional*, defaults to 0.01):
            Learning-rate multiplier of the mapping network (equalized learning rate).
        norm_eps (`float`, *optional*, defaults to 1e-06):
            Epsilon of the pixel norm applied to z.
        default_style_mode (`str`, *optional*, defaults to `"mix"`):
            Style mode when the generator draws its own noise in training: "mix" (two styles with
            probability `mix_prob`) or "single".
        eval_style_mode (`str`, *optional*, defaults to `"single"`):
            The same in eval mode.
        mix_prob (`float`, *optional*, defaults to 0.9):
            Probability of style mixing in "mix" mode.
        in_size (`int`, *optional*, defaults to `None`):
            Side of the images the discriminator scores; `None`: `out_size`.
        mbstd_group_size (`int`, *optional*, defaults to 4):
            Group size of the discriminator's minibatch-stddev layer (a batch larger than it must be
            a multiple of it).
        mbstd_channel_groups (`int`, *optional*, defaults to 1):
            Channel groups of the minibatch-stddev layer (MMagic's `channel_groups`): one extra
            feature map per group; it must divide `max_channels`.

    Example:

    ```python
    >>> from hfmagic import StyleGAN2Config, StyleGAN2Generator, StyleGAN2Discriminator
    >>> config = StyleGAN2Config(out_size=256)
    >>> generator, discriminator = StyleGAN2Generator(config), StyleGAN2Discriminator(config)
    ```
    """

    model_type = "stylegan2"
    hub_kind: ClassVar[str] = "gan"
    mmagic_module: ClassVar[str | None] = "StyleGAN2Generator"
    card_classes: ClassVar[dict[str, str]] = {"discriminator": "StyleGAN2Discriminator", "pipeline": "StyleGAN2Pipeline"}

    out_size: int = 256
    style_channels: int = 512
    out_channels: int = 3
    num_mlps: int = 8
    channel_multiplier: int = 2
    max_channels: int = 512
    blur_kernel: list[int] | tuple[int, ...] = (1, 3, 3, 1)
    lr_mlp: float = 0.01
    norm_eps: float = 1e-6
    default_style_mode: str = "mix"
    eval_style_mode: str = "single"
    mix_prob: float = 0.9
    in_size: int | None = None
    mbstd_group_size: int = 4
    mbstd_channel_groups: int = 1

    def __post_init__(self, **kwargs):
        check_int_fields(self)
        self.blur_kernel = list(self.blur_kernel)
        for name in ("out_size", "in_size"):
            size = getattr(self, name)
            if size is None and name == "in_size":
                continue
            if not isinstance(size, int) or size < 4 or not math.log2(size).is_integer():
                raise ValueError(f"{name}={size} must be a power of two >= 4 (e.g. 256; MMagic's LSUN car 384x512 model is out_size=512).")
        for name in ("default_style_mode", "eval_style_mode"):
            if getattr(self, name) not in ("mix", "single"):
                raise ValueError(f"{name}={getattr(self, name)!r} must be 'mix' or 'single'.")
        if not 0.0 <= self.mix_prob <= 1.0:
            raise ValueError(f"mix_prob={self.mix_prob} must be in [0, 1].")
        if len(self.blur_kernel) < 2 or len(self.blur_kernel) % 2 or sum(self.blur_kernel) == 0:
            # an odd number of taps gives MMagic's blur layers uneven padding (non-square feature maps)
            raise ValueError(f"blur_kernel={self.blur_kernel} must hold an even number of taps with a non-zero sum, e.g. [1, 3, 3, 1].")
        if self.lr_mlp <= 0:
            raise ValueError(f"lr_mlp={self.lr_mlp} must be > 0 (MMagic: 0.01).")
        if self.max_channels % self.mbstd_channel_groups:
            raise ValueError(
                f"mbstd_channel_groups={self.mbstd_channel_groups} must divide the discriminator's last width "
                f"max_channels={self.max_channels}."
            )
        super().__post_init__(**kwargs)

    # The names hfmagic's GAN tools (model cards, the GAN loop) read, as DCGANConfig's fields.
    @property
    def image_size(self) -> int:
        """The generated image side (`out_size`)."""
        return self.out_size

    @property
    def num_channels(self) -> int:
        """Image channels (`out_channels`)."""
        return self.out_channels

    @property
    def noise_size(self) -> int:
        """Length of the generator's noise z (`style_channels`)."""
        return self.style_channels

    @property
    def discriminator_size(self) -> int:
        """The side of the images the discriminator scores (`in_size`, else `out_size`)."""
        return self.in_size or self.out_size

    def channels(self, resolution: int) -> int:
        """Feature width at ``resolution`` (MMagic's table)."""
        return self.max_channels if resolution <= 32 else 16384 * self.channel_multiplier // resolution


__all__ = ["StyleGAN2Config"]
