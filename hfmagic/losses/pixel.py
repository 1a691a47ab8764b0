"""Pixel losses: MMagic's L1Loss, MSELoss and CharbonnierLoss with reduction "mean".

The SR models' ``config.loss_type`` names one of :data:`LOSSES` (``hfmagic.models.sr_base`` imports
them from here, so both import paths work).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

__all__ = ["LOSSES", "charbonnier_loss", "pixel_loss"]


def charbonnier_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """MMagic's CharbonnierLoss (mean of sqrt((pred - target)^2 + eps))."""
    return torch.sqrt((pred - target) ** 2 + eps).mean()


# The loss kinds a config may name (MMagic's pixel losses with reduction "mean").
LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": F.l1_loss,
    "mse": F.mse_loss,
    "charbonnier": charbonnier_loss,
}


def pixel_loss(kind: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The pixel loss ``kind`` (``"l1"``, ``"mse"`` or ``"charbonnier"``) as ``loss(pred, target) -> scalar``
    (mean over every element)."""
    if kind not in LOSSES:
        raise ValueError(f"Unknown pixel loss {kind!r}; choose one of {sorted(LOSSES)}.")
    return LOSSES[kind]
