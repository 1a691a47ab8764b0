"""``train_gan(gan, dataset, args)``: a GAN training run, the same shape as ``train_sr``.

The :class:`~hfmagic.training.GAN` object holds the networks, their schedule (discriminator and
generator steps, accumulation, EMA) and the loss hooks; :class:`GANTrainingArguments` holds the
run (optimizers, data loading, checkpoints, samples, evaluation, trackers, the Hub). ``train_gan``
builds the accelerator, the Adam optimizers and the data loader, runs
:func:`~hfmagic.training.gan.train_gan_loop`, and writes ``final/`` (generator at the root,
``discriminator/``, ``samples.png`` and a card) and pushes it, in diffusers' order.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..logging_utils import format_metrics
from .checkpointing import resolve_resume_checkpoint
from .gan import GAN, image_grid, train_gan_loop
from .run import FINAL_DIR, create_hub_repo, init_trackers, push_final, resolve_report_to, save_final, start_run

__all__ = ["GANTrainingArguments", "GANTrainingResult", "create_gan_accelerator", "train_gan"]

logger = logging.getLogger(__name__)


@dataclass
class GANTrainingArguments:
    """Settings of a GAN training run; the defaults are MMagic's DCGAN recipe (Adam 2e-4, betas
    (0.5, 0.999), batch 128).

    Args:
        output_dir: run folder: ``checkpoint-<step>/``, ``samples/``, ``logs/``, ``best/``, ``final/``.
        max_train_steps: iterations (MMagic's ``max_iters``), one batch each.
        train_batch_size: real images per process per iteration.
        learning_rate: Adam learning rate of both networks, unless set apiece below.
        generator_learning_rate, discriminator_learning_rate: per-network rates (None: ``learning_rate``).
        adam_beta1, adam_beta2: Adam's betas.
        generator_adam_betas, discriminator_adam_betas: per-network betas (None: ``(adam_beta1,
            adam_beta2)``), e.g. StyleGAN2's lazy-regularisation corrected ones.
        seed: seeds the initialisation, the data order, the training noise and the sample noise.
        mixed_precision: "no", "fp16", "bf16" (None: accelerate's config).
        dataloader_num_workers: DataLoader worker processes (results do not depend on it).
        checkpointing_steps: a resumable checkpoint every this many iterations (None: never).
        checkpoints_total_limit: keep at most this many checkpoints.
        resume_from_checkpoint: "latest" (a fresh start when there is none) or a checkpoint path.
        save_images_steps: a grid of fixed-noise samples every this many iterations (None: only final/).
        num_sample_images: images in each sample grid.
        evaluation_images: SWD on this many real and generated images and MS-SSIM on at most 10000
            generated ones at the end (0: no evaluation), in the card.
        evaluation_steps: with ``evaluation_images``, also every this many iterations, keeping the
            generator with the lowest ``best_metric`` in ``best/``.
        inception_path: local TorchScript Inception (``inception-2015-12-05.pt``): the evaluations
            also compute FID (and the Inception Score), as ``hfmagic evaluate-gan --inception``.
        best_metric: what ``best/`` is chosen by (lower is better): "swd_avg" (MMagic's DCGAN) or
            "fid" (MMagic's StyleGAN2; needs ``inception_path``).
        report_to: accelerate tracker ("tensorboard", "wandb", "trackio", ...), None, or "auto" (default):
            tensorboard when installed, else none with a warning (``run.resolve_report_to``).
        logging_dir: tracker folder inside ``output_dir``.
        tracker_project_name: the trackers' project name.
        push_to_hub, hub_model_id, hub_token, hub_private: upload ``final/`` at the end (the repo
            is created before training, so a bad token fails early).
        num_threads: torch threads per process on CPU (None: the process's share of the cores).
        training_data: what the card calls the training images (a Hub id, a folder name, ...).
        dataset_names: Hub dataset ids for the card's metadata.
        card_text: more text for ``final/``'s card.
        license: the license ``final/``'s card declares for the weights (a Hub license id; None:
            none declared). Apache-2.0, hfmagic's own, by default; the choice is yours, and the
            training data's terms may restrict it.
        show_progress: a progress bar on the main process.
    """

    output_dir: str = "gan-output"
    max_train_steps: int = 1000
    train_batch_size: int = 128
    learning_rate: float = 2e-4
    generator_learning_rate: float | None = None
    discriminator_learning_rate: float | None = None
    adam_beta1: float = 0.5
    adam_beta2: float = 0.999
    generator_adam_betas: tuple[float, float] | None = None
    discriminator_adam_betas: tuple[float, float] | None = None
    seed: int = 0
    mixed_precision: str | None = None
    dataloader_num_workers: int = 0
    checkpointing_steps: int | None = None
    checkpoints_total_limit: int | None = None
    resume_from_checkpoint: str | None = None
    save_images_steps: int | None = None
    num_sample_images: int = 64
    evaluation_images: int = 0
    evaluation_steps: int | None = None
    inception_path: str | None = None
    best_metric: str = "swd_avg"
    report_to: str | None = "auto"
    logging_dir: str = "logs"
    tracker_project_name: str = "train_gan"
    push_to_hub: bool = False
    hub_model_id: str | None = None
    hub_token: str | None = field(default=None, repr=False)
    hub_private: bool = False
    num_threads: int | None = None
    training_data: str | None = None
    dataset_names: list[str] | None = None
    card_text: str | None = None
    license: str | None = "apache-2.0"
    show_progress: bool = True

    def __post_init__(self):
        for name in ("max_train_steps", "train_batch_size", "num_sample_images"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        for name in ("learning_rate", "generator_learning_rate", "discriminator_learning_rate"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}.")
        if self.evaluation_images and (self.evaluation_images < 2 or self.evaluation_images % 2):
            raise ValueError(f"evaluation_images must be an even number >= 2 (MS-SSIM compares pairs), got {self.evaluation_images}.")
        if self.evaluation_steps and not self.evaluation_images:
            raise ValueError("evaluation_steps needs evaluation_images (how many images each evaluation compares, e.g. 2048).")
        if self.best_metric not in ("swd_avg", "fid"):
            raise ValueError(f"best_metric must be 'swd_avg' or 'fid', got {self.best_metric!r}.")
        if self.best_metric == "fid" and not self.inception_path:
            raise ValueError("best_metric='fid' needs inception_path (a local TorchScript Inception, e.g. inception-2015-12-05.pt).")
        self.report_to = resolve_report_to(self.report_to)

    @property
    def generator_lr(self) -> float:
        return self.learning_rate if self.generator_learning_rate is None else self.generator_learning_rate

    @property
    def discriminator_lr(self) -> float:
        return self.learning_rate if self.discriminator_learning_rate is None else self.discriminator_learning_rate

    @property
    def generator_betas(self) -> tuple[float, float]:
        return tuple(self.generator_adam_betas or (self.adam_beta1, self.adam_beta2))

    @property
    def discriminator_betas(self) -> tuple[float, float]:
        return tuple(self.discriminator_adam_betas or (self.adam_beta1, self.adam_beta2))


@dataclass
class GANTrainingResult:
    """What :func:`train_gan` returns: the last logged values, the evaluation of the final
    generator (None without ``evaluation_images``), where ``final/`` is, and the Hub URL."""

    logs: dict[str, float]
    final_dir: Path
    evaluation: dict | None = None
    hub_url: str | None = None


def create_gan_accelerator(args: GANTrainingArguments):
    """The Accelerator :func:`train_gan` uses: a seedable sampler (the data order is a function of
    (seed, epoch), so a resume replays it), DDP without buffer broadcasts (per-rank BatchNorm
    statistics, MMagic's default), and a longer collective timeout while the main process evaluates."""
    from datetime import timedelta

    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, DistributedDataParallelKwargs, InitProcessGroupKwargs, ProjectConfiguration

    output_dir = Path(args.output_dir)
    handlers = [DistributedDataParallelKwargs(broadcast_buffers=False)]
    if args.evaluation_images:  # minutes for 16384 images, while the other ranks wait
        handlers.append(InitProcessGroupKwargs(timeout=timedelta(hours=2)))
    return Accelerator(
        mixed_precision=args.mixed_precision,
        log_with=args.report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / args.logging_dir)),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
        kwargs_handlers=handlers,
    )


def train_gan(gan: GAN, train_dataset: Any, args: GANTrainingArguments, *, accelerator: Any = None) -> GANTrainingResult:
    """Train ``gan`` on ``train_dataset`` (``{"pixel_values": (C, H, W) in [-1, 1]}`` items, e.g.
    ``hfmagic.data.build_gan_dataset(...)``) as ``args`` say, and save ``final/``.

    Args:
        gan: a :class:`~hfmagic.training.GAN` (or subclass) that is not prepared yet.
        train_dataset: map-style or iterable dataset of images.
        args: the run's settings.
        accelerator: one from :func:`create_gan_accelerator`; made (and released at the end) when None.
    Returns:
        :class:`GANTrainingResult`.
    Raises:
        TrainingDivergedError: a loss or a weight became NaN/inf (the last good checkpoint is named).
    """
    from .sr import release_accelerator

    if gan.accelerator is not None:
        raise ValueError("train_gan prepares the GAN itself: pass a GAN that gan.prepare(...) has not been called on.")
    owns_accelerator = accelerator is None
    accelerator = accelerator or create_gan_accelerator(args)
    try:
        return _train(gan, train_dataset, args, accelerator)
    finally:
        if owns_accelerator:
            release_accelerator(accelerator)


def _train(gan: GAN, dataset: Any, args: GANTrainingArguments, accelerator) -> GANTrainingResult:
    """The body of :func:`train_gan`, in diffusers' order."""
    from accelerate.utils import set_seed

    from ..data.gan_dataset import collate_gan_batch

    # run folder and Hub repo (created now, so that a bad token fails before the training); a wrong
    # checkpoint name is said before the run folder is created
    if args.resume_from_checkpoint not in (None, "latest"):
        resolve_resume_checkpoint(args.resume_from_checkpoint, args.output_dir)
    output_dir = start_run(accelerator, args.output_dir, {k: v for k, v in asdict(args).items() if k != "hub_token"})
    repo_id = args.hub_model_id or output_dir.resolve().name
    if args.push_to_hub:
        repo_id = create_hub_repo(accelerator, repo_id, args.hub_token, args.hub_private or None)
    set_seed(args.seed)

    # optimizers (MMagic: Adam for both networks), data loader, prepare
    generator_optimizer = torch.optim.Adam(gan.generator.parameters(), lr=args.generator_lr, betas=args.generator_betas)
    discriminator_optimizer = torch.optim.Adam(
        gan.discriminator.parameters(), lr=args.discriminator_lr, betas=args.discriminator_betas
    )
    train_dataloader = torch.utils.data.DataLoader(
        dataset,
        batch_size=args.train_batch_size,
        shuffle=not isinstance(dataset, torch.utils.data.IterableDataset),
        drop_last=True,  # equal batches: BatchNorm statistics and the schedule do not see a runt batch
        num_workers=args.dataloader_num_workers,
        collate_fn=collate_gan_batch,
    )
    train_dataloader = accelerator.prepare(train_dataloader)
    gan.prepare(accelerator, generator_optimizer, discriminator_optimizer, seed=args.seed)

    # trackers (never the token: trackers upload or write their config)
    if accelerator.is_main_process and args.report_to:
        config = {k: v for k, v in asdict(args).items() if isinstance(v, (int, float, str, bool)) and k != "hub_token"}
        init_trackers(accelerator, args.tracker_project_name, config)

    # the loop (resume included), with evaluations of the inference generator on the main process
    fixed_noise = gan.unwrapped_generator.sample_noise(args.num_sample_images, torch.Generator().manual_seed(args.seed))
    data_name = args.training_data or "training images"
    last_evaluation: dict = {}

    def evaluate(generator, step: int) -> dict:
        """SWD / MS-SSIM against the training images (the same seeded subset every time; the raw
        dataset, not the prepared DataLoader, which syncs ranks); MMagic's counts: SWD on all of
        them (16384), MS-SSIM on at most 10000."""
        from ..evaluation import evaluate_gan

        results = evaluate_gan(
            generator, dataset, args.evaluation_images, args.train_batch_size, seed=args.seed,
            ms_ssim_images=min(args.evaluation_images, 10000), inception_path=args.inception_path,
        )
        last_evaluation.update(step=step, results=results)
        return results

    logger.info(
        "Training for %d iterations, batch %d per process x %d processes; generator updates every %d iterations.",
        args.max_train_steps, args.train_batch_size, accelerator.num_processes,
        gan.discriminator_steps * gan.discriminator_accumulation_steps,
    )
    logs = train_gan_loop(
        gan,
        train_dataloader,
        max_train_steps=args.max_train_steps,
        output_dir=output_dir,
        checkpointing_steps=args.checkpointing_steps or None,
        checkpoints_total_limit=args.checkpoints_total_limit,
        resume_from_checkpoint=args.resume_from_checkpoint,
        save_images_steps=args.save_images_steps or None,
        fixed_noise=fixed_noise,
        show_progress=args.show_progress,
        evaluate=evaluate if args.evaluation_images else None,
        evaluation_steps=args.evaluation_steps or None,
        evaluation_dataset=data_name,
        num_threads=args.num_threads,
        license=args.license,
        best_metric=args.best_metric,
    )

    # final/: generator (EMA when on) at the root, discriminator/, samples.png and the card
    accelerator.wait_for_everyone()
    result = GANTrainingResult(logs=logs, final_dir=output_dir / FINAL_DIR)
    if args.evaluation_images and accelerator.is_main_process and last_evaluation.get("step") != logs["step"]:
        evaluate(gan.inference_generator, logs["step"])  # a resumed run that had no iteration left
    metrics = None
    if last_evaluation.get("step") == logs["step"]:  # the final generator's evaluation (main process)
        from ..evaluation import gan_metrics_for_card

        result.evaluation = last_evaluation["results"]
        metrics = gan_metrics_for_card(result.evaluation, dataset=data_name)
        logger.info(
            "SWD %s, MS-SSIM %.4f%s on %d images", format_metrics(result.evaluation["swd"]), result.evaluation["ms_ssim"],
            "" if result.evaluation.get("fid") is None else f", FID {result.evaluation['fid']:.4f}", result.evaluation["num_images"],
        )
    if accelerator.is_main_process:
        card = _card_text(gan, args, logs, accelerator.num_processes)

        def write_final(folder: Path) -> None:
            image_grid(gan.sample(fixed_noise)).save(folder / "samples.png")
            gan.save_pretrained(
                folder, metrics=metrics, datasets=args.dataset_names, sample_image=str(folder / "samples.png"),
                extra_text=card, repo_id=repo_id if args.push_to_hub else args.hub_model_id,
                training_data=args.training_data, license=args.license,
                load_path=(output_dir / FINAL_DIR).as_posix(),  # folder is final/'s temporary sibling
            )

        save_final(output_dir, write_final)  # a kill while saving keeps the previous final/
        logger.info("Saved the generator and discriminator/ to %s", result.final_dir)
        if args.push_to_hub:
            result.hub_url = push_final(result.final_dir, repo_id, args.hub_token, args.hub_private or None, f"hfmagic train_gan: step {logs['step']}")
    accelerator.wait_for_everyone()
    return result


def _card_text(gan: GAN, args: GANTrainingArguments, logs: dict, num_processes: int) -> str:
    """The card's "Training" section: data, iterations, batch, optimizers, schedule, EMA, losses."""
    ema = getattr(gan.generator_ema, "momentum", None)
    text = (
        f"## Training\n\nTrained with `hfmagic.training.train_gan` (MMagic's BaseGAN schedule) on "
        f"{args.training_data or 'training images'} for {logs['step']} iterations: batch {args.train_batch_size} x "
        f"{num_processes} processes, Adam lr G {args.generator_lr:g} / D {args.discriminator_lr:g}, betas "
        + (f"{(args.adam_beta1, args.adam_beta2)}" if args.generator_betas == args.discriminator_betas == (args.adam_beta1, args.adam_beta2)
           else f"G ({args.generator_betas[0]:g}, {args.generator_betas[1]:.6g}) / D ({args.discriminator_betas[0]:g}, {args.discriminator_betas[1]:.6g})")
        + f", discriminator steps {gan.discriminator_steps}, generator steps "
        f"{gan.generator_steps}"
        + (f", EMA momentum {ema:g} (the generator here holds the EMA weights)" if ema else "")
        + gan.card_details()
        + f". Final losses: D {logs.get('loss_d', math.nan):.4f}, G {logs.get('loss_g', math.nan):.4f}."
    )
    return text + (f"\n\n{args.card_text}" if args.card_text else "")
