"""One readable super-resolution training loop on Accelerate, for any ``SuperResolutionPreTrainedModel``.

```python
from hfmagic import MSRResNet, MSRResNetConfig
from hfmagic.data.sr_dataset import build_sr_dataset
from hfmagic.training import SRTrainingArguments, train_sr

model = MSRResNet(MSRResNetConfig(upscale_factor=4))
data = build_sr_dataset("path/to/images", scale=4, gt_patch_size=128)
train_sr(model, data, SRTrainingArguments(output_dir="out", max_train_steps=1000))
```

What the loop does, in order (as diffusers' ``train_unconditional.py``): Accelerator -> EMA ->
optimizer (Adam) -> data -> LR schedule -> one ``accelerator.prepare`` -> trackers -> resume -> loop.
Updates run inside ``accelerator.accumulate``; the step count, the schedule, the EMA, validation and
checkpoints advance once per optimisation step (``accelerator.sync_gradients``).

Exact resume and multi-process determinism come from the data order, not from RNG states: the
training data is an endless stream of epochs (a seeded permutation per epoch); stream position
``p`` always gives the same augmented pair, because the dataset's transform runs with torch's (and
numpy's and python's) RNG seeded from ``(seed, p)``. Micro-batch ``j`` is stream positions
``[j*B*W, (j+1)*B*W)`` split in rank order (B per rank, W ranks), so W ranks with batch B see the same
samples as one process with batch B*W, and a resumed run at step k starts at micro-batch
``k * gradient_accumulation_steps`` with the same samples an uninterrupted run would see.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from ..logging_utils import ACCELERATE_CHECKPOINT_LOGGERS, format_metrics, progress_bar, quiet_loggers
from .checkpointing import (
    check_finite,
    read_checkpoint_state,
    resolve_resume_checkpoint,
    save_checkpoint,
    update_checkpoint_state,
)
from .cpu_threads import configure_cpu_threads
from .ema import ExponentialMovingAverage
from .run import (
    BEST_DIR,
    FINAL_DIR,
    create_hub_repo,
    init_trackers,
    log_images,
    push_final,
    read_best,
    resolve_report_to,
    restore_learning_rates,
    save_best,
    save_final,
    start_run,
)
from .schedulers import get_sr_scheduler

__all__ = [
    "SRTrainingArguments",
    "SRTrainingResult",
    "SRSampleStream",
    "StreamBatchSampler",
    "create_accelerator",
    "evaluate_model",
    "release_accelerator",
    "train_sr",
]

logger = logging.getLogger(__name__)



@dataclass
class SRTrainingArguments:
    """Settings of :func:`train_sr`. The defaults are MMagic's MSRResNet/SRCNN x4 recipe (batch 16,
    Adam 2e-4 (0.9, 0.999), cosine restart 4 x 250k to 1e-7, 1M steps, validation and checkpoints
    every 5k); the loss is the model's own (``config.loss_type``, L1 by default).

    Args:
        output_dir: run folder: ``checkpoint-<step>/``, ``best/`` and ``final/`` models, ``logs/``.
        train_batch_size: samples per process per micro-batch.
        max_train_steps: optimisation steps to run in total (a resumed run continues to this).
        learning_rate: peak learning rate of Adam.
        adam_beta1, adam_beta2, adam_epsilon, adam_weight_decay: Adam's settings.
        lr_scheduler: a name of ``hfmagic.training.schedulers.SCHEDULER_NAMES``.
        lr_warmup_steps: warm-up steps (transformers' schedules).
        lr_periods: ``cosine_restart`` cycle lengths; None = 4 equal cycles over ``max_train_steps``.
        lr_restart_weights: ``cosine_restart`` peak of each cycle (None = 1 for each).
        lr_eta_min: floor of ``cosine_restart`` (and of transformers' ``*_with_min_lr``).
        lr_milestones: ``multistep`` steps where the learning rate is multiplied by ``lr_gamma``.
        lr_gamma: ``multistep`` factor.
        gradient_accumulation_steps: micro-batches per optimisation step.
        mixed_precision: ``"no"``, ``"fp16"`` or ``"bf16"``; None takes ``accelerate launch``'s setting.
        max_grad_norm: clip the gradient norm to this (None: no clipping).
        use_ema: keep an EMA copy of the model (buffers copied, MMagic's default) and save it.
        ema_momentum: weight of the new weights in the EMA (MMagic's SR configs use 0.001).
        ema_update_buffers: average buffers too instead of copying them.
        validation_steps: validate every this many steps (0: only at the end).
        checkpointing_steps: save a resumable checkpoint every this many steps (0: never).
        checkpoints_total_limit: keep at most this many checkpoints.
        resume_from_checkpoint: ``"latest"`` or a checkpoint path/name.
        report_to: an accelerate tracker (``"tensorboard"``, ``"wandb"``, ``"trackio"``, ...), None, or
            ``"auto"``: tensorboard when installed, else none with a warning (``run.resolve_report_to``).
            At each validation the trackers that take images (tensorboard, wandb, trackio) also get
            ``val/sample``: bicubic | model | ground truth on a crop of the first validation image.
        logging_dir: tracker folder, relative to ``output_dir``.
        tracker_project_name: run name given to the tracker.
        seed: seeds the data order, the augmentation and ``accelerate.utils.set_seed``.
        dataloader_num_workers: DataLoader worker processes (results do not depend on it). The
            default 2 keeps decoding and the bicubic degradation off the training threads (in the
            main process they ran at 3.5 pairs/s against 21.6 in a one-thread worker, measured on 2
            CPU cores); 0 runs them in the main process.
        num_threads: torch threads of each process on CPU; None: the cores available to the process
            divided by the local processes, unless ``OMP_NUM_THREADS`` was set by the user
            (``accelerate launch``'s default of 1 is replaced; see ``hfmagic.training.cpu_threads``).
        crop_border: pixels cropped from each side before PSNR/SSIM (None: the scale).
        y_channel: validation metrics on the Y channel instead of RGB.
        push_to_hub: upload ``final/`` (model, config, card; no checkpoints or logs) at the end.
        hub_model_id: the repo to push to (default: the name of ``output_dir``).
        hub_token: token for the push (default: the logged-in one).
        hub_private: create the repo private.
        dataset_names: Hub ids of the training data (the card's YAML ``datasets``, with links).
        training_data: how the card names training data that is not on the Hub (e.g. a local
            folder's name); with ``dataset_names``, it goes into the card's title.
        license: the license the card declares for the trained weights (a Hub license id; None:
            none declared). Apache-2.0, hfmagic's own, by default; the choice is yours, and the
            training data's terms may restrict it (DIV2K, for one, is for academic research only).
    """

    output_dir: str = "sr-model"
    train_batch_size: int = 16
    max_train_steps: int = 1_000_000
    learning_rate: float = 2e-4
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    adam_weight_decay: float = 0.0
    lr_scheduler: str = "cosine_restart"
    lr_warmup_steps: int = 0
    lr_periods: list[int] | None = None
    lr_restart_weights: list[float] | None = None
    lr_eta_min: float = 1e-7
    lr_milestones: list[int] | None = None
    lr_gamma: float = 0.5
    gradient_accumulation_steps: int = 1
    mixed_precision: str | None = "no"
    max_grad_norm: float | None = None
    use_ema: bool = False
    ema_momentum: float = 0.001
    ema_update_buffers: bool = False
    validation_steps: int = 5000
    checkpointing_steps: int = 5000
    checkpoints_total_limit: int | None = None
    resume_from_checkpoint: str | None = None
    report_to: str | None = None
    logging_dir: str = "logs"
    tracker_project_name: str = "train_sr"
    seed: int = 0
    dataloader_num_workers: int = 2
    num_threads: int | None = None
    crop_border: int | None = None
    y_channel: bool = False
    push_to_hub: bool = False
    hub_model_id: str | None = None
    hub_token: str | None = field(default=None, repr=False)
    hub_private: bool | None = None
    dataset_names: list[str] | None = None
    training_data: str | None = None
    license: str | None = "apache-2.0"

    def __post_init__(self):
        positive = ("train_batch_size", "max_train_steps", "gradient_accumulation_steps")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        for name in ("validation_steps", "checkpointing_steps", "dataloader_num_workers", "lr_warmup_steps"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}.")
        if self.mixed_precision not in (None, "no", "fp16", "bf16"):
            raise ValueError(f"mixed_precision must be 'no', 'fp16' or 'bf16' (None: accelerate's config), got {self.mixed_precision!r}.")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 (None: the process's share of the CPU cores), got {self.num_threads}.")
        if self.checkpoints_total_limit is not None and self.checkpoints_total_limit < 1:
            raise ValueError(f"checkpoints_total_limit must be >= 1 (None keeps every checkpoint), got {self.checkpoints_total_limit}.")
        ignored = {
            "lr_warmup_steps": self.lr_warmup_steps and self.lr_scheduler in ("cosine_restart", "multistep"),
            "lr_periods": self.lr_periods and self.lr_scheduler != "cosine_restart",
            "lr_restart_weights": self.lr_restart_weights and self.lr_scheduler != "cosine_restart",
            "lr_milestones": self.lr_milestones and self.lr_scheduler != "multistep",
        }
        for name in (name for name, unused in ignored.items() if unused):
            warnings.warn(f"{name} does not apply to lr_scheduler={self.lr_scheduler!r} and is ignored.", stacklevel=3)
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be > 0 (or None for no clipping), got {self.max_grad_norm}.")
        self.report_to = resolve_report_to(self.report_to)

    def to_json_dict(self) -> dict:
        """The settings as JSON-serialisable values (the hub token left out)."""
        values = asdict(self)
        values.pop("hub_token", None)
        return values


@dataclass
class SRTrainingResult:
    """What :func:`train_sr` returns (on every rank; metrics are filled on the main process)."""

    global_step: int
    final_dir: Path
    best_dir: Path | None = None
    best_metrics: dict[str, dict[str, float]] | None = None
    final_metrics: dict[str, dict[str, float]] | None = None
    samples_per_second: float | None = None
    hub_url: str | None = None


# --------------------------------------------------------------------------- deterministic data


def _derive_seed(*values: int) -> int:
    """A well-mixed 63-bit seed from integers (numpy's SeedSequence)."""
    state = np.random.SeedSequence([int(v) for v in values]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


@contextlib.contextmanager
def _seeded_rngs(seed: int):
    """Run a block with torch's CPU RNG, numpy's and python's global RNGs seeded, then restore them."""
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        # the CPU generator only: torch.manual_seed would also reseed (and not restore) CUDA's
        torch.default_generator.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


class SRSampleStream(Dataset):
    """An endless stream of shuffled epochs over ``dataset``; item ``p`` is stream position ``p``.

    Epoch ``e = p // N`` visits the N samples in a permutation seeded from ``(seed, e)``; the sample's
    transform (random crop, flips) runs with the global RNGs seeded from ``(seed, p)``. So an item
    depends only on ``(seed, p)``: not on the worker, the rank, or whether the run was resumed.

    Args:
        dataset: a map-style dataset whose items are dicts with ``pixel_values`` (3, h, w) and
            ``labels`` (3, h*s, w*s), e.g. ``build_sr_dataset(...)`` (built without its own ``seed``,
            so that its crops draw from the RNG seeded here).
        seed: the run's seed.
    """

    def __init__(self, dataset: Any, seed: int):
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise TypeError(
                f"The training data must be a map-style dataset (with __len__ and __getitem__), got "
                f"{type(dataset).__name__}; an IterableDataset cannot be resumed exactly: load it without streaming."
            )
        if len(dataset) == 0:
            raise ValueError("The training dataset is empty.")
        transform = getattr(dataset, "_format_kwargs", {}).get("transform")  # datasets' with_transform
        if getattr(transform, "seed", None) is not None:
            warnings.warn(
                "The training dataset's transform has its own seed (build_sr_dataset(seed=...)): its crops then "
                "depend on the worker and are not restored on resume. Build it without seed; train_sr seeds "
                "every sample from (seed, position).",
                stacklevel=3,
            )
        self.dataset = dataset
        self.seed = int(seed)
        self.num_samples = len(dataset)
        self._cached_epoch: tuple[int, torch.Tensor] | None = None

    def __len__(self) -> int:
        # One epoch; positions past it are valid too (the stream is endless).
        return self.num_samples

    def sample_index(self, position: int) -> int:
        """Index into ``dataset`` of stream position ``position``."""
        epoch, offset = divmod(int(position), self.num_samples)
        if self._cached_epoch is None or self._cached_epoch[0] != epoch:
            generator = torch.Generator().manual_seed(_derive_seed(self.seed, 0, epoch))
            self._cached_epoch = (epoch, torch.randperm(self.num_samples, generator=generator))
        return int(self._cached_epoch[1][offset])

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        index = self.sample_index(position)
        with _seeded_rngs(_derive_seed(self.seed, 1, position)):
            item = self.dataset[index]
        return {key: torch.as_tensor(np.asarray(item[key]) if not torch.is_tensor(item[key]) else item[key]) for key in ("pixel_values", "labels")}


class StreamBatchSampler(Sampler[list[int]]):
    """Micro-batches of stream positions for one rank.

    Micro-batch ``j`` of the run is positions ``[j*B*W, (j+1)*B*W)``; rank ``r`` takes
    ``[j*B*W + r*B, j*B*W + (r+1)*B)``. Yields micro-batches ``start, ..., start + num_batches - 1``.
    """

    def __init__(self, batch_size: int, num_batches: int, *, start: int = 0, rank: int = 0, world_size: int = 1):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}.")
        self.batch_size = batch_size
        self.num_batches = max(0, int(num_batches))
        self.start = int(start)
        self.rank = rank
        self.world_size = world_size

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self):
        global_batch = self.batch_size * self.world_size
        for j in range(self.start, self.start + self.num_batches):
            first = j * global_batch + self.rank * self.batch_size
            yield list(range(first, first + self.batch_size))


# --------------------------------------------------------------------------- evaluation


def evaluate_model(
    model: torch.nn.Module,
    eval_sets: dict[str, Any],
    *,
    crop_border: int | None = None,
    y_channel: bool = False,
) -> dict[str, dict[str, float]]:
    """PSNR/SSIM of ``model`` on each evaluation set, MMagic's way (``hfmagic.evaluation.evaluate_sr``):
    ``{set: {"psnr": dB, "ssim": x, "bicubic_psnr": dB, "bicubic_ssim": x, "num_images": n}}``.

    ``eval_sets`` maps a name to ``hfmagic.data.load_eval_set(...)`` (or any list of
    (image name, LR uint8 HWC, HR uint8 HWC) triples).
    """
    from ..evaluation import evaluate_sr

    results = evaluate_sr(model, eval_sets, crop_border=crop_border, y_channel=y_channel)
    return {name: {key: float(value) for key, value in values.items() if isinstance(value, (int, float))} for name, values in results.items()}


SAMPLE_LR_SIZE = 48  # LR pixels per side of the validation sample crop: a constant, small cost per validation


class _ValidationSample:
    """``bicubic | model | ground truth`` on a centre crop (at most ``SAMPLE_LR_SIZE`` LR pixels a side)
    of the first image of the first validation set, for the trackers: the crop, its MATLAB-bicubic
    upscaling and the HR crop are made once; each validation runs the model on the crop only."""

    def __init__(self, eval_sets: dict[str, Any], scale: int):
        from ..data.imresize import imresize

        set_name, pairs = next(iter(eval_sets.items()))
        image_name, lr, hr = next(iter(pairs))
        lr, hr = np.asarray(lr), np.asarray(hr)
        size_h, size_w = min(SAMPLE_LR_SIZE, lr.shape[0]), min(SAMPLE_LR_SIZE, lr.shape[1])
        top, left = (lr.shape[0] - size_h) // 2, (lr.shape[1] - size_w) // 2
        self.lr = np.ascontiguousarray(lr[top : top + size_h, left : left + size_w])
        peak = 65535.0 if lr.dtype == np.uint16 else 255.0  # 16-bit images are shown as 8-bit
        self.bicubic = _display(imresize(self.lr, scale), peak)
        self.hr = _display(hr[top * scale : (top + size_h) * scale, left * scale : (left + size_w) * scale], peak)
        self.caption = f"{set_name}/{image_name}: bicubic | model | ground truth"

    def image(self, model: torch.nn.Module) -> Image.Image:
        """The three panels side by side, (h*s, 3*w*s) RGB, with ``model``'s output in the middle."""
        from ..evaluation import upscale_image

        was_training = model.training
        model.eval()
        try:
            output = _display(upscale_image(model, self.lr), 255.0)  # uint8 (sh, sw, C)
        finally:
            model.train(was_training)
        return Image.fromarray(np.concatenate([self.bicubic, output, self.hr], axis=1))


def _display(image: np.ndarray, peak: float) -> np.ndarray:
    """(H, W, C) values in [0, peak] -> uint8 RGB (H, W, 3) for a tracker (gray repeated, alpha dropped)."""
    image = np.clip(np.rint(image.astype(np.float64) * (255.0 / peak)), 0, 255).astype(np.uint8)
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]


def _as_device_data(train_dataset: Any, scale: int, device: torch.device):
    """``train_dataset`` moved to the training device if it is a ``DeviceSRData``, else None."""
    from ..data.gpu_pipeline import DeviceSRData

    if not isinstance(train_dataset, DeviceSRData):
        return None
    if train_dataset.scale != scale:
        raise ValueError(
            f"The DeviceSRData makes x{train_dataset.scale} pairs but the model upscales x{scale}; "
            f"build it with scale={scale}."
        )
    return train_dataset.to(device)


def _check_eval_sets(eval_sets: dict[str, Any], scale: int, crop_border: int) -> None:
    """Fail before training, not at the first validation, on images SSIM cannot score."""
    need = 11 + 2 * crop_border  # SSIM's 11x11 window after cropping crop_border pixels per side
    small = []
    for set_name, pairs in eval_sets.items():
        sizes = pairs.hr_sizes() if hasattr(pairs, "hr_sizes") else [(pair[0], tuple(pair[2].shape[:2])) for pair in pairs]
        small += [f"{set_name}/{name} ({h}x{w})" for name, (h, w) in sizes if min(h // scale, w // scale) * scale < need]
    if small:
        raise ValueError(
            f"{len(small)} validation image(s) are smaller than {need}x{need} pixels, the least SSIM's 11x11 window "
            f"needs after cropping crop_border={crop_border} from each side: {small[:5]}. Remove them or lower crop_border."
        )


def _score(results: dict[str, dict[str, float]]) -> float:
    """The number 'best' is judged by: mean PSNR over the validation sets."""
    values = [v["psnr"] for v in results.values() if "psnr" in v]
    return float(np.mean(values)) if values else -math.inf


# --------------------------------------------------------------------------- the loop


class _Update:
    """What one training step does to the networks; the loop (:func:`_train`) owns the rest (data,
    LR schedules, EMA of the generator, validation, checkpoints, saving).

    ``train_sr``'s update is :class:`_PixelLossUpdate`; an SR GAN's is
    ``hfmagic.training.srgan.SRGAN``. An update names its optimizers (one LR schedule each, built by
    the loop from the same settings), wraps its networks with ``accelerator.prepare``, runs a step and
    returns the loss terms to log, and may save more than the generator (a discriminator).
    """

    function_name = "train_sr"  # named in model cards

    @property
    def generator(self) -> torch.nn.Module:
        """The (unwrapped) super-resolution network: validated, averaged by the EMA and saved."""
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimizers by name (before and after ``prepare``)."""
        raise NotImplementedError

    def prepare(self, accelerator) -> None:
        raise NotImplementedError

    def train_step(self, pixel_values: torch.Tensor, labels: torch.Tensor, step: int, check: Callable) -> dict[str, torch.Tensor]:
        """One micro-batch at 0-based optimisation step ``step``. ``check(losses)`` averages the named
        loss terms over processes and stops a diverged run; call it before ``backward``. Returns the
        averaged terms to log (``"loss"``: the total)."""
        raise NotImplementedError

    def train(self) -> None:
        """Put the trained networks in training mode."""

    def save_extra(self, folder: Path) -> None:
        """Save what belongs next to the generator in ``folder`` (main process)."""

    def card_kwargs(self) -> dict:
        """More arguments of ``hfmagic.hub.model_card`` (e.g. where a discriminator was saved)."""
        return {}

    def describe(self, args: SRTrainingArguments) -> str:
        """The recipe in a few words, for the model card."""
        return f"lr {args.learning_rate:g}, schedule `{args.lr_scheduler}`{', EMA weights' if args.use_ema else ''}"


class _PixelLossUpdate(_Update):
    """``train_sr``'s step: the model's own pixel loss (``config.loss_type``), Adam, gradient
    accumulation and clipping by accelerate."""

    def __init__(self, model: torch.nn.Module, args: SRTrainingArguments):
        self.model = model
        self.max_grad_norm = args.max_grad_norm
        # MMagic: Adam, betas (0.9, 0.999)
        self.optimizer = torch.optim.Adam(
            model.parameters(),
            lr=args.learning_rate,
            betas=(args.adam_beta1, args.adam_beta2),
            eps=args.adam_epsilon,
            weight_decay=args.adam_weight_decay,
        )
        self.accelerator = None

    @property
    def generator(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.model) if self.accelerator is not None else self.model

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": self.optimizer}

    def prepare(self, accelerator) -> None:
        self.accelerator = accelerator
        self.model, self.optimizer = accelerator.prepare(self.model, self.optimizer)

    def train(self) -> None:
        self.model.train()

    def train_step(self, pixel_values, labels, step, check):
        accelerator = self.accelerator
        with accelerator.accumulate(self.model):
            loss = self.model(pixel_values=pixel_values, labels=labels).loss
            logs = check({"loss": loss})
            accelerator.backward(loss)
            if accelerator.sync_gradients and self.max_grad_norm is not None:
                accelerator.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return logs


@dataclass
class _SRRunState:
    """What the loop carries from step to step besides the models: the step, the best validation
    score so far and the last checkpoint (named when training diverges)."""

    step: int = 0
    best_score: float = -math.inf
    last_checkpoint: str | None = None


def create_accelerator(args: SRTrainingArguments, *, broadcast_buffers: bool = True):
    """The ``accelerate.Accelerator`` :func:`train_sr` uses (build it first to load data under
    ``accelerator.main_process_first()``, then pass it to ``train_sr``). ``broadcast_buffers=False``:
    DDP leaves each rank its own buffers (BatchNorm statistics of a GAN's discriminator, as MMagic)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration

    project = ProjectConfiguration(project_dir=args.output_dir, logging_dir=str(Path(args.output_dir) / args.logging_dir))
    handlers = [] if broadcast_buffers else [DistributedDataParallelKwargs(broadcast_buffers=False)]
    return Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=args.report_to or None,
        project_config=project,
        kwargs_handlers=handlers,
    )


def release_accelerator(accelerator) -> None:
    """End a run's accelerator: finish the trackers, leave the process group, and forget accelerate's
    process-wide state, so that a later run in the same Python process (a notebook, a test) may use
    other settings (accelerate otherwise refuses e.g. another ``mixed_precision``)."""
    from accelerate.state import AcceleratorState

    accelerator.end_training()
    AcceleratorState._reset_state()  # internal, but the only way to change mixed precision in-process


def _save_model(
    model: torch.nn.Module, folder: Path, args: SRTrainingArguments, metrics: dict | None, step: int, crop_border: int,
    repo_id: str | None = None, destination: Path | None = None, update: _Update | None = None,
) -> None:
    """``save_pretrained`` + a model card with the validation metrics next to bicubic's on the same
    images (main process only). ``folder`` may be the temporary sibling that ``write_folder_atomically``
    renames to ``destination``: the card's snippet loads ``repo_id``, else ``destination``. ``update``
    (the run's update rule) may save more networks into the folder (an SR GAN's discriminator) and
    says how the model was trained in the card."""
    from .. import hub
    from ..evaluation import metrics_for_card

    model.save_pretrained(folder)
    if update is not None:
        update.save_extra(folder)
    data = args.training_data or ", ".join(args.dataset_names or [])
    how = update.describe(args) if update is not None else (
        f"lr {args.learning_rate:g}, schedule `{args.lr_scheduler}`{', EMA weights' if args.use_ema else ''}"
    )
    extra = (
        f"Trained with `hfmagic.training.{update.function_name if update is not None else 'train_sr'}`"
        f"{f' on {data}' if data else ''} for {step} steps (batch {args.train_batch_size} per process, {how})."
    )
    hub.write_model_card(
        folder,
        model,
        metrics=metrics_for_card(metrics, args.y_channel, crop_border, split="validation") if metrics else None,
        datasets=args.dataset_names or None,
        training_data=args.training_data,
        license=args.license,
        repo_id=repo_id,
        load_path=Path(destination or folder).as_posix(),
        extra_text=extra,
        **(update.card_kwargs() if update is not None else {}),
    )


def train_sr(
    model: torch.nn.Module,
    train_dataset: Any,
    args: SRTrainingArguments,
    eval_sets: dict[str, Any] | None = None,
    *,
    accelerator: Any = None,
    callbacks: Sequence[Callable[[int, dict[str, float]], None]] = (),
) -> SRTrainingResult:
    """Train ``model`` on ``train_dataset`` with MMagic's recipe (see :class:`SRTrainingArguments`).

    Args:
        model: any ``SuperResolutionPreTrainedModel`` (its ``forward(pixel_values, labels)`` returns the loss).
        train_dataset: map-style dataset of ``{"pixel_values": (3, h, w), "labels": (3, h*s, w*s)}``
            floats in [0, 1], e.g. ``hfmagic.data.sr_dataset.build_sr_dataset(...)``; or a
            ``hfmagic.data.DeviceSRData`` (moved to the training device, batches cut and degraded
            there; no DataLoader workers).
        args: the settings.
        eval_sets: ``{name: load_eval_set(...)}`` for validation (PSNR/SSIM, best model); optional.
        accelerator: an ``Accelerator`` from :func:`create_accelerator`; one is made (and released at
            the end) when None. A passed one is left to the caller (:func:`release_accelerator`).
        callbacks: called on every rank after each optimisation step as ``callback(step, logs)``.

    Returns:
        :class:`SRTrainingResult`. Saves ``final/`` (and ``best/`` with validation) under ``output_dir``
        with ``save_pretrained`` and a model card; EMA weights when ``use_ema``.

    Raises:
        TrainingDivergedError: the loss became NaN/inf (the last good checkpoint is kept and named).
    """
    from ..models.sr_base import SuperResolutionPreTrainedModel

    if not isinstance(model, SuperResolutionPreTrainedModel):
        raise TypeError(
            f"train_sr trains hfmagic super-resolution models; got {type(model).__name__}. Subclass "
            "SuperResolutionPreTrainedModel (and SuperResolutionConfig) and implement reconstruct()."
        )
    owns_accelerator = accelerator is None
    accelerator = accelerator or create_accelerator(args)
    if accelerator.gradient_accumulation_steps != args.gradient_accumulation_steps:
        raise ValueError(
            f"The accelerator accumulates {accelerator.gradient_accumulation_steps} micro-batches but "
            f"args.gradient_accumulation_steps is {args.gradient_accumulation_steps}: build it with "
            "create_accelerator(args) (or Accelerator(gradient_accumulation_steps=...)) so the two agree."
        )
    configure_cpu_threads(accelerator, args.num_threads)  # accelerate launch would leave 1 thread per process
    try:
        return _train(_PixelLossUpdate(model, args), train_dataset, args, eval_sets, accelerator, callbacks)
    finally:
        if owns_accelerator:
            release_accelerator(accelerator)


def _train(update: _Update, train_dataset, args: SRTrainingArguments, eval_sets, accelerator, callbacks) -> SRTrainingResult:
    """The body of :func:`train_sr` (and of ``train_srgan``), in diffusers' order."""
    from accelerate.utils import set_seed

    if args.resume_from_checkpoint not in (None, "latest"):  # a wrong name: said before the run folder is created
        resolve_resume_checkpoint(args.resume_from_checkpoint, args.output_dir)
    output_dir = start_run(accelerator, args.output_dir, args.to_json_dict())
    set_seed(args.seed)
    model = update.generator
    scale = int(model.config.upscale_factor)
    repo_id = args.hub_model_id or output_dir.resolve().name
    if args.push_to_hub:
        repo_id = create_hub_repo(accelerator, repo_id, args.hub_token, args.hub_private)
    crop_border = scale if args.crop_border is None else args.crop_border
    if eval_sets:
        _check_eval_sets(eval_sets, scale, crop_border)

    # EMA: an averaged copy on the training device, saved in checkpoints
    ema = None
    if args.use_ema:
        ema = ExponentialMovingAverage(model, momentum=args.ema_momentum, update_buffers=args.ema_update_buffers)
        ema.to(accelerator.device)
        accelerator.register_for_checkpointing(ema)

    # Optimizers: the update's (train_sr: one Adam; an SR GAN: the generator's and the discriminator's)
    optimizers = update.optimizers()
    requested_lrs = {name: [group["lr"] for group in opt.param_groups] for name, opt in optimizers.items()}

    # Data: the deterministic stream (see the module docstring), or batches made on the device
    device_data = _as_device_data(train_dataset, scale, accelerator.device)
    stream = None if device_data is not None else SRSampleStream(train_dataset, seed=args.seed)

    # Schedules, one per optimizer with the same settings (MMagic's param_scheduler): stepped by us
    # once per optimisation step (not prepared, so accelerate does not step them once per process),
    # saved through register_for_checkpointing.
    periods = args.lr_periods
    if args.lr_scheduler == "cosine_restart" and not periods:
        periods = [math.ceil(args.max_train_steps / 4)] * 4  # MMagic: 4 x 250k for 1M steps
    lr_schedulers = {
        name: get_sr_scheduler(
            args.lr_scheduler,
            optimizer,
            num_training_steps=args.max_train_steps,
            num_warmup_steps=args.lr_warmup_steps,
            periods=periods,
            restart_weights=args.lr_restart_weights,
            eta_min=args.lr_eta_min,
            milestones=args.lr_milestones,
            gamma=args.lr_gamma,
        )
        for name, optimizer in optimizers.items()
    }
    for lr_scheduler in lr_schedulers.values():
        accelerator.register_for_checkpointing(lr_scheduler)
    lr_scheduler = next(iter(lr_schedulers.values()))  # the generator's: logged as "lr"

    update.prepare(accelerator)
    optimizers = update.optimizers()

    if accelerator.is_main_process and args.report_to:
        config = {k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in args.to_json_dict().items() if v is not None}
        init_trackers(accelerator, args.tracker_project_name, config)

    # Resume
    run = _SRRunState()
    resume_path = resolve_resume_checkpoint(args.resume_from_checkpoint, output_dir)
    if args.resume_from_checkpoint and resume_path is None:
        logger.info("No checkpoint in %s yet: starting a fresh run.", output_dir)
    if resume_path is not None:
        with quiet_loggers(*ACCELERATE_CHECKPOINT_LOGGERS):  # a line per file; "Resumed from" below says it
            accelerator.load_state(str(resume_path))
        state = read_checkpoint_state(resume_path)
        run.step = int(state["step"])
        run.best_score = float(state["best_score"]) if state.get("best_score") is not None else -math.inf
        run.last_checkpoint = str(resume_path)
        logger.info("Resumed from %s at step %d.", resume_path, run.step)
        restore_learning_rates(
            optimizers, requested_lrs, run.step, schedulers=lr_schedulers, main_process=accelerator.is_main_process
        )
    global_step = run.step

    accumulation = args.gradient_accumulation_steps
    world = accelerator.num_processes
    global_batch = args.train_batch_size * world * accumulation
    first_batch, num_batches = global_step * accumulation, (args.max_train_steps - global_step) * accumulation
    if device_data is not None:
        # micro-batch j: a pure function of (seed, j), like stream positions (DeviceSRData.batch_at)
        dataloader = (
            device_data.batch_at(j, args.train_batch_size, seed=args.seed, rank=accelerator.process_index, world_size=world)
            for j in range(first_batch, first_batch + num_batches)
        )
    else:
        sampler = StreamBatchSampler(
            args.train_batch_size, num_batches=num_batches, start=first_batch, rank=accelerator.process_index, world_size=world
        )
        dataloader = DataLoader(
            stream,
            batch_sampler=sampler,
            num_workers=args.dataloader_num_workers,
            pin_memory=accelerator.device.type == "cuda",
        )

    logger.info(
        "Training %s x%d: %d steps from step %d, %d %s, batch %d per process x %d processes x %d accumulation = %d.",
        type(update.generator).__name__, scale, args.max_train_steps, global_step,
        len(device_data if device_data is not None else stream),
        f"images on {device_data.device}" if device_data is not None else "samples",
        args.train_batch_size, world, accumulation, global_batch,
    )

    def eval_model() -> torch.nn.Module:
        return ema.module if ema is not None else update.generator

    takes_images = any(tracker.name in ("tensorboard", "wandb", "trackio") for tracker in accelerator.trackers)
    sample = _ValidationSample(eval_sets, scale) if eval_sets and takes_images and accelerator.is_main_process else None

    def validate(step: int) -> dict | None:
        """Validate (main process) and keep a new best in best/; ``run.best_score`` follows."""
        metrics = None
        if eval_sets and accelerator.is_main_process:
            metrics = evaluate_model(eval_model(), eval_sets, crop_border=crop_border, y_channel=args.y_channel)
            accelerator.log({f"val/{name}/{key}": value for name, values in metrics.items() for key, value in values.items() if key != "num_images"}, step=step)
            logger.info("Validation at step %d: %s", step, format_metrics(metrics))
            if sample is not None:
                log_images(accelerator, {"val/sample": sample.image(eval_model())}, step, caption=sample.caption)
            if _score(metrics) > run.best_score:
                run.best_score = _score(metrics)
                save_best(
                    output_dir,
                    lambda folder: _save_model(eval_model(), folder, args, metrics, step, crop_border, destination=output_dir / BEST_DIR, update=update),
                    {"step": step, "metrics": metrics},
                )
        accelerator.wait_for_everyone()
        return metrics

    # tqdm on a terminal; off it (CI, nohup, a cluster job) a log line every 30 s, not a redraw per step
    progress = progress_bar(total=args.max_train_steps, initial=global_step, desc="Steps", disable=not accelerator.is_local_main_process, logger=logger)
    update.train()
    loss_sums: dict[str, torch.Tensor] = {}
    micro_batches = 0

    def check(losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # One collective per micro-batch: every rank sees the same means (and the same NaN)
        names = sorted(losses)
        means = accelerator.reduce(torch.stack([losses[n].detach().float() for n in names]), reduction="mean")
        reduced = dict(zip(names, means.unbind()))
        check_finite(reduced, step=global_step + 1, last_checkpoint=run.last_checkpoint)
        return reduced

    # training throughput: from the end of the first step (start-up excluded), validation and saving excluded
    started, steps_timed, paused, samples_per_second = None, 0, 0.0, None
    final_metrics, last_validated = None, None  # last_validated: the same on every rank
    try:
        for batch in dataloader:
            pixel_values = batch["pixel_values"].to(accelerator.device, non_blocking=True)
            labels = batch["labels"].to(accelerator.device, non_blocking=True)
            step_logs = update.train_step(pixel_values, labels, global_step, check)
            for name, value in step_logs.items():
                loss_sums[name] = loss_sums.get(name, 0.0) + value.detach()
            micro_batches += 1
            if not accelerator.sync_gradients:
                continue

            # One optimisation step done
            for name, scheduler in lr_schedulers.items():
                if not getattr(optimizers[name], "step_was_skipped", False):  # fp16 overflow: no step, no schedule
                    scheduler.step()
            if ema is not None:
                ema.update_parameters(update.generator)
            global_step += 1
            now = time.perf_counter()
            if started is None:  # time from the end of the first step (skips start-up costs)
                started = now
            else:
                steps_timed += 1
                samples_per_second = steps_timed * global_batch / max(now - started - paused, 1e-9)
            logs = {name: float(total) / micro_batches for name, total in loss_sums.items()}
            logs["lr"] = lr_scheduler.get_last_lr()[0]
            if samples_per_second is not None:
                logs["samples_per_second"] = samples_per_second
            loss_sums.clear()
            micro_batches = 0
            # refresh=False: shown by update's redraw (at most one per tqdm's mininterval), not one more per step
            progress.set_postfix(loss=f"{logs.get('loss', math.nan):.4g}", lr=f"{logs['lr']:.2e}", samples_s=f"{samples_per_second or 0:.1f}", refresh=False)
            progress.update(1)
            accelerator.log(logs, step=global_step)

            is_last = global_step >= args.max_train_steps
            pause_start = time.perf_counter()
            # checkpoint first: a validation that fails must not cost the steps since the last one
            checkpoint_now = args.checkpointing_steps and global_step % args.checkpointing_steps == 0
            if checkpoint_now:
                run.last_checkpoint = str(
                    save_checkpoint(
                        accelerator, output_dir, global_step, total_limit=args.checkpoints_total_limit,
                        extra_state={"best_score": run.best_score if math.isfinite(run.best_score) else None},
                        model=update.generator,
                    )
                )
                logger.info("Saved %s", run.last_checkpoint)
            if args.validation_steps and global_step % args.validation_steps == 0:
                previous_best = run.best_score
                final_metrics, last_validated = validate(global_step), global_step
                if checkpoint_now and run.best_score != previous_best and accelerator.is_main_process:
                    update_checkpoint_state(run.last_checkpoint, best_score=run.best_score)  # resume knows this best
            for callback in callbacks:
                callback(global_step, logs)
            paused += time.perf_counter() - pause_start
            if is_last:
                break
        progress.close()

        # Final validation (unless it just ran) and the final model
        if last_validated != global_step:
            previous_best = run.best_score
            final_metrics = validate(global_step)
            at_last_step = run.last_checkpoint is not None and Path(run.last_checkpoint).name == f"checkpoint-{global_step}"
            if at_last_step and run.best_score != previous_best and accelerator.is_main_process:
                update_checkpoint_state(run.last_checkpoint, best_score=run.best_score)  # a longer resumed run knows it
        result = SRTrainingResult(global_step=global_step, final_dir=output_dir / FINAL_DIR, samples_per_second=samples_per_second)
        if accelerator.is_main_process:
            save_final(output_dir, lambda folder: _save_model(
                eval_model(), folder, args, final_metrics, global_step, crop_border,
                repo_id if args.push_to_hub else args.hub_model_id, output_dir / FINAL_DIR, update,
            ))
            result.final_metrics = final_metrics
            best = read_best(output_dir)
            if best is not None:
                result.best_dir, result.best_metrics = output_dir / BEST_DIR, best["metrics"]
            if args.push_to_hub:
                result.hub_url = push_final(
                    result.final_dir, repo_id, args.hub_token, args.hub_private, f"hfmagic train_sr: step {global_step}"
                )
        accelerator.wait_for_everyone()
        return result
    finally:
        progress.close()
