"""Training: the SR loop, the GAN loop, EMA and crash-safe checkpoints."""

from .checkpointing import (
    CheckpointableGenerator,
    TrainingDivergedError,
    check_finite,
    list_checkpoints,
    read_checkpoint_state,
    recover_folder,
    resolve_resume_checkpoint,
    save_checkpoint,
    update_checkpoint_state,
    write_folder_atomically,
)
from .cpu_threads import CPUThreadChoice, choose_cpu_threads, configure_cpu_threads
from .ema import ExponentialMovingAverage
from .gan import GAN, image_grid, train_gan_loop
from .gan_training import GANTrainingArguments, GANTrainingResult, create_gan_accelerator, train_gan
from .lazy_regularized import (
    LazyRegularizedGAN,
    ema_momentum_for_half_life,
    lazy_regularization_adam,
    path_length_penalty,
    path_lengths,
    r1_penalty,
)
from .schedulers import SCHEDULER_NAMES, CosineRestartLR, get_sr_scheduler
from .srgan import SRGAN, SRGANTrainingArguments, create_srgan_accelerator, train_srgan
from .sr import SRSampleStream, SRTrainingArguments, SRTrainingResult, StreamBatchSampler, create_accelerator, evaluate_model, release_accelerator, train_sr

__all__ = [
    "CPUThreadChoice",
    "CheckpointableGenerator",
    "CosineRestartLR",
    "ExponentialMovingAverage",
    "GAN",
    "GANTrainingArguments",
    "GANTrainingResult",
    "LazyRegularizedGAN",
    "SCHEDULER_NAMES",
    "SRGAN",
    "SRGANTrainingArguments",
    "SRSampleStream",
    "SRTrainingArguments",
    "SRTrainingResult",
    "StreamBatchSampler",
    "TrainingDivergedError",
    "check_finite",
    "choose_cpu_threads",
    "configure_cpu_threads",
    "create_accelerator",
    "create_gan_accelerator",
    "create_srgan_accelerator",
    "ema_momentum_for_half_life",
    "evaluate_model",
    "get_sr_scheduler",
    "image_grid",
    "lazy_regularization_adam",
    "list_checkpoints",
    "path_length_penalty",
    "path_lengths",
    "r1_penalty",
    "read_checkpoint_state",
    "recover_folder",
    "resolve_resume_checkpoint",
    "save_checkpoint",
    "train_gan",
    "train_gan_loop",
    "train_sr",
    "train_srgan",
    "update_checkpoint_state",
    "write_folder_atomically",
]
