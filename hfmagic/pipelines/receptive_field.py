"""Receptive fields of SR models, for tiling: the model's own formula when it has one, else a
NaN probe of the real network."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..models import SuperResolutionPreTrainedModel

__all__ = ["probe_receptive_field", "probe_split_receptive_fields", "receptive_field", "split_receptive_fields", "supports_split"]


def _probe_halo(run: Callable[[int, int], torch.Tensor], max_size: int, multiple: int = 1) -> int | None:
    """Grow a NaN probe until its footprint stays inside: ``run(size, centre)`` runs the network on
    inputs of ``size`` x ``size`` LR pixels with a NaN at (centre, centre) and returns its output
    (N, C, h, w), h and w proportional to ``size``. Returns the footprint's radius in LR pixels.

    For a model whose input sizes must be multiples of ``multiple`` (see ``input_multiple``), the
    probe counts in blocks of that many pixels (the NaN's block is the centre one): the radius is
    then the context that tiles starting at multiples need."""
    blocks = 17
    while blocks <= max_size:
        size, centre = blocks * multiple, blocks // 2 * multiple
        with torch.inference_mode():
            out = run(size, centre)
        per_block = out.shape[-1] // blocks  # output pixels per block of input pixels
        hit = torch.isnan(out).any(dim=1)[0]
        rows = torch.nonzero(hit.any(dim=1)).flatten() // per_block
        cols = torch.nonzero(hit.any(dim=0)).flatten() // per_block
        if rows.numel() == 0:
            return None  # the model hides NaNs (e.g. nan_to_num): nothing can be said
        lo, hi = min(rows.min().item(), cols.min().item()), max(rows.max().item(), cols.max().item())
        if lo > 0 and hi < blocks - 1:
            return max(blocks // 2 - lo, hi - blocks // 2) * multiple
        blocks = 2 * blocks - 1
    return None


def _multiple(model: SuperResolutionPreTrainedModel) -> int:
    """The model's ``input_multiple()`` (1 for models without one), checked."""
    own = getattr(model, "input_multiple", None)
    multiple = own() if callable(own) else 1
    if int(multiple) != multiple or multiple < 1:
        raise ValueError(f"{type(model).__name__}.input_multiple() must return a positive int, got {multiple!r}.")
    return int(multiple)


def _nan_probe(model: SuperResolutionPreTrainedModel, size: int, centre: int) -> torch.Tensor:
    param = next(model.parameters())
    probe = torch.zeros(1, model.config.in_channels, size, size, device=param.device, dtype=param.dtype)
    probe[..., centre, centre] = float("nan")
    return probe


def probe_receptive_field(model: SuperResolutionPreTrainedModel, max_size: int = 129) -> int | None:
    """Measure a model's receptive field (LR pixels on each side) by propagating a NaN.

    One NaN in the centre of a zero image spreads through convolutions, activations, pixel
    shuffles and interpolations to exactly the output pixels that depend on it (``0 * nan`` is
    nan, so zero weights do not hide a dependency). The probe grows up to ``max_size`` pixels;
    returns ``None`` when the NaN reaches the border even then (e.g. a global operation).
    """

    def run(size: int, centre: int) -> torch.Tensor:
        return model(pixel_values=_nan_probe(model, size, centre)).reconstruction

    return _probe_halo(run, max_size, _multiple(model))


def supports_split(model: SuperResolutionPreTrainedModel) -> bool:
    """Whether the model is ``forward_head(forward_features(x), x)`` (the base ``reconstruct``)."""
    cls, base = type(model), SuperResolutionPreTrainedModel
    return cls.reconstruct is base.reconstruct and cls.forward_features is not base.forward_features


def split_receptive_fields(model: SuperResolutionPreTrainedModel, max_size: int = 129) -> tuple[int, int] | None:
    """LR context that a split model's two stages need: ``(forward_features, forward_head)``.

    MSRResNet: ``(2B + 1, 2)``; EDSR: ``(2B + 2, 2)``, at every factor (the head's receptive field
    covers its convolutions between pixel shuffles and, for MSRResNet, the bilinear skip).
    Other split models are probed with NaNs (see :func:`probe_receptive_field`); ``None`` when the
    model is not split (see :func:`supports_split`) or a stage's field cannot be determined.
    """
    if not supports_split(model):
        return None
    own = model.split_receptive_fields()
    if own is not None:
        return own
    return probe_split_receptive_fields(model, max_size)


def probe_split_receptive_fields(model: SuperResolutionPreTrainedModel, max_size: int = 129) -> tuple[int, int] | None:
    """Measure the two stages' receptive fields of a split model with NaNs (see
    :func:`split_receptive_fields`); None when a stage's field cannot be determined."""
    multiple = _multiple(model)

    def features(size: int, centre: int) -> torch.Tensor:
        return model.forward_features(_nan_probe(model, size, centre))

    def head(size: int, centre: int) -> torch.Tensor:
        pixel_values = _nan_probe(model, size, centre)
        feats = torch.zeros_like(model.forward_features(torch.zeros_like(pixel_values)))
        stride = size // feats.shape[-1]  # 1, or the unshuffle factor of a model that has one
        feats[..., centre // stride, centre // stride] = float("nan")
        return model.forward_head(feats, pixel_values)

    feature_halo, head_halo = _probe_halo(features, max_size, multiple), _probe_halo(head, max_size, multiple)
    if feature_halo is None or head_halo is None:
        return None
    return feature_halo, head_halo


def receptive_field(model: SuperResolutionPreTrainedModel) -> int | None:
    """Context in LR pixels that an SR model needs on each side of a pixel.

    A tile overlap of at least this value makes tiled inference agree with a whole-image pass.
    Known values (B = ``num_blocks``; checked against :func:`probe_receptive_field` in the tests):

    - SRCNN: the bicubic taps plus the convolutions' radii (``k // 2``) in HR pixels, brought back
      to LR pixels: 3 for the default (9, 1, 5) kernels at x4, 4 at x3, 5 at x2.
    - MSRResNet: ``2B + 3`` at every factor (16 blocks: 35); the bilinear skip needs only 1.
    - EDSR: ``2B + 4`` at every factor (16 blocks: 36).
    - RRDBNet: ``m (15B + 4)`` with m = 4 // scale, for tiles starting at multiples of m (23 blocks, x4: 349).

    These are the models' ``receptive_field()`` methods. Other models: their own
    ``receptive_field`` (a method returning an int, or an int attribute) when it is not None,
    otherwise :func:`probe_receptive_field`; ``None`` when it cannot be determined.
    """
    own = getattr(model, "receptive_field", None)  # a method, or an int a user set
    own = own() if callable(own) else own
    if own is not None:
        return int(own)
    return probe_receptive_field(model)
