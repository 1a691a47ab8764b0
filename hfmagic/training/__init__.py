"""Training: the SR loop, the GAN loop, EMA and crash-safe checkpoints."""

from .checkpointing import (
    CheckpointableGenerator,
    TrainingDivergedError,
    check_finite,
    list_checkpoints,
    read_checkpoint_state,
    resolve_resume_checkpoint,
    save_checkpoint,
)
from .ema import ExponentialMovingAverage

__all__ = [
    "CheckpointableGenerator",
    "ExponentialMovingAverage",
    "TrainingDivergedError",
    "check_finite",
    "list_checkpoints",
    "read_checkpoint_state",
    "resolve_resume_checkpoint",
    "save_checkpoint",
]
