"""StyleGAN2 generator and discriminator (MMagic's `StyleGAN2Generator` / `StyleGAN2Discriminator`).

Sub-module names are MMagic's, so that a checkpoint converts by renaming its equalized-lr
``weight_orig`` tensors to ``weight`` (MMagic's blur kernels are rebuilt from the config, not stored).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

from ...layers import init_module
from ..card_mixin import ModelCardMixin
from .configuration_stylegan2 import StyleGAN2Config
from .ops_stylegan2 import (
    Blur,
    EqualizedLRConv2d,
    EqualLinearActModule,
    FusedBiasLeakyReLU,
    PixelNorm,
    UpsampleUpFIRDn,
    _ConvWeight,
    _EqualizedLinear,
)

__all__ = ["StyleGAN2PreTrainedModel", "StyleGAN2Generator", "StyleGAN2Discriminator"]


# ----------------------------------------------------------------------------- generator blocks
class ModulatedConv2d(nn.Module):
    """Convolution whose weight (1, out, in, k, k), equalized-lr scaled, is modulated per sample by
    an affine map of the style (bias 1) and, with ``demodulate``, normalised to unit norm per output
    channel; ``upsample``: a stride-2 transposed convolution followed by the FIR blur."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_channels: int,
        demodulate: bool = True,
        upsample: bool = False,
        blur_kernel: Sequence[int] = (1, 3, 3, 1),
        eps: float = 1e-8,
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.demodulate, self.upsample, self.eps = demodulate, upsample, eps
        self.style_modulation = EqualLinearActModule(style_channels, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.empty(1, out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        if upsample:
            p = (len(blur_kernel) - 2) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, ((p + 1) // 2 + 1, p // 2 + 1), upsample_factor=2)
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        k, out = self.kernel_size, self.out_channels
        style = self.style_modulation(style).view(n, 1, c, 1, 1)
        weight = self.weight * self.scale * style
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + self.eps).view(n, out, 1, 1, 1)
        x = x.reshape(1, n * c, h, w)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(n * c, out, k, k)
            x = F.conv_transpose2d(x, weight, stride=2, groups=n)
            return self.blur(x.reshape(n, out, *x.shape[-2:]))
        x = F.conv2d(x, weight.reshape(n * out, c, k, k), padding=self.padding, groups=n)
        return x.view(n, out, *x.shape[-2:])


class NoiseInjection(nn.Module):
    """Adds ``weight`` (a scalar, 0 at init) times a noise map (N or 1, 1, H, W); N(0, 1) when not given."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, image: torch.Tensor, noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if noise is None:
            batch, _, height, width = image.shape
            noise = image.new_empty(batch, 1, height, width).normal_()
        noise = noise.to(image.dtype)
        return image + self.weight.to(image.dtype) * noise, noise


class ModulatedStyleConv(nn.Module):
    """Modulated conv -> noise injection -> fused bias + LeakyReLU (MMagic's ``ModulatedStyleConv``)."""

    def __init__(self, in_channels, out_channels, kernel_size, style_channels, upsample=False, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_channels, upsample=upsample, blur_kernel=blur_kernel)
        self.noise_injector = NoiseInjection()
        self.activate = FusedBiasLeakyReLU(out_channels)

    def forward(self, x, style, noise=None, add_noise: bool = True):
        out = self.conv(x, style)
        if add_noise:
            out, _ = self.noise_injector(out, noise)
        return self.activate(out)


class ModulatedToRGB(nn.Module):
    """1x1 modulated conv (no demodulation) + ``bias``, plus the FIR-upsampled previous image (skip)."""

    def __init__(self, in_channels, style_channels, out_channels=3, upsample=True, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        if upsample:
            self.upsample = UpsampleUpFIRDn(blur_kernel)
        self.conv = ModulatedConv2d(in_channels, out_channels, 1, style_channels, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def forward(self, x, style, skip=None):
        out = self.conv(x, style) + self.bias.to(x.dtype)
        if skip is not None:
            if hasattr(self, "upsample"):
                skip = self.upsample(skip)
            out = out + skip
        return out


class ConstantInput(nn.Module):
    """The learned (1, C, 4, 4) input, repeated over the batch."""

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.empty(1, channels, size, size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.input.repeat(x.shape[0], 1, 1, 1)


# ----------------------------------------------------------------------------- discriminator blocks
class ConvDownLayer(nn.Sequential):
    """[Blur (downsample)] -> equalized-lr conv (stride 2 when downsampling) -> [fused bias + LeakyReLU],
    numbered as MMagic's ``ConvDownLayer`` (an ``nn.Sequential``)."""

    def __init__(self, in_channels, out_channels, kernel_size, downsample=False, blur_kernel=(1, 3, 3, 1), activate=True):
        layers: list[nn.Module] = []
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, ((p + 1) // 2, p // 2)))
            layers.append(EqualizedLRConv2d(in_channels, out_channels, kernel_size, stride=2, padding=0))
        else:
            layers.append(EqualizedLRConv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2))
        if activate:
            layers.append(FusedBiasLeakyReLU(out_channels))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """Two convs (the second downsampling) plus a 1x1 downsampling skip, summed over sqrt(2)."""

    def __init__(self, in_channels, out_channels, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.conv1 = ConvDownLayer(in_channels, in_channels, 3, blur_kernel=blur_kernel)
        self.conv2 = ConvDownLayer(in_channels, out_channels, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = ConvDownLayer(in_channels, out_channels, 1, downsample=True, blur_kernel=blur_kernel, activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


class ModMBStddevLayer(nn.Module):
    """Minibatch stddev: appends, per group of ``group_size`` samples and ``channel_groups`` channel
    groups, the mean over (C', H, W) of the features' standard deviation across the group."""

    def __init__(self, group_size: int = 4, channel_groups: int = 1, eps: float = 1e-8):
        super().__init__()
        self.group_size, self.channel_groups, self.eps = group_size, channel_groups, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if n > self.group_size and n % self.group_size:
            raise ValueError(
                f"The discriminator's minibatch-stddev layer needs a batch of at most {self.group_size} images or "
                f"a multiple of {self.group_size} (mbstd_group_size), got {n}."
            )
        group = min(n, self.group_size)
        y = x.reshape(group, -1, self.channel_groups, c // self.channel_groups, h, w)
        y = torch.sqrt(torch.var(y, dim=0, unbiased=False) + self.eps)
        y = y.mean(dim=(2, 3, 4), keepdim=True).squeeze(2)
        return torch.cat([x, y.repeat(group, 1, h, w)], dim=1)


# ----------------------------------------------------------------------------- models
class StyleGAN2PreTrainedModel(ModelCardMixin, PreTrainedModel):
    """MMagic's init: equalized-lr weights N(0, 1) (the mapping network's N(0, 1 / lr_mlp)), style
    modulation biases 1, other biases and noise weights 0, constant input and stored noise N(0, 1)."""

    config_class = StyleGAN2Config
    base_model_prefix = "stylegan2"
    _no_split_modules: list[str] = []

    def _init_weights(self, module: nn.Module) -> None:
        def fill(tensor, fn):
            if tensor is not None and not getattr(tensor, "_is_hf_initialized", False):
                with torch.no_grad():
                    fn(tensor)

        if isinstance(module, _EqualizedLinear):
            fill(module.weight, lambda t: t.normal_(0.0, 1.0 / module.lr_mul))
        elif isinstance(module, EqualLinearActModule):
            fill(module.bias, lambda t: t.fill_(module.bias_init))
        elif isinstance(module, (ModulatedConv2d, ConstantInput)):
            fill(module.weight if isinstance(module, ModulatedConv2d) else module.input, lambda t: t.normal_())
        elif isinstance(module, _ConvWeight):  # EqualizedLRConv2d's (transformers inits each tensor with its owner)
            fill(module.weight, lambda t: t.normal_())
        elif isinstance(module, (FusedBiasLeakyReLU, ModulatedToRGB)):
            fill(module.bias, lambda t: t.zero_())
        elif isinstance(module, NoiseInjection):
            fill(module.weight, lambda t: t.zero_())
        elif isinstance(module, StyleGAN2Generator):
            for i in range(module.num_injected_noises):
                fill(getattr(module, f"injected_noise_{i}"), lambda t: t.normal_())
        elif type(module).__module__ != __name__ and not type(module).__module__.endswith("ops_stylegan2"):
            init_module(module)  # layers of a user's subclass: PyTorch's default init


class StyleGAN2Generator(StyleGAN2PreTrainedModel):
    """Noise z (N, style_channels) -> images (N, out_channels, out_size, out_size), about [-1, 1].

    The mapping network (pixel norm + ``num_mlps`` equalized-lr layers) turns z into a style w; a
    constant 4x4 input goes through modulated convolutions (one style per layer: ``num_latents`` =
    2 log2(out_size) - 2) with noise injection, and ToRGB layers sum into the image.
    """

    main_input_name = "styles"

    def __init__(self, config: StyleGAN2Config):
        super().__init__(config)
        style, blur = config.style_channels, config.blur_kernel
        self.style_channels = style
        self.log_size = int(math.log2(config.out_size))
        self.num_latents = self.log_size * 2 - 2
        self.num_injected_noises = self.num_latents - 1
        mapping: list[nn.Module] = [PixelNorm(eps=config.norm_eps)]
        mapping += [EqualLinearActModule(style, style, lr_mul=config.lr_mlp, activate=True) for _ in range(config.num_mlps)]
        self.style_mapping = nn.Sequential(*mapping)
        channels = config.channels
        self.constant_input = ConstantInput(channels(4))
        self.conv1 = ModulatedStyleConv(channels(4), channels(4), 3, style, blur_kernel=blur)
        self.to_rgb1 = ModulatedToRGB(channels(4), style, config.out_channels, upsample=False, blur_kernel=blur)
        self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList()
        in_channels = channels(4)
        for i in range(3, self.log_size + 1):
            out_channels = channels(2**i)
            self.convs.append(ModulatedStyleConv(in_channels, out_channels, 3, style, upsample=True, blur_kernel=blur))
            self.convs.append(ModulatedStyleConv(out_channels, out_channels, 3, style, blur_kernel=blur))
            self.to_rgbs.append(ModulatedToRGB(out_channels, style, config.out_channels, blur_kernel=blur))
            in_channels = out_channels
        # the noise used with randomize_noise=False (MMagic's buffers; drawn at init, saved with the weights)
        for i in range(self.num_injected_noises):
            size = 2 ** ((i + 5) // 2)
            self.register_buffer(f"injected_noise_{i}", torch.empty(1, 1, size, size))
        self._mean_latent: torch.Tensor | None = None
        self.post_init()

    # -- sampling helpers (MMagic's API)
    def sample_noise(self, num_batches: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Standard normal z (num_batches, style_channels), drawn on CPU so a seed gives the same
        images on every device."""
        return torch.randn(num_batches, self.style_channels, generator=generator)

    def make_injected_noise(self, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Fresh noise maps in ``injected_noise``'s order and shapes: (1, 1, 4, 4), then two
        (1, 1, 2^i, 2^i) per resolution 8 ... out_size; on the model's device."""
        device = self.constant_input.input.device
        sizes = [4] + [2**i for i in range(3, self.log_size + 1) for _ in range(2)]
        return [torch.randn(1, 1, s, s, generator=generator).to(device) for s in sizes]

    @torch.no_grad()
    def get_mean_latent(self, num_samples: int = 4096, bs_per_repeat: int = 1024, generator: torch.Generator | None = None) -> torch.Tensor:
        """The mean style w (1, style_channels) of ``num_samples`` mapped z ~ N(0, 1), in batches of
        ``bs_per_repeat`` (``num_samples`` must be a multiple of it)."""
        if num_samples < 1 or bs_per_repeat < 1 or num_samples % bs_per_repeat:
            raise ValueError(f"num_samples={num_samples} must be a positive multiple of bs_per_repeat={bs_per_repeat}.")
        device = self.constant_input.input.device
        total = None
        for _ in range(num_samples // bs_per_repeat):
            z = torch.randn(bs_per_repeat, self.style_channels, generator=generator).to(device)
            mean = self.style_mapping(z).mean(0, keepdim=True)
            total = mean if total is None else total + mean
        return total / float(num_samples // bs_per_repeat)

    @torch.no_grad()
    def style_mixing(
        self,
        n_source: int,
        n_target: int,
        inject_index: int = 1,
        truncation_latent: torch.Tensor | None = None,
        truncation: float = 0.7,
        generator: torch.Generator | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """MMagic's style-mixing grid as one batch: a blank (-1) tile, the ``n_source`` sources, then
        per target its image and the ``n_source`` mixes (target styles before ``inject_index``,
        source styles after): ((n_target + 1) * (n_source + 1), C, H, W)."""
        device = self.constant_input.input.device
        source = torch.randn(n_source, self.style_channels, generator=generator).to(device)
        target = torch.randn(n_target, self.style_channels, generator=generator).to(device)
        common = dict(truncation_latent=truncation_latent, truncation=truncation, **kwargs)
        source_image = self(source, **common)
        images = [torch.full((1, *source_image.shape[1:]), -1.0, device=device), source_image]
        target_image = self(target, **common)
        for i in range(n_target):
            mixed = self([target[i].unsqueeze(0).repeat(n_source, 1), source], inject_index=inject_index, **common)
            images += [target_image[i].unsqueeze(0), mixed]
        return torch.cat(images, 0)

    # -- forward
    def _styles(self, styles, num_batches: int, input_is_latent: bool, generator) -> list[torch.Tensor]:
        device = self.constant_input.input.device
        dim = self.style_channels
        if isinstance(styles, torch.Tensor):
            styles = [styles]
        elif isinstance(styles, (list, tuple)) and styles and all(isinstance(s, torch.Tensor) for s in styles):
            styles = list(styles)
        elif styles is None or callable(styles):
            if num_batches is None or num_batches < 1:
                raise ValueError("Pass `styles` (N, style_channels) or `num_batches` >= 1 to draw them.")
            if styles is None and input_is_latent:
                raise ValueError("input_is_latent=True needs the latents as `styles`.")
            mode = self.config.default_style_mode if self.training else self.config.eval_style_mode
            mix = mode == "mix" and torch.rand(1, generator=generator).item() < self.config.mix_prob
            draw = styles if callable(styles) else (lambda shape: torch.randn(shape, generator=generator))
            styles = [draw((num_batches, dim)) for _ in range(2 if mix else 1)]
        else:
            raise TypeError(f"styles must be a tensor, a list of tensors, a callable or None, got {type(styles).__name__}.")
        for s in styles:
            if s.shape[-1] != dim or s.dim() not in (2, 3):
                raise ValueError(f"styles must have shape (N, {dim}) (or (N, num_latents, {dim}) latents), got {tuple(s.shape)}.")
        param = self.constant_input.input
        return [s.to(device=param.device, dtype=param.dtype) for s in styles]

    def forward(
        self,
        styles: torch.Tensor | Sequence[torch.Tensor] | Callable | None = None,
        num_batches: int = -1,
        return_noise: bool = False,
        return_latents: bool = False,
        inject_index: int | None = None,
        truncation: float = 1.0,
        truncation_latent: torch.Tensor | None = None,
        input_is_latent: bool = False,
        injected_noise: Sequence[torch.Tensor | None] | None = None,
        add_noise: bool = True,
        randomize_noise: bool = True,
        return_latent_only: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor | dict:
        """Generate images (MMagic's arguments and semantics).

        Args:
            styles: z (N, style_channels), or w with ``input_is_latent`` (also (N, num_latents,
                style_channels) per layer); a list of two for style mixing; a callable
                ``shape -> tensor``, or None: drawn (``num_batches`` of them; mixed with probability
                ``mix_prob`` when the style mode, "mix" in training and "single" in eval by default, says so).
            num_batches: how many to draw when ``styles`` is None or a callable.
            return_noise, return_latents: return a dict ``{fake_img, latent, inject_index, noise_batch}``
                (``noise_batch``: the z list, None with ``input_is_latent``) instead of the images.
            inject_index: with two styles, the layer where the second takes over (random in
                [1, num_latents - 1] when None).
            truncation: < 1 moves each w towards ``truncation_latent`` (w_avg + t (w - w_avg)).
            truncation_latent: w_avg; None: :meth:`get_mean_latent` with a fixed seed, computed once and kept.
            input_is_latent: ``styles`` are w (the mapping network is skipped).
            injected_noise: one noise map per noise layer (``make_injected_noise``'s order and shapes;
                (N or 1, 1, H, W)); None entries draw fresh noise.
            add_noise: False: no noise injection at all.
            randomize_noise: with ``injected_noise`` None, True draws fresh noise, False uses the
                stored ``injected_noise_{i}`` buffers.
            return_latent_only: return the (N, num_latents, style_channels) latents only.
            generator: a CPU ``torch.Generator`` for the drawn z, the mixing draws and the fresh noise
                maps (reproducible on any device); None: the global RNG, as MMagic.
        Returns:
            (N, out_channels, out_size, out_size) float images (RGB after conversion from MMagic),
            about [-1, 1]; or the dict above.
        """
        styles = self._styles(styles, num_batches, input_is_latent, generator)
        noise_batch = None
        if not input_is_latent:
            noise_batch = styles
            styles = [self.style_mapping(s) for s in styles]
        if injected_noise is None:
            if not randomize_noise:
                injected_noise = [getattr(self, f"injected_noise_{i}") for i in range(self.num_injected_noises)]
            elif generator is not None:
                n = styles[0].shape[0]
                sizes = [4] + [2**i for i in range(3, self.log_size + 1) for _ in range(2)]
                device = styles[0].device
                injected_noise = [torch.randn(n, 1, s, s, generator=generator).to(device) for s in sizes]
            else:
                injected_noise = [None] * self.num_injected_noises
        elif len(injected_noise) != self.num_injected_noises:
            raise ValueError(
                f"injected_noise must hold {self.num_injected_noises} noise maps (make_injected_noise() order), got {len(injected_noise)}."
            )
        if truncation < 1:
            if truncation_latent is None:
                if self._mean_latent is None:
                    self._mean_latent = self.get_mean_latent(generator=torch.Generator().manual_seed(0))
                truncation_latent = self._mean_latent
            styles = [truncation_latent + truncation * (s - truncation_latent) for s in styles]
        if len(styles) < 2:
            inject_index = self.num_latents
            latent = styles[0].unsqueeze(1).repeat(1, inject_index, 1) if styles[0].dim() < 3 else styles[0]
        else:
            if inject_index is None:
                inject_index = int(torch.randint(1, self.num_latents, (1,), generator=generator))
            latent = torch.cat(
                [
                    styles[0].unsqueeze(1).repeat(1, inject_index, 1),
                    styles[1].unsqueeze(1).repeat(1, self.num_latents - inject_index, 1),
                ],
                1,
            )
        if return_latent_only:
            return latent

        out = self.constant_input(latent)
        out = self.conv1(out, latent[:, 0], noise=injected_noise[0], add_noise=add_noise)
        skip = self.to_rgb1(out, latent[:, 1])
        index = 1
        for up_conv, conv, noise1, noise2, to_rgb in zip(
            self.convs[::2], self.convs[1::2], injected_noise[1::2], injected_noise[2::2], self.to_rgbs
        ):
            out = up_conv(out, latent[:, index], noise=noise1, add_noise=add_noise)
            out = conv(out, latent[:, index + 1], noise=noise2, add_noise=add_noise)
            skip = to_rgb(out, latent[:, index + 2], skip)
            index += 2
        img = skip
        if return_latents or return_noise:
            return {"fake_img": img, "latent": latent, "inject_index": inject_index, "noise_batch": noise_batch}
        return img


class StyleGAN2Discriminator(StyleGAN2PreTrainedModel):
    """Images (N, out_channels, S, S) in [-1, 1], S = ``config.in_size or config.out_size`` -> logits (N, 1)."""

    main_input_name = "pixel_values"

    def __init__(self, config: StyleGAN2Config):
        super().__init__(config)
        size, blur, channels = config.discriminator_size, config.blur_kernel, config.channels
        convs: list[nn.Module] = [ConvDownLayer(config.out_channels, channels(size), 1)]
        in_channels = channels(size)
        for i in range(int(math.log2(size)), 2, -1):
            convs.append(ResBlock(in_channels, channels(2 ** (i - 1)), blur))
            in_channels = channels(2 ** (i - 1))
        self.convs = nn.Sequential(*convs)
        self.mbstd_layer = ModMBStddevLayer(config.mbstd_group_size, config.mbstd_channel_groups)
        self.final_conv = ConvDownLayer(in_channels + config.mbstd_channel_groups, channels(4), 3)
        self.final_linear = nn.Sequential(
            EqualLinearActModule(channels(4) * 4 * 4, channels(4), activate=True), EqualLinearActModule(channels(4), 1)
        )
        self.post_init()

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Score images (N, C, S, S) in [-1, 1] (N <= mbstd_group_size or a multiple of it); returns logits (N, 1)."""
        size, channels = self.config.discriminator_size, self.config.out_channels
        if not isinstance(pixel_values, torch.Tensor) or not pixel_values.is_floating_point():
            got = pixel_values.dtype if isinstance(pixel_values, torch.Tensor) else type(pixel_values).__name__
            raise TypeError(
                f"StyleGAN2Discriminator expects a float tensor of images in [-1, 1], got {got}: convert uint8 "
                "images with images.float() / 127.5 - 1."
            )
        if pixel_values.dim() != 4 or tuple(pixel_values.shape[1:]) != (channels, size, size):
            raise ValueError(
                f"StyleGAN2Discriminator expects images of shape (N, {channels}, {size}, {size}), got {tuple(pixel_values.shape)}."
            )
        x = self.mbstd_layer(self.convs(pixel_values))
        x = self.final_conv(x)
        return self.final_linear(x.view(x.shape[0], -1))
