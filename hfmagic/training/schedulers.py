"""Learning-rate schedules of MMagic's SR recipes, plus transformers' named schedules.

- ``cosine_restart``: MMEngine's ``CosineRestartLR`` (MSRResNet/SRCNN: periods 4 x 250k,
  restart weights 1, eta_min 1e-7).
- ``multistep``: ``torch.optim.lr_scheduler.MultiStepLR`` (EDSR: x0.5 at 200k).
- Every name of ``transformers.SchedulerType`` that needs no metric (``linear``, ``cosine``,
  ``constant_with_warmup``, ...), through ``transformers.get_scheduler``.

All schedulers are stepped once per optimisation step (not per micro-batch, not per rank).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.optim.lr_scheduler import LRScheduler, MultiStepLR

__all__ = ["CosineRestartLR", "SCHEDULER_NAMES", "get_sr_scheduler", "set_base_learning_rate"]


class CosineRestartLR(LRScheduler):
    """Cosine annealing with restarts, as MMEngine's ``CosineRestartLR`` (by iteration).

    Within period ``i`` (of ``periods[i]`` steps, starting at step ``c_i``) the learning rate is
    ``eta_min + (base_lr * restart_weights[i] - eta_min) * (1 + cos(pi * (t - c_i) / periods[i])) / 2``.
    MMEngine computes the same value recursively (equal up to float rounding). After the last
    period the learning rate stays at its last value, as in MMEngine.

    Args:
        optimizer: the wrapped optimizer.
        periods: length of each cosine cycle in steps (all > 0).
        restart_weights: peak of each cycle as a fraction of the base learning rate; one per period.
        eta_min: the floor each cycle anneals towards.
        last_epoch: index of the last step (-1 to start fresh), as in PyTorch.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        periods: Sequence[int],
        restart_weights: Sequence[float] = (1.0,),
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ):
        periods = [int(p) for p in periods]
        restart_weights = [float(w) for w in restart_weights]
        if not periods or any(p <= 0 for p in periods):
            raise ValueError(f"periods must be a non-empty list of positive step counts, got {periods}.")
        if len(restart_weights) != len(periods):
            raise ValueError(
                f"restart_weights ({len(restart_weights)} values) must have one weight per period "
                f"({len(periods)} periods), e.g. restart_weights={[1.0] * len(periods)}."
            )
        self.periods = periods
        self.restart_weights = restart_weights
        self.eta_min = float(eta_min)
        # start step of each period: [0, p0, p0 + p1, ...]
        self.period_starts = [sum(periods[:i]) for i in range(len(periods))]
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step: int, base_lr: float) -> float:
        """The learning rate at ``step`` (0-based) for a group whose base learning rate is ``base_lr``."""
        step = min(step, sum(self.periods) - 1)  # hold the last value after the final period
        index = max(i for i, start in enumerate(self.period_starts) if step >= start)
        progress = (step - self.period_starts[index]) / self.periods[index]
        eta_max = base_lr * self.restart_weights[index]
        return self.eta_min + (eta_max - self.eta_min) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def get_lr(self) -> list[float]:
        return [self.lr_at(self.last_epoch, base_lr) for base_lr in self.base_lrs]


def _transformers_scheduler_names() -> list[str]:
    from transformers import SchedulerType

    # reduce_lr_on_plateau and greedy need a metric at every step, warmup_stable_decay its own
    # phase lengths: not a fit for a plain iteration loop
    excluded = {"reduce_lr_on_plateau", "greedy", "warmup_stable_decay"}
    return [s.value for s in SchedulerType if s.value not in excluded]


# the names accepted by get_sr_scheduler (and the training script's --lr_scheduler)
SCHEDULER_NAMES = ["cosine_restart", "multistep", *_transformers_scheduler_names()]


def get_sr_scheduler(
    name: str,
    optimizer: torch.optim.Optimizer,
    *,
    num_training_steps: int,
    num_warmup_steps: int = 0,
    periods: Sequence[int] | None = None,
    restart_weights: Sequence[float] | None = None,
    eta_min: float = 0.0,
    milestones: Sequence[int] | None = None,
    gamma: float = 0.5,
) -> LRScheduler:
    """Build a schedule by name.

    Args:
        name: one of ``SCHEDULER_NAMES``.
        optimizer: the optimizer whose learning rate is scheduled.
        num_training_steps: total optimisation steps (transformers' schedules; default periods).
        num_warmup_steps: warm-up steps (transformers' schedules only).
        periods: ``cosine_restart`` cycle lengths; default one period of ``num_training_steps``.
        restart_weights: ``cosine_restart`` peak per period; default 1 for every period.
        eta_min: the floor of ``cosine_restart`` and of transformers' ``*_with_min_lr`` schedules.
        milestones: ``multistep`` steps where the learning rate is multiplied by ``gamma``.
        gamma: ``multistep`` factor.
    """
    if name == "cosine_restart":
        periods = list(periods) if periods else [num_training_steps]
        weights = list(restart_weights) if restart_weights else [1.0] * len(periods)
        return CosineRestartLR(optimizer, periods, weights, eta_min=eta_min)
    if name == "multistep":
        if not milestones:
            raise ValueError("lr_scheduler='multistep' needs milestones (e.g. --lr_milestones 200000).")
        return MultiStepLR(optimizer, milestones=list(milestones), gamma=gamma)
    if name not in SCHEDULER_NAMES:
        raise ValueError(f"Unknown lr_scheduler {name!r}; choose one of {SCHEDULER_NAMES}.")
    from transformers import get_scheduler

    specific = None
    if name.endswith("with_min_lr"):
        # as a rate of the first group's lr: transformers turns min_lr into a rate of
        # optimizer.defaults["lr"], which is not the groups' lr when they set their own
        specific = {"min_lr_rate": eta_min / optimizer.param_groups[0]["lr"]}
    return get_scheduler(
        name,
        optimizer,
        num_warmup_steps=num_warmup_steps,
        num_training_steps=num_training_steps,
        scheduler_specific_kwargs=specific,
    )


def set_base_learning_rate(scheduler: LRScheduler, learning_rate: float) -> None:
    """Give a (resumed) schedule a new peak learning rate, keeping its position: every group's base
    rate becomes ``learning_rate`` and its current rate is scaled alike (or recomputed where the
    schedule has a closed form), as if the run had used ``learning_rate`` from the start."""
    from torch.optim.lr_scheduler import LambdaLR

    groups = scheduler.optimizer.param_groups
    for group, base in zip(groups, scheduler.base_lrs):
        factor = learning_rate / base if base else 0.0
        group["initial_lr"] = learning_rate
        group["lr"] = group["lr"] * factor if base else learning_rate
    scheduler.base_lrs = [learning_rate] * len(groups)
    # closed forms: exact (eta_min included)
    if isinstance(scheduler, CosineRestartLR):
        for group in groups:
            group["lr"] = scheduler.lr_at(scheduler.last_epoch, learning_rate)
    elif isinstance(scheduler, LambdaLR):  # transformers' schedules
        for group, rate in zip(groups, scheduler.lr_lambdas):
            group["lr"] = learning_rate * rate(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in groups]
