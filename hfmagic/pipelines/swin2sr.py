"""transformers' Swin2SR (``Swin2SRForImageSuperResolution``, model_type "swin2sr") in
:class:`~hfmagic.pipelines.SuperResolutionPipeline` and ``hfmagic upscale``.

:class:`Swin2SRAdapter` wraps the transformers model so the pipeline sees what it expects of an
hfmagic SR model (``config.upscale_factor`` / ``in_channels`` / ``out_channels``, ``pixel_values``
in [0, 1] in, ``.reconstruction`` out, ``input_multiple()``, ``receptive_field()``). The model's
weights, config and forward are transformers' own, untouched.

Input as ``Swin2SRImageProcessor`` prepares it: ``x / 255`` (``x / 65535`` for 16-bit images), then
padded at the bottom and right by symmetric reflection (the edge pixel repeated) to the next
multiple of ``window_size`` *above* the size (1 to ``window_size`` pixels, also when the size is
already a multiple; the processor's ``size_divisor`` equals ``window_size`` in the released
checkpoints); the output is cropped back to ``upscale`` times the input's size. The model
subtracts its ``mean`` buffer and multiplies by ``img_range`` itself. (The model's own padding,
``pad_and_normalize``, cannot be relied on: transformers 5.25 fails on sizes that are not
multiples of the window, so the pipeline pads before.)

Tiling. Swin2SR's shifted-window attention is local: each layer reads one window around a token,
so the receptive field is finite (:func:`swin2sr_receptive_field`: 153 LR pixels for the 6 x 6
layers, window 8 of the released x2/x4 models, whatever their upsampler; 97 for the lightweight x2), and the windows are anchored at the input's
origin. Tiles start at multiples of ``window_size`` (``input_multiple()``) with that context by
default, so tiled and whole-image outputs agree within float rounding (~1e-6, tested), at a high
price: a 256 tile reads (256 + 2 x 160)^2 pixels, 5x the work. A smaller ``tile_overlap`` (e.g. 32,
the original SwinIR/Swin2SR scripts' choice) is faster and only approximate near tile seams.
``exact=True`` is refused: its bitwise guarantee covers hfmagic's convolutional models, not
attention's matrix products.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers.modeling_outputs import ImageSuperResolutionOutput

__all__ = ["Swin2SRAdapter", "adapt_swin2sr", "is_swin2sr", "swin2sr_receptive_field"]

Region = tuple[int, int, int, int]  # y0, y1, x0, x1 (as in .tiling)


def is_swin2sr(model: object) -> bool:
    """Whether ``model`` is transformers' ``Swin2SRForImageSuperResolution`` (or a subclass)."""
    from transformers import Swin2SRForImageSuperResolution

    return isinstance(model, Swin2SRForImageSuperResolution)


@dataclass(frozen=True)
class Swin2SRAdapterConfig:
    """What the pipeline reads from an SR model's config, taken from a ``Swin2SRConfig``."""

    upscale_factor: int
    in_channels: int
    out_channels: int
    window_size: int
    model_type: str = "swin2sr"


class Swin2SRAdapter(nn.Module):
    """transformers' ``Swin2SRForImageSuperResolution`` seen as an hfmagic SR model.

    Args:
        model: the transformers model; kept as ``self.model`` (its parameters are the adapter's,
            so ``.to()``, ``.eval()`` and ``copy.deepcopy`` act on it).

    ``forward(pixel_values)``: (N, C, H, W) in [0, 1] (the pipeline pads them as the processor
    does, see :meth:`pad_input`) -> ``ImageSuperResolutionOutput`` whose ``reconstruction`` is
    (N, C_out, sH, sW), unclamped.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        if not is_swin2sr(model):
            raise TypeError(f"Swin2SRAdapter wraps a Swin2SRForImageSuperResolution, got {type(model).__name__}.")
        config = model.config
        self.model = model
        self.config = Swin2SRAdapterConfig(
            upscale_factor=int(config.upscale),
            in_channels=int(config.num_channels),
            out_channels=int(config.num_channels_out),
            window_size=int(config.window_size),
        )
        self._receptive_field: int | None = None

    def reconstruct(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [0, 1] -> (N, C_out, sH, sW): transformers' forward, ``.reconstruction``.
        Sizes that are not multiples of ``window_size`` (direct calls, e.g. ``hfmagic evaluate``;
        the pipeline pads before) are padded symmetrically to the next multiple and the output cropped."""
        height, width = pixel_values.shape[-2:]
        d, s = self.config.window_size, self.config.upscale_factor
        if height % d or width % d:
            rows = _symmetric_index(torch.arange(height + -height % d, device=pixel_values.device), height)
            cols = _symmetric_index(torch.arange(width + -width % d, device=pixel_values.device), width)
            pixel_values = pixel_values[..., rows, :][..., cols]
        out = self.model(pixel_values=pixel_values, return_dict=True).reconstruction
        return out[..., : height * s, : width * s]

    def forward(self, pixel_values: torch.Tensor, **kwargs) -> ImageSuperResolutionOutput:
        return ImageSuperResolutionOutput(reconstruction=self.reconstruct(pixel_values))

    def input_multiple(self) -> int:
        """``window_size``: tiles start at multiples of it, so that their windows are the image's."""
        return self.config.window_size

    def receptive_field(self) -> int:
        """LR context a tile needs for its output to equal the whole image's (see
        :func:`swin2sr_receptive_field`), computed once."""
        if self._receptive_field is None:
            self._receptive_field = swin2sr_receptive_field(self.model)
        return self._receptive_field

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """The size ``Swin2SRImageProcessor`` pads an image to: the next multiple of ``window_size``
        strictly above each side."""
        d = self.config.window_size
        return (height // d + 1) * d, (width // d + 1) * d

    def pad_input(
        self, read: Callable[[Region], torch.Tensor], height: int, width: int
    ) -> tuple[Callable[[Region], torch.Tensor], int, int]:
        """The tiler's hook: ``read`` (regions of a height x width image -> (1, C, h, w)) as reads of
        the image padded as the processor does (:meth:`padded_size`, symmetric), and that size."""
        padded_height, padded_width = self.padded_size(height, width)

        def padded(region: Region) -> torch.Tensor:
            y0, y1, x0, x1 = region
            if y1 <= height and x1 <= width:
                return read(region)
            rows, cols = _symmetric_index(torch.arange(y0, y1), height), _symmetric_index(torch.arange(x0, x1), width)
            ry0, ry1, cx0, cx1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
            tile = read((ry0, ry1, cx0, cx1))
            return tile[..., rows - ry0, :][..., cols - cx0]

        return padded, padded_height, padded_width


def _symmetric_index(index: torch.Tensor, size: int) -> torch.Tensor:
    """Indices past the end of an axis of ``size`` pixels mirrored as ``np.pad(mode="symmetric")``
    does (the edge pixel repeated; period ``2 * size`` for pads longer than the axis)."""
    index = index % (2 * size)
    return torch.where(index >= size, 2 * size - 1 - index, index)


def _conv_radius(module: nn.Module) -> int:
    """Sum of the (dilated) kernel radii of the Conv2d layers in ``module``: an upper bound of its
    receptive field at its own resolution, hence in LR pixels for the upsampler."""
    radius = 0
    for conv in module.modules():
        if isinstance(conv, nn.Conv2d):
            radius += max((k - 1) // 2 * d for k, d in zip(conv.kernel_size, conv.dilation))
    return radius


def swin2sr_receptive_field(model: nn.Module) -> int:
    """LR pixels of context around a tile starting at a multiple of ``window_size`` for which its
    output equals the whole image's: the dependencies of such a tile, followed back from the output
    through the upsampler's convolutions, ``conv_after_body``, each stage's residual convolution
    and its (shifted) window attention layers, and ``first_convolution``.

    A window layer (window w, shift s) makes a token depend on its whole window, the windows tiling
    the grid from ``s``: an interval [lo, hi) grows to the windows it touches. Convolutions grow it
    by their radius (an upper bound for those at HR resolution); ``pixelshuffle_aux``'s bicubic
    skip by 2. The larger of the two sides is returned.
    """
    body = model.swin2sr
    upsampler = getattr(model, "upsample", None)
    if upsampler is None:  # upsampler "" (denoising, JPEG artefacts): one convolution
        upsampler = getattr(model, "final_convolution", None)
    window = int(model.config.window_size)
    lo, hi = 0, window  # the tile's output, in LR pixels (aligned to the window)
    grow = _conv_radius(upsampler) if upsampler is not None else 0
    if model.config.upsampler == "pixelshuffle_aux":
        grow += 2  # bicubic taps of the skip connection
    grow += _conv_radius(body.conv_after_body)
    lo, hi = lo - grow, hi + grow
    for stage in reversed(body.encoder.stages):
        radius = _conv_radius(stage.conv)
        lo, hi = lo - radius, hi + radius
        for layer in reversed(stage.layers):
            w, s = int(layer.window_size), int(layer.shift_size)
            lo = math.floor((lo - s) / w) * w + s
            hi = math.ceil((hi - s) / w) * w + s
    radius = _conv_radius(body.first_convolution)
    lo, hi = lo - radius, hi + radius
    return max(-lo, hi - window)


def adapt_swin2sr(model: nn.Module, exact: bool = False) -> nn.Module:
    """``model`` wrapped in a :class:`Swin2SRAdapter` when it is transformers' Swin2SR (the
    pipeline's hook), unchanged otherwise. ``exact=True`` with Swin2SR raises ``ValueError``."""
    if not (is_swin2sr(model) or isinstance(model, Swin2SRAdapter)):
        return model
    if exact:
        raise ValueError(
            "exact=True (--exact) is not available for Swin2SR: its bitwise guarantee covers hfmagic's "
            "convolutional models, not attention's matrix products. Without it, tiles with the default "
            "tile_overlap (Swin2SR's receptive field) agree with the whole image within ~1e-6 (float)."
        )
    return model if isinstance(model, Swin2SRAdapter) else Swin2SRAdapter(model)
