"""What hfmagic's stand-alone discriminators share (the super-resolution GANs' ``ModifiedVGG`` and
U-Net): the config fields, the input checks, PyTorch's default init (spectral norm included).

A stand-alone discriminator has a config of its own (a :class:`DiscriminatorConfig` subclass with its
own ``model_type``), unlike DCGAN's, which shares its config with its generator. Subclassing
:class:`DiscriminatorConfig` is what marks a registered architecture as a discriminator: the
registration (``hfmagic.models.register_model``), ``hfmagic convert`` (which converts an MMagic
checkpoint's ``discriminator.*`` with it) and model cards (``hub_kind = "discriminator"``) go by it.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from ..layers import init_module
from .card_mixin import ModelCardMixin
from .config_checks import check_int_fields


class DiscriminatorConfig(PretrainedConfig):
    r"""Base configuration of the stand-alone discriminators (a transformers 5 dataclass config).

    Args:
        in_channels (`int`, *optional*, defaults to 3):
            Channels of the scored images.
        mid_channels (`int`, *optional*, defaults to 64):
            Channels of the first feature maps (multiplied deeper in the network).
    """

    # What model cards say (hfmagic.hub): the Hub kind, MMagic's module with the same weights, the
    # range of the images the discriminator scores, the input and output shapes (``{field}`` is
    # filled from the config) and an image size the usage snippet can feed.
    hub_kind: ClassVar[str] = "discriminator"
    mmagic_module: ClassVar[str | None] = None
    input_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    card_input_shape: ClassVar[str] = "(N, {in_channels}, H, W)"
    card_output_shape: ClassVar[str] = "(N, 1)"
    example_image_size: ClassVar[int] = 64

    in_channels: int = 3
    mid_channels: int = 64

    def __post_init__(self, **kwargs):
        check_int_fields(self)
        super().__post_init__(**kwargs)


def _unloaded(tensor: torch.Tensor | None) -> bool:
    """A tensor to initialise: present, and not loaded from a checkpoint by transformers."""
    return tensor is not None and not getattr(tensor, "_is_hf_initialized", False)


def _init_spectral_norm(module: nn.Module) -> None:
    """PyTorch's default init of a layer wrapped in ``torch.nn.utils.spectral_norm``: its weight
    lives in ``weight_orig`` (``weight`` is recomputed from it before every forward), and the power
    iteration's vectors ``weight_u`` / ``weight_v`` start as normalised N(0, 1) draws, as
    ``spectral_norm`` draws them."""
    weight = module.weight_orig
    if _unloaded(weight):
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    bias = getattr(module, "bias", None)
    if _unloaded(bias):
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        nn.init.uniform_(bias, -bound, bound)
    for name in ("weight_u", "weight_v"):
        vector = getattr(module, name)
        if _unloaded(vector):
            vector.normal_(0.0, 1.0)
            vector.div_(vector.norm().clamp_min(1e-12))


class DiscriminatorPreTrainedModel(ModelCardMixin, PreTrainedModel):
    """Base of the stand-alone discriminators: images (N, in_channels, H, W) in
    ``config.input_range`` ([0, 1]) -> real/fake logits (no sigmoid). PyTorch's default init (as
    MMagic's and Real-ESRGAN's discriminators, which set none of their own)."""

    config_class = DiscriminatorConfig
    base_model_prefix = "discriminator"
    main_input_name = "pixel_values"
    _no_split_modules: list[str] = []

    def _init_weights(self, module: nn.Module) -> None:
        if hasattr(module, "weight_orig"):  # wrapped in torch.nn.utils.spectral_norm
            with torch.no_grad():
                _init_spectral_norm(module)
        else:
            init_module(module)

    def check_pixel_values(self, pixel_values: torch.Tensor) -> None:
        """``TypeError`` / ``ValueError`` naming the fix unless ``pixel_values`` is a float
        (N, in_channels, H, W) tensor; subclasses add their size rules."""
        low, high = type(self.config).input_range
        name = type(self).__name__
        if not isinstance(pixel_values, torch.Tensor) or not pixel_values.is_floating_point():
            got = pixel_values.dtype if isinstance(pixel_values, torch.Tensor) else type(pixel_values).__name__
            raise TypeError(
                f"{name} expects a float tensor of images in [{low:g}, {high:g}], got {got}: convert uint8 images "
                "with images.float() / 255."
            )
        channels = self.config.in_channels
        if pixel_values.dim() != 4 or pixel_values.shape[1] != channels:
            raise ValueError(f"{name} expects images of shape (N, {channels}, H, W), got {tuple(pixel_values.shape)}.")


__all__ = ["DiscriminatorConfig", "DiscriminatorPreTrainedModel"]
