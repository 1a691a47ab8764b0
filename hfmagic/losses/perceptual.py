"""MMagic's PerceptualLoss: L1/MSE between ImageNet-VGG features of the output and of the target, plus
an optional style term on their Gram matrices."""

from __future__ import annotations

import os

import torch
from torch import nn
from torch.nn import functional as F

from .vgg import DEFAULT_VGG_WEIGHTS, VGGFeatureExtractor, load_vgg_weights, vgg_layer_names

__all__ = ["PerceptualLoss", "gram_matrix"]

# MMagic accepts "l1" and "mse" (case-insensitive), both with reduction "mean".
_CRITERIA = {"l1": F.l1_loss, "mse": F.mse_loss}


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """MMagic's ``_gram_mat``: (N, C, H, W) -> (N, C, C) = F @ F^T / (C * H * W), F = features.view(N, C, H*W)."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat.bmm(flat.transpose(1, 2)) / (c * h * w)


def _check_layers(weights: dict, argument: str, names: list[str], vgg_type: str) -> dict[str, float]:
    if not isinstance(weights, dict) or not weights:
        raise ValueError(f"{argument} must be a non-empty dict of VGG features index -> weight, e.g. {{'34': 1.0}}; got {weights!r}.")
    checked = {}
    for key, weight in weights.items():
        text = str(key)
        if not text.isdigit() or int(text) >= len(names):
            conv_hint = ", ".join(f"'{i}' = {n}" for i, n in enumerate(names) if n.startswith("conv"))
            raise ValueError(
                f"{argument} has the key {key!r}, which is not an index of {vgg_type}.features "
                f"('0'..'{len(names) - 1}'; the convs: {conv_hint})."
            )
        checked[str(int(text))] = float(weight)
    return checked


class PerceptualLoss(nn.Module):
    """MMagic's ``PerceptualLoss`` (perceptual + style loss on ImageNet VGG features).

    ``forward(x, gt)`` returns ``(percep_loss, style_loss)``, each a scalar tensor or ``None`` when its
    weight is <= 0:

    - ``percep_loss = perceptual_weight * sum_k layer_weights[k] * criterion(phi_k(x), phi_k(gt))``
    - ``style_loss = style_weight * sum_k layer_weights_style[k] * criterion(G(phi_k(x)), G(phi_k(gt)))``

    where ``phi_k`` is the output of ``vgg.features[k]`` (torchvision's indices; a conv index gives the
    pre-ReLU output) and ``G`` is :func:`gram_matrix`. ``gt`` is detached.

    The VGG is frozen, stays in eval mode, and is not part of this module's ``state_dict`` (nor of a
    model holding it) nor of ``parameters()``: it is rebuilt from ``pretrained`` on construction.
    ``.to(device)`` / ``.half()`` move it.

    Args:
        layer_weights (`dict[str, float]`):
            VGG ``features`` index (as a string, e.g. ``"34"`` = conv5_4 of VGG19) -> weight.
        layer_weights_style (`dict[str, float]`, *optional*):
            The same for the style loss; ``None`` uses ``layer_weights``.
        vgg_type (`str`, *optional*, defaults to `"vgg19"`):
            ``"vgg11"``, ``"vgg13"``, ``"vgg16"``, ``"vgg19"`` or a ``_bn`` variant.
        use_input_norm (`bool`, *optional*, defaults to `True`):
            Normalise the (0..1) input with ImageNet's mean and std before the VGG.
        perceptual_weight (`float`, *optional*, defaults to 1.0):
            Weight of the perceptual term; <= 0 returns ``None`` for it.
        style_weight (`float`, *optional*, defaults to 1.0):
            Weight of the style term (MMagic's default; ESRGAN's recipe uses 0); <= 0 returns ``None``.
        norm_img (`bool`, *optional*, defaults to `True`):
            Map inputs from [-1, 1] to [0, 1] first, ``(x + 1) / 2`` (MMagic's default; hfmagic's SR
            models work in [0, 1], so pass ``False`` for them, as MMagic's ESRGAN config does).
        criterion (`str`, *optional*, defaults to `"l1"`):
            ``"l1"`` or ``"mse"`` (mean reduction).
        pretrained (`str` or `os.PathLike`, *optional*):
            The VGG weights: a Hub id (default ``"timm/{vgg_type}.tv_in1k"``, i.e. ``"timm/vgg19.tv_in1k"``),
            a local folder with ``model.safetensors``, or a ``.safetensors`` / ``.pth`` file in
            torchvision or timm key names (see :mod:`hfmagic.losses.vgg`).

    Example::

        >>> loss = PerceptualLoss({"34": 1.0}, style_weight=0.0, norm_img=False)  # ESRGAN's setting
        >>> percep, style = loss(sr, hr)  # sr, hr (N, 3, H, W) in [0, 1]; style is None
    """

    def __init__(
        self,
        layer_weights: dict[str, float],
        layer_weights_style: dict[str, float] | None = None,
        *,
        vgg_type: str = "vgg19",
        use_input_norm: bool = True,
        perceptual_weight: float = 1.0,
        style_weight: float = 1.0,
        norm_img: bool = True,
        criterion: str = "l1",
        pretrained: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        names = vgg_layer_names(vgg_type)
        self.layer_weights = _check_layers(layer_weights, "layer_weights", names, vgg_type)
        self.layer_weights_style = (
            self.layer_weights
            if layer_weights_style is None
            else _check_layers(layer_weights_style, "layer_weights_style", names, vgg_type)
        )
        if not isinstance(criterion, str) or criterion.lower() not in _CRITERIA:
            raise ValueError(f"Unknown criterion={criterion!r}; choose one of {sorted(_CRITERIA)}.")
        self.criterion_name = criterion.lower()
        self.criterion = _CRITERIA[self.criterion_name]
        self.vgg_type = vgg_type
        self.use_input_norm = use_input_norm
        self.perceptual_weight = float(perceptual_weight)
        self.style_weight = float(style_weight)
        self.norm_img = norm_img
        self.pretrained = os.fspath(pretrained) if pretrained is not None else DEFAULT_VGG_WEIGHTS.replace("vgg19", vgg_type)
        deepest = max(int(k) for k in (*self.layer_weights, *self.layer_weights_style))
        state = load_vgg_weights(self.pretrained)
        vgg = VGGFeatureExtractor(state, vgg_type, deepest + 1, use_input_norm, source=f"VGG weights {self.pretrained!r}")
        # Kept out of self._modules on purpose: then the VGG is in no state_dict (checkpoints of a model
        # holding this loss stay free of 80 MB of frozen weights), in no parameters() (optimizers, DDP's
        # broadcasts), and .train() cannot reach it. _apply below still moves it with .to()/.half().
        object.__setattr__(self, "_vgg", vgg)

    @property
    def vgg(self) -> VGGFeatureExtractor:
        """The frozen VGG feature extractor (``features[:deepest + 1]``)."""
        return self._vgg

    def _apply(self, fn, recurse: bool = True):
        self._vgg._apply(fn, recurse)
        return super()._apply(fn, recurse)

    def extra_repr(self) -> str:
        names = vgg_layer_names(self.vgg_type)
        layers = ", ".join(f"{k} ({names[int(k)]}): {w}" for k, w in self.layer_weights.items())
        return (
            f"{self.vgg_type} from {self.pretrained!r}, layers {{{layers}}}, perceptual_weight={self.perceptual_weight}, "
            f"style_weight={self.style_weight}, criterion={self.criterion_name!r}, norm_img={self.norm_img}, "
            f"use_input_norm={self.use_input_norm}"
        )

    def forward(self, x: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """x, gt (N, 3, H, W), in [-1, 1] with ``norm_img`` else [0, 1] -> ``(percep_loss, style_loss)``,
        scalars or ``None`` (weight <= 0). Gradients flow to ``x`` only."""
        if self.norm_img:
            x = (x + 1.0) * 0.5
            gt = (gt + 1.0) * 0.5
        wanted = set()
        if self.perceptual_weight > 0:
            wanted |= set(self.layer_weights)
        if self.style_weight > 0:
            wanted |= set(self.layer_weights_style)
        if not wanted:
            return None, None
        x_features = self._vgg(x, wanted)
        with torch.no_grad():  # the target's features need no graph: gt is detached and the VGG frozen
            gt_features = self._vgg(gt.detach(), wanted)

        percep_loss = None
        if self.perceptual_weight > 0:
            percep_loss = sum(
                self.criterion(x_features[k], gt_features[k]) * weight for k, weight in self.layer_weights.items()
            ) * self.perceptual_weight
        style_loss = None
        if self.style_weight > 0:
            style_loss = sum(
                self.criterion(gram_matrix(x_features[k]), gram_matrix(gt_features[k])) * weight
                for k, weight in self.layer_weights_style.items()
            ) * self.style_weight
        return percep_loss, style_loss
