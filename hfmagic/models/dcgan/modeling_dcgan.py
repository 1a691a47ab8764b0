"""DCGAN generator and discriminator (MMagic's `DCGANGenerator` / `DCGANDiscriminator`)."""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import PreTrainedModel

from ...layers import init_module
from ..card_mixin import ModelCardMixin
from .configuration_dcgan import DCGANConfig


class ConvBlock(nn.Module):
    """Conv (or transposed conv) + optional BatchNorm + optional activation, named like mmcv's
    ConvModule (``conv``, ``bn``) so that state-dict keys match MMagic's."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        padding: int,
        transposed: bool,
        norm: bool,
        activation: nn.Module | None,
    ):
        super().__init__()
        conv_cls = nn.ConvTranspose2d if transposed else nn.Conv2d
        # mmcv's bias="auto": no bias when a norm layer follows.
        self.conv = conv_cls(in_channels, out_channels, kernel_size, stride, padding, bias=not norm)
        self.bn = nn.BatchNorm2d(out_channels) if norm else None
        self.activate = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.activate is not None:
            x = self.activate(x)
        return x


class DCGANPreTrainedModel(ModelCardMixin, PreTrainedModel):
    """DCGAN init: conv weights N(0, 0.02) and bias 0; BatchNorm weight N(0, 1) (sic, MMagic) and bias 0."""

    config_class = DCGANConfig
    base_model_prefix = "dcgan"
    _no_split_modules: list[str] = []

    def _init_weights(self, module: nn.Module) -> None:
        def fill(tensor, fn):
            if tensor is not None and not getattr(tensor, "_is_hf_initialized", False):
                with torch.no_grad():
                    fn(tensor)

        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            fill(module.weight, lambda t: t.normal_(0.0, 0.02))
            fill(module.bias, lambda t: t.zero_())
        elif isinstance(module, nn.BatchNorm2d):
            fill(module.weight, lambda t: t.normal_(0.0, 1.0))
            fill(module.bias, lambda t: t.zero_())
            fill(module.running_mean, lambda t: t.zero_())
            fill(module.running_var, lambda t: t.fill_(1.0))
            fill(module.num_batches_tracked, lambda t: t.zero_())
        else:  # layers of a user's subclass: PyTorch's default init (hfmagic.layers.init_module)
            init_module(module)


class DCGANGenerator(DCGANPreTrainedModel):
    """Noise (N, noise_size) -> images (N, num_channels, image_size, image_size) in [-1, 1]."""

    main_input_name = "noise"

    def __init__(self, config: DCGANConfig):
        super().__init__(config)
        channels = config.generator_base_channels
        self.noise2feat = ConvBlock(config.noise_size, channels, 4, 1, 0, True, True, nn.ReLU(inplace=True))
        num_upsamples = int(math.log2(config.image_size // config.generator_input_scale))
        blocks = []
        for _ in range(num_upsamples - 1):
            blocks.append(ConvBlock(channels, channels // 2, 4, 2, 1, True, True, nn.ReLU(inplace=True)))
            channels //= 2
        self.upsampling = nn.Sequential(*blocks)
        self.output_layer = ConvBlock(channels, config.num_channels, 4, 2, 1, True, False, nn.Tanh())
        self.post_init()

    def sample_noise(self, num_batches: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Standard normal noise (num_batches, noise_size); drawn on CPU so a seed gives the same
        images on every device."""
        return torch.randn(num_batches, self.config.noise_size, generator=generator)

    def forward(
        self,
        noise: torch.Tensor | None = None,
        num_batches: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Generate images.

        Args:
            noise: (N, noise_size) or (N, noise_size, 1, 1); drawn from N(0, 1) when omitted.
            num_batches: how many images to draw when ``noise`` is omitted.
            generator: optional ``torch.Generator`` (on CPU) for reproducible noise.
        Returns:
            (N, num_channels, image_size, image_size) images in [-1, 1].
        """
        if noise is None:
            if not num_batches or num_batches < 1:
                raise ValueError("Pass either `noise` of shape (N, noise_size) or `num_batches` >= 1.")
            noise = self.sample_noise(num_batches, generator)
        if noise.dim() == 2:
            noise = noise[:, :, None, None]
        if noise.dim() != 4 or noise.shape[1] != self.config.noise_size or noise.shape[2:] != (1, 1):
            raise ValueError(
                f"noise must have shape (N, {self.config.noise_size}) or (N, {self.config.noise_size}, 1, 1), "
                f"got {tuple(noise.shape)}."
            )
        param = self.output_layer.conv.weight
        x = self.noise2feat(noise.to(device=param.device, dtype=param.dtype))
        return self.output_layer(self.upsampling(x))


class DCGANDiscriminator(DCGANPreTrainedModel):
    """Images (N, num_channels, image_size, image_size) in [-1, 1] -> logits (N, 1)."""

    main_input_name = "pixel_values"

    def __init__(self, config: DCGANConfig):
        super().__init__(config)
        num_downsamples = int(math.log2(config.image_size // config.discriminator_output_scale))
        in_ch, out_ch = config.num_channels, config.discriminator_base_channels
        blocks = []
        for i in range(num_downsamples):
            # LeakyReLU with PyTorch's default slope 0.01, as MMagic (not the paper's 0.2).
            blocks.append(ConvBlock(in_ch, out_ch, 4, 2, 1, False, i > 0, nn.LeakyReLU(inplace=True)))
            in_ch, out_ch = out_ch, out_ch * 2
        self.downsamples = nn.Sequential(*blocks)
        self.output_layer = ConvBlock(in_ch, 1, 4, 1, 0, False, False, None)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Score images (N, C, S, S) in [-1, 1]; returns logits (N, 1)."""
        size = self.config.image_size
        if not isinstance(pixel_values, torch.Tensor) or not pixel_values.is_floating_point():
            got = pixel_values.dtype if isinstance(pixel_values, torch.Tensor) else type(pixel_values).__name__
            raise TypeError(
                f"DCGANDiscriminator expects a float tensor of images in [-1, 1], got {got}: convert uint8 "
                "images with images.float() / 127.5 - 1."
            )
        if pixel_values.dim() != 4 or tuple(pixel_values.shape[1:]) != (self.config.num_channels, size, size):
            raise ValueError(
                f"DCGANDiscriminator expects images of shape (N, {self.config.num_channels}, {size}, {size}), "
                f"got {tuple(pixel_values.shape)}."
            )
        x = self.output_layer(self.downsamples(pixel_values))
        return x.view(x.shape[0], -1)


__all__ = ["DCGANPreTrainedModel", "DCGANGenerator", "DCGANDiscriminator"]
