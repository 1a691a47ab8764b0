"""Exponential moving average of a model, as MMagic's ``ExponentialMovingAverage``.

``ema = (1 - momentum) * ema + momentum * model`` for parameters; the first update copies;
buffers (BatchNorm statistics) are copied from the model at every update (MMagic's default
``update_buffers=False``) or averaged like parameters (``update_buffers=True``).
Built on ``torch.optim.swa_utils.AveragedModel``; its ``state_dict`` (weights and the update
count) goes into accelerate checkpoints via ``accelerator.register_for_checkpointing``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

__all__ = ["ExponentialMovingAverage"]


class ExponentialMovingAverage(AveragedModel):
    """EMA copy of ``model`` (the averaged network is ``.module``).

    Args:
        model: the network to average (unwrapped: not the DDP wrapper).
        momentum: weight of the new value, MMagic's default 0.0002 (decay = 1 - momentum).
        update_buffers: average buffers too instead of copying them.
    """

    def __init__(self, model: nn.Module, momentum: float = 0.0002, update_buffers: bool = False):
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"EMA momentum must be in (0, 1], got {momentum}; MMagic's default is 0.0002.")
        super().__init__(
            model, multi_avg_fn=get_ema_multi_avg_fn(1.0 - momentum), use_buffers=update_buffers
        )
        self.momentum = momentum
        self.update_buffers = update_buffers
        self.requires_grad_(False)

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        super().update_parameters(model)
        if not self.update_buffers:
            for ema_buffer, buffer in zip(self.module.buffers(), model.buffers()):
                ema_buffer.copy_(buffer.to(ema_buffer.device))

    @property
    def num_updates(self) -> int:
        return int(self.n_averaged.item())
