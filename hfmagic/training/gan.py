"""One readable GAN training loop on Accelerate, with MMagic's ``BaseGAN`` update schedule.

Two pieces:

- :class:`GAN` holds the generator, the discriminator, the optional EMA generator and their
  optimizers, and defines one training iteration (``train_step``) through overridable hooks:
  ``sample_noise``, ``train_discriminator``, ``train_generator``, ``discriminator_loss``,
  ``generator_loss``. The defaults are DCGAN's (BCE with logits, as MMagic); LSGAN or WGAN-GP is
  a subclass overriding the losses (and, for a gradient penalty, ``train_discriminator``).
- :func:`train_gan` is the loop: resume, epochs over a seedable, skippable DataLoader, logging,
  sample grids, periodic evaluation with the best generator kept (MMagic's ``save_best="swd/avg"``),
  divergence checks and atomic checkpoints.

The schedule (MMagic ``BaseGAN.train_step``), with ``it`` the 0-based iteration and one batch per
iteration:

- the discriminator computes its loss on every iteration and steps its optimizer every
  ``discriminator_accumulation_steps`` iterations (loss divided by that count);
- when ``(it + 1) % (discriminator_steps * discriminator_accumulation_steps) == 0`` the generator
  runs ``generator_steps * generator_accumulation_steps`` times on the same batch, with the
  discriminator's ``requires_grad`` off, stepping every ``generator_accumulation_steps``;
- after that generator update the EMA is updated when ``(it + 1) >= ema_start *
  discriminator_steps * discriminator_accumulation_steps``, and before that its weights are a copy
  of the generator's (MMagic's ``sync_parameters``), so the first real update is a copy too.

Distributed data parallel: each network is wrapped separately by ``accelerator.prepare``. The
discriminator is called twice per discriminator step (fakes, then reals: separate BatchNorm
statistics, as MMagic) before one backward, which DDP supports; during generator steps the
*unwrapped* discriminator is used, since its parameters are frozen and must not wait for a
gradient all-reduce. Run DDP with ``broadcast_buffers=False`` (MMagic's default wrapper) so every
rank keeps its own BatchNorm statistics; the main process's are the ones saved.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..logging_utils import ACCELERATE_CHECKPOINT_LOGGERS, MainProcessLogger, progress_bar, quiet_loggers
from ..pipelines.grid import make_grid
from .checkpointing import (
    CheckpointableGenerator,
    TrainingDivergedError,
    check_finite,
    read_checkpoint_state,
    resolve_resume_checkpoint,
    save_checkpoint,
    update_checkpoint_state,
)
from .cpu_threads import configure_cpu_threads
from .ema import ExponentialMovingAverage
from .run import log_images, read_best, restore_learning_rates, save_best, start_run

__all__ = ["GAN", "image_grid", "train_gan_loop"]


class _AllProcessesGenerator(CheckpointableGenerator):
    """A ``CheckpointableGenerator`` per process, all saved in the main process's checkpoint file.

    accelerate writes registered objects from the main process only, but each process draws its
    own noise: ``state_dict`` (called on every rank during ``save_state``) gathers every rank's
    state, and ``load_state_dict`` takes this rank's back.
    """

    def __init__(self, seed: int, accelerator):
        super().__init__(seed + accelerator.process_index)
        self.accelerator = accelerator

    def state_dict(self) -> dict:
        from accelerate.utils import gather_object

        states = [self.generator.get_state()]
        return {"states": gather_object(states) if self.accelerator.num_processes > 1 else states}

    def load_state_dict(self, state: dict) -> None:
        states = state["states"]
        if len(states) != self.accelerator.num_processes:
            raise ValueError(
                f"This checkpoint was written by {len(states)} process(es); resume it with the same number of "
                f"processes (now {self.accelerator.num_processes}) to continue the same training noise."
            )
        self.generator.set_state(states[self.accelerator.process_index])


class GAN:
    """A generator and a discriminator trained with MMagic's BaseGAN schedule.

    Args:
        generator: noise -> images in [-1, 1]; needs ``sample_noise(n, generator)`` unless
            ``sample_noise`` is overridden.
        discriminator: images -> logits (N, 1).
        discriminator_steps: discriminator updates per generator update.
        generator_steps: generator updates per generator turn (all on the same batch).
        discriminator_accumulation_steps: iterations whose discriminator gradients are summed
            before a step.
        generator_accumulation_steps: generator backward passes per generator step.
        ema_momentum: keep an EMA generator with ``ema = (1 - m) * ema + m * generator``
            (MMagic's default m is 0.0002); None for no EMA.
        ema_start: the EMA starts at iteration ``ema_start * discriminator_steps *
            discriminator_accumulation_steps`` (before: a copy of the generator).
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        *,
        discriminator_steps: int = 1,
        generator_steps: int = 1,
        discriminator_accumulation_steps: int = 1,
        generator_accumulation_steps: int = 1,
        ema_momentum: float | None = None,
        ema_start: int = 0,
    ):
        for name, value in (
            ("discriminator_steps", discriminator_steps),
            ("generator_steps", generator_steps),
            ("discriminator_accumulation_steps", discriminator_accumulation_steps),
            ("generator_accumulation_steps", generator_accumulation_steps),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
        if ema_start < 0:
            raise ValueError(f"ema_start must be >= 0, got {ema_start}.")
        for name, module in (("generator", generator), ("discriminator", discriminator)):
            if not isinstance(module, nn.Module):
                raise TypeError(f"{name} must be a torch.nn.Module (e.g. a PreTrainedModel), got {type(module).__name__}.")
        if type(self).sample_noise is GAN.sample_noise and not callable(getattr(generator, "sample_noise", None)):
            raise TypeError(
                f"{type(generator).__name__} has no sample_noise(num_batches, generator=None) method: add one to the "
                "generator (returning its input noise, drawn with the given torch.Generator), or override "
                "GAN.sample_noise in your GAN subclass."
            )
        self.generator = generator
        self.discriminator = discriminator
        self.discriminator_steps = discriminator_steps
        self.generator_steps = generator_steps
        self.discriminator_accumulation_steps = discriminator_accumulation_steps
        self.generator_accumulation_steps = generator_accumulation_steps
        self.ema_start = ema_start
        self.generator_ema = ExponentialMovingAverage(generator, momentum=ema_momentum) if ema_momentum else None
        self.accelerator = None
        self.generator_optimizer = None
        self.discriminator_optimizer = None
        self.noise_generator: CheckpointableGenerator | None = None

    # ------------------------------------------------------------------ setup
    def prepare(self, accelerator, generator_optimizer, discriminator_optimizer, seed: int = 0) -> None:
        """Wrap the networks and optimizers with ``accelerator.prepare`` and register the EMA and the
        training-noise generator for checkpointing.

        Training noise comes from a ``torch.Generator`` seeded with ``seed + process_index`` (ranks
        draw different fakes) that is saved in every checkpoint, so a resumed run draws exactly
        the noise an uninterrupted one would (the global RNG is consumed by DataLoader iterators).
        """
        self.accelerator = accelerator
        (self.generator, self.discriminator, self.generator_optimizer, self.discriminator_optimizer) = accelerator.prepare(
            self.generator, self.discriminator, generator_optimizer, discriminator_optimizer
        )
        self.noise_generator = _AllProcessesGenerator(seed, accelerator)
        accelerator.register_for_checkpointing(self.noise_generator)
        if self.generator_ema is not None:
            self.generator_ema.to(accelerator.device)
            accelerator.register_for_checkpointing(self.generator_ema)

    @property
    def unwrapped_generator(self) -> nn.Module:
        return self.accelerator.unwrap_model(self.generator) if self.accelerator else self.generator

    @property
    def unwrapped_discriminator(self) -> nn.Module:
        return self.accelerator.unwrap_model(self.discriminator) if self.accelerator else self.discriminator

    @property
    def device(self) -> torch.device:
        return self.accelerator.device if self.accelerator else next(self.generator.parameters()).device

    # ------------------------------------------------------------------ hooks
    def sample_noise(self, num_batches: int) -> torch.Tensor:
        """Training noise for ``num_batches`` fakes, from the checkpointed noise generator."""
        noise_gen = self.noise_generator.generator if self.noise_generator else None
        return self.unwrapped_generator.sample_noise(num_batches, generator=noise_gen).to(self.device)

    def discriminator_loss(
        self, real_logits: torch.Tensor, fake_logits: torch.Tensor, real: torch.Tensor, fake: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Named loss terms (summed for the backward). DCGAN: BCE(D(fake), 0) + BCE(D(real), 1)."""
        return {
            "loss_disc_fake": F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)),
            "loss_disc_real": F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)),
        }

    def generator_loss(self, fake_logits: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named loss terms (summed for the backward). DCGAN: BCE(D(G(z)), 1)."""
        return {"loss_gen": F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))}

    def train_discriminator(self, batch: dict) -> dict[str, torch.Tensor]:
        """Discriminator losses on one batch: fakes from fresh noise made without gradients, then
        D(fakes) and D(reals) in two calls (separate BatchNorm statistics, as MMagic)."""
        real = batch["pixel_values"]
        noise = self.sample_noise(real.shape[0])
        with torch.no_grad():
            fake = self.unwrapped_generator(noise)
        fake_logits = self.discriminator(fake)
        real_logits = self.discriminator(real)
        return self.discriminator_loss(real_logits, fake_logits, real, fake)

    def train_generator(self, batch: dict) -> dict[str, torch.Tensor]:
        """Generator losses on fresh noise (as many fakes as the batch has images); the frozen
        discriminator is called unwrapped (no DDP all-reduce for parameters without gradients)."""
        noise = self.sample_noise(batch["pixel_values"].shape[0])
        fake = self.generator(noise)
        return self.generator_loss(self.unwrapped_discriminator(fake), fake)

    # ------------------------------------------------------------------ schedule
    def is_generator_iteration(self, iteration: int) -> bool:
        return (iteration + 1) % (self.discriminator_steps * self.discriminator_accumulation_steps) == 0

    def _discriminator_update(self, iteration: int, max_iterations: int | None) -> tuple[bool, int]:
        """(step now?, loss divisor) for the discriminator's accumulation, as MMEngine's OptimWrapper:
        a last, incomplete group before ``max_iterations`` steps at the end with a smaller divisor."""
        accum = self.discriminator_accumulation_steps
        step = (iteration + 1) % accum == 0 or (max_iterations is not None and iteration + 1 == max_iterations)
        divisor = accum
        if max_iterations is not None and max_iterations % accum and iteration >= max_iterations - max_iterations % accum:
            divisor = max_iterations % accum
        return step, divisor

    def _sync_context(self, model: nn.Module, sync: bool):
        # DDP must see no_sync around forward *and* backward of non-stepping micro-batches.
        return contextlib.nullcontext() if sync else self.accelerator.no_sync(model)

    def train_step(self, batch: dict, iteration: int, max_iterations: int | None = None) -> dict[str, torch.Tensor]:
        """One BaseGAN iteration on ``batch``; returns the detached loss terms computed in it
        plus their sums ``loss_d`` and, on generator iterations, ``loss_g``)."""
        accelerator = self.accelerator
        step, divisor = self._discriminator_update(iteration, max_iterations)
        with self._sync_context(self.discriminator, step):
            d_losses = self.train_discriminator(batch)
            d_total = sum(d_losses.values())
            accelerator.backward(d_total / divisor)
        if step:
            self.discriminator_optimizer.step()
            self.discriminator_optimizer.zero_grad(set_to_none=True)
        logs = {name: value.detach() for name, value in d_losses.items()}
        logs["loss_d"] = d_total.detach()

        if self.is_generator_iteration(iteration):
            self.unwrapped_discriminator.requires_grad_(False)
            g_logs: dict[str, list[torch.Tensor]] = {}
            accum = self.generator_accumulation_steps
            for micro in range(self.generator_steps * accum):
                g_step = (micro + 1) % accum == 0
                with self._sync_context(self.generator, g_step):
                    g_losses = self.train_generator(batch)
                    g_total = sum(g_losses.values())
                    accelerator.backward(g_total / accum)
                if g_step:
                    self.generator_optimizer.step()
                    self.generator_optimizer.zero_grad(set_to_none=True)
                for name, value in {**g_losses, "loss_g": g_total}.items():
                    g_logs.setdefault(name, []).append(value.detach())
            self.unwrapped_discriminator.requires_grad_(True)
            logs.update({name: torch.stack(values).mean() for name, values in g_logs.items()})
            self._update_ema(iteration)
        return logs

    @torch.no_grad()
    def _update_ema(self, iteration: int) -> None:
        if self.generator_ema is None:
            return
        start = self.ema_start * self.discriminator_steps * self.discriminator_accumulation_steps
        if iteration + 1 >= start:
            self.generator_ema.update_parameters(self.unwrapped_generator)
        else:  # MMagic's sync_parameters: follow the generator until the EMA starts
            self.generator_ema.module.load_state_dict(self.unwrapped_generator.state_dict())

    # ------------------------------------------------------------------ inference and saving
    @property
    def inference_generator(self) -> nn.Module:
        """The EMA generator when there is one (MMagic samples with it), else the trained one."""
        return self.generator_ema.module if self.generator_ema is not None else self.unwrapped_generator

    @torch.no_grad()
    def sample(self, noise: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) in [-1, 1] from ``noise`` with the inference generator in eval mode
        (BatchNorm running statistics, as at test time); its train/eval mode is restored."""
        generator = self.inference_generator
        was_training = generator.training
        generator.eval()
        try:
            return generator(noise.to(self.device)).float()
        finally:
            generator.train(was_training)

    def save_pretrained(self, save_directory: str | Path, **card_kwargs) -> None:
        """Generator (EMA weights when on) at the root, discriminator under ``discriminator/``, and a
        model card, with ``hfmagic.hub.save_gan_pretrained``. Call on the main process."""
        from ..hub import save_gan_pretrained

        save_gan_pretrained(self.inference_generator, self.unwrapped_discriminator, save_directory, **card_kwargs)

    def card_details(self) -> str:
        """More of the card's training sentence (", ..." clauses): a subclass's losses and regularisers."""
        return ""

    def parameters_are_finite(self) -> bool:
        modules = [self.unwrapped_generator, self.unwrapped_discriminator]
        if self.generator_ema is not None:
            modules.append(self.generator_ema.module)
        return all(torch.isfinite(p).all() for m in modules for p in m.parameters())


# The sample grid of a batch of generator outputs (N, C, H, W) in [-1, 1]: the pipelines' make_grid.
image_grid = make_grid


def _log_grid(accelerator, grid: Image.Image, step: int) -> None:
    log_images(accelerator, {"samples": grid}, step, caption=f"fixed-noise samples, step {step}")


def _reduce_over_processes(accelerator, step_logs: dict[str, torch.Tensor], batch: dict) -> tuple[dict[str, float], int]:
    """Loss terms averaged over processes (so every rank sees a NaN and stops together) and the number
    of images skipped in this step's batches, in one all-reduce."""
    names = sorted(step_logs)  # the same order on every rank
    skipped = torch.as_tensor(batch.get("num_skipped", 0), device=accelerator.device).sum().float()
    values = accelerator.reduce(torch.stack([step_logs[k].float() for k in names] + [skipped]), reduction="sum").tolist()
    num_skipped = round(values.pop())
    return {k: v / accelerator.num_processes for k, v in zip(names, values)}, num_skipped


# The scores best/ may be chosen by (lower is better for both): MMagic's save_best="swd/avg" (DCGAN)
# and save_best="FID-Full-50k/fid" (StyleGAN2).
BEST_METRICS = {"swd_avg": "SWD average", "fid": "FID"}


def _score(results: Mapping, metric: str) -> float | None:
    """``metric`` of ``evaluate_gan``'s results or of a ``best_step.json`` summary (None when absent)."""
    if metric == "swd_avg":
        return float(results["swd"]["avg"])
    value = results.get("fid")
    return None if value is None else float(value)


@dataclass
class _BestSoFar:
    """The generator with the lowest ``metric`` so far (main process): its score, step and the
    number of images it was evaluated on (scores of another sample size do not compare)."""

    score: float = math.inf
    step: int | None = None
    num_images: int | None = None
    metric: str = "swd_avg"

    def checkpoint_fields(self) -> dict:
        """What a checkpoint carries of it (nothing before a first best): ``best_<metric>`` and its step."""
        if self.step is None:
            return {}
        return {f"best_{self.metric}": self.score, "best_step": self.step, "best_num_images": self.num_images}


def _evaluate_and_keep_best(
    gan: GAN, evaluate, step: int, output_dir: Path, best: _BestSoFar, keep_best: int | None, dataset: str,
    license: str | None = None,
) -> dict[str, float]:
    """Run ``evaluate`` on the main process, log ``eval/...``, and save a new best to ``output_dir/best``."""
    accelerator = gan.accelerator
    if not accelerator.is_main_process:
        return {}
    from ..evaluation import gan_metrics_for_card

    results = evaluate(gan.inference_generator, step)
    swd_avg = float(results["swd"]["avg"])
    metric = best.metric
    score = _score(results, metric)
    if keep_best and score is None:
        raise ValueError(f"best/ is chosen by {BEST_METRICS[metric]}, but the evaluation returned none (FID needs an Inception file).")
    scalars = {f"eval/swd_{level}": float(value) for level, value in results["swd"].items()}
    scalars["eval/ms_ssim"] = float(results["ms_ssim"])
    if results.get("fid") is not None:
        scalars["eval/fid"] = float(results["fid"])
    if results.get("inception_score") is not None:
        scalars["eval/inception_score"] = float(results["inception_score"][0])
    accelerator.log(scalars, step=step)
    fid_text = f", FID {float(results['fid']):.4f}" if results.get("fid") is not None else ""
    logging.getLogger(__name__).info(f"Evaluation at step {step}: SWD avg {swd_avg:.4f}, MS-SSIM {results['ms_ssim']:.4f}{fid_text}")
    out = {"swd_avg": swd_avg, "ms_ssim": float(results["ms_ssim"])}
    if results.get("fid") is not None:
        out["fid"] = float(results["fid"])
    if keep_best:
        num_images = results.get("num_images")
        if best.step is not None and best.num_images not in (None, num_images):
            # SWD and FID grow as the sample shrinks: scores of another evaluation size do not compare
            logging.getLogger(__name__).warning(
                f"The evaluation now uses {num_images} images, the best so far (step {best.step}) {best.num_images}: "
                "best/ starts again from this evaluation."
            )
            best.score, best.step = math.inf, None
        if score < best.score:
            best.score, best.step, best.num_images = score, step, num_images

            def write_best(folder: Path) -> None:
                gan.save_pretrained(
                    folder,
                    metrics=gan_metrics_for_card(results, dataset),
                    extra_text=f"## Training\n\nThe generator with the lowest {BEST_METRICS[metric]} ({score:.4f}) of the run, at iteration {step}.",
                    training_data=dataset,
                    license=license,
                    load_path=(Path(output_dir) / "best").as_posix(),  # folder is best/'s temporary sibling
                )

            summary = {
                "step": step,
                "swd": {k: float(v) for k, v in results["swd"].items()},
                "ms_ssim": float(results["ms_ssim"]),
                "num_images": num_images,
            }
            if results.get("fid") is not None:
                summary["fid"] = float(results["fid"])
            save_best(output_dir, write_best, summary)
        if best.step is not None:
            out.update({f"best_{metric}": best.score, "best_step": best.step})
    return out


def train_gan_loop(
    gan: GAN,
    train_dataloader,
    *,
    max_train_steps: int,
    output_dir: str | Path,
    checkpointing_steps: int | None = None,
    checkpoints_total_limit: int | None = None,
    resume_from_checkpoint: str | None = None,
    save_images_steps: int | None = None,
    fixed_noise: torch.Tensor | None = None,
    show_progress: bool = True,
    evaluate: Callable[[nn.Module, int], Mapping] | None = None,
    evaluation_steps: int | None = None,
    evaluation_dataset: str = "training images",
    num_threads: int | None = None,
    license: str | None = None,
    best_metric: str = "swd_avg",
) -> dict[str, float]:
    """The GAN loop: train ``gan`` (already ``prepare``-d) for ``max_train_steps`` iterations (one
    batch each). :func:`hfmagic.training.train_gan` builds everything around it (accelerator,
    optimizers, data loader, trackers, final/ and the push); call this one for a setup of your own.

    Args:
        gan: the GAN, after ``gan.prepare(accelerator, ...)``.
        train_dataloader: ``accelerator.prepare``-d DataLoader of ``{"pixel_values": (N, C, H, W) in
            [-1, 1]}`` batches; with ``use_seedable_sampler=True`` its order is a function of the
            seed and the epoch, so resume (``skip_first_batches``) replays it exactly.
        max_train_steps: total iterations (MMagic's ``max_iters``).
        output_dir: where ``checkpoint-<step>`` folders and ``samples/step-<step>.png`` go.
        checkpointing_steps: save a checkpoint every this many iterations (a multiple of
            ``discriminator_accumulation_steps``, so no gradient is pending).
        checkpoints_total_limit: keep at most this many checkpoints.
        resume_from_checkpoint: ``latest``, a path, or None.
        save_images_steps: save (and log to trackers) a grid of ``fixed_noise`` samples this often.
        fixed_noise: the noise of the sample grids.
        show_progress: tqdm bar with both losses on the main process.
        evaluate: ``evaluate(generator, step)`` -> ``hfmagic.evaluation.evaluate_gan``'s results, run
            on the main process with the inference generator (EMA when on) after the last iteration
            and every ``evaluation_steps`` iterations; logged as ``eval/...``.
        evaluation_steps: also evaluate every this many iterations and keep the generator with the
            lowest ``best_metric`` in ``output_dir/best`` (MMagic's ``save_best``), with its
            metrics in the card and ``best_step.json``; written atomically, its score is kept in the
            checkpoints, so a resumed run knows the best so far (an evaluation with another number
            of images starts the best again: SWD values of different sample sizes do not compare).
        evaluation_dataset: the name the card gives the evaluation images.
        license: the license best/'s card declares (a Hub license id), as final/'s.
        best_metric: what best/ is chosen by, lower being better: "swd_avg" (MMagic's DCGAN
            ``save_best="swd/avg"``) or "fid" (StyleGAN2's ``save_best="FID-Full-50k/fid"``; the
            evaluation must return FID). The checkpoints carry ``best_<metric>``.
        num_threads: torch threads of each process on CPU; None: the cores available to the process
            divided by the local processes, unless ``OMP_NUM_THREADS`` was set by the user
            (``accelerate launch``'s default of 1 is replaced; see ``hfmagic.training.cpu_threads``).
    Returns:
        The last logged values (``step``, ``epoch``, the loss terms, their sums ``loss_d`` and
        ``loss_g``, ``num_skipped_images``; with ``evaluate``: ``swd_avg`` and ``ms_ssim`` of the
        last evaluation (and ``fid`` when computed), and with ``evaluation_steps`` ``best_<best_metric>``
        and ``best_step``).
    Raises:
        TrainingDivergedError: a loss or a weight became NaN/inf; the last good checkpoint is kept
            and named in the message.
    """
    logger = MainProcessLogger(logging.getLogger(__name__), gan.accelerator is not None and gan.accelerator.is_main_process)
    accelerator = gan.accelerator
    if accelerator is None:
        raise ValueError("Call gan.prepare(accelerator, generator_optimizer, discriminator_optimizer) before train_gan.")
    accum = gan.discriminator_accumulation_steps
    if checkpointing_steps and checkpointing_steps % accum:
        raise ValueError(
            f"checkpointing_steps={checkpointing_steps} must be a multiple of discriminator_accumulation_steps={accum}: "
            "a checkpoint in the middle of an accumulation would lose the pending gradients."
        )
    if evaluation_steps is not None and (evaluation_steps < 1 or evaluate is None):
        raise ValueError(f"evaluation_steps={evaluation_steps} needs an evaluate function and must be >= 1 (None: only at the end).")
    configure_cpu_threads(accelerator, num_threads)  # accelerate launch would leave 1 thread per process
    output_dir = start_run(accelerator, output_dir)

    global_step, epoch, skip_batches, last_checkpoint, state = 0, 0, 0, None, {}
    if best_metric not in BEST_METRICS:
        raise ValueError(f"best_metric={best_metric!r} is not one of {sorted(BEST_METRICS)}.")
    best = _BestSoFar(metric=best_metric)
    resume_path = resolve_resume_checkpoint(resume_from_checkpoint, output_dir)
    if resume_path is not None:
        optimizers = {"generator": gan.generator_optimizer, "discriminator": gan.discriminator_optimizer}
        requested = {name: [group["lr"] for group in opt.param_groups] for name, opt in optimizers.items()}
        with quiet_loggers(*ACCELERATE_CHECKPOINT_LOGGERS):  # a line per file; "Resumed from" below says it
            accelerator.load_state(str(resume_path))
        state = read_checkpoint_state(resume_path)
        global_step, epoch, skip_batches = state["step"], state.get("epoch", 0), state.get("step_in_epoch", 0)
        if state.get(f"best_{best_metric}") is not None:
            best = _BestSoFar(float(state[f"best_{best_metric}"]), state.get("best_step"), state.get("best_num_images"), best_metric)
        # best/ may know a better score than the checkpoint (a kill right after best/ was written):
        # take it when it comes from a step this checkpoint has passed
        summary = read_best(output_dir) if accelerator.is_main_process else None
        if summary is not None:
            score = _score(summary, best_metric)
            if summary.get("step", math.inf) <= global_step and score is not None and score < best.score:
                best = _BestSoFar(score, summary["step"], summary.get("num_images"), best_metric)
        last_checkpoint = str(resume_path)
        logger.info(f"Resumed from {resume_path} at step {global_step} (epoch {epoch}, batch {skip_batches}).")
        # a registered LR scheduler (not the loop's own) owns the rates: they are left to it
        restore_learning_rates(
            optimizers, requested, global_step, foreign_schedulers=bool(accelerator._schedulers),
            main_process=accelerator.is_main_process,
        )
    elif resume_from_checkpoint:
        logger.info(f"No checkpoint in {output_dir} yet; starting from scratch.")

    def evaluate_now() -> None:
        """Evaluate at ``global_step`` (main process); the checkpoint of this step, if any, records that
        it was evaluated and the best score, so a resumed run neither repeats nor skips it."""
        logs.update(
            _evaluate_and_keep_best(gan, evaluate, global_step, output_dir, best, evaluation_steps, evaluation_dataset, license)
        )
        this_run = last_checkpoint and Path(last_checkpoint).parent.resolve() == output_dir.resolve()
        if accelerator.is_main_process and this_run and Path(last_checkpoint).name == f"checkpoint-{global_step}":
            update_checkpoint_state(last_checkpoint, evaluated=True, **best.checkpoint_fields())
        accelerator.wait_for_everyone()

    logs: dict[str, float] = {"step": global_step}
    # a run killed while its last checkpoint's step was being evaluated (the checkpoint says evaluated:
    # false until the evaluation is done): evaluate that step now
    if evaluate is not None and state.get("evaluated") is False:
        logger.info(f"The evaluation of step {global_step} did not finish before the run stopped: evaluating it now.")
        evaluate_now()

    # tqdm on a terminal; off it (CI, nohup, a cluster job) a log line every 30 s, not a redraw per step
    bar = progress_bar(
        total=max_train_steps, initial=global_step, desc="Steps", disable=not (show_progress and accelerator.is_local_main_process),
        logger=logging.getLogger(__name__),
    )
    num_skipped = 0
    with bar as progress:  # closed even when the run stops with an error
        while global_step < max_train_steps:
            if hasattr(train_dataloader, "set_epoch"):  # accelerate's loaders: sampler seed / stream shuffle per epoch
                train_dataloader.set_epoch(epoch)
            loader = accelerator.skip_first_batches(train_dataloader, skip_batches) if skip_batches else train_dataloader
            step_in_epoch = skip_batches
            for batch in loader:
                step_logs = gan.train_step(batch, global_step, max_train_steps)
                global_step += 1
                step_in_epoch += 1
                step_logs, skipped = _reduce_over_processes(accelerator, step_logs, batch)
                num_skipped += skipped
                check_finite(step_logs, global_step, last_checkpoint)
                logs.update(step_logs, step=global_step, epoch=epoch)
                accelerator.log(step_logs, step=global_step)
                progress.set_postfix({k: f"{logs[k]:.4g}" for k in ("loss_d", "loss_g") if k in logs}, refresh=False)
                progress.update(1)

                if save_images_steps and fixed_noise is not None and global_step % save_images_steps == 0:
                    if accelerator.is_main_process:
                        grid = image_grid(gan.sample(fixed_noise))
                        (output_dir / "samples").mkdir(parents=True, exist_ok=True)
                        grid.save(output_dir / "samples" / f"step-{global_step}.png")
                        _log_grid(accelerator, grid, global_step)
                at_end = global_step >= max_train_steps
                evaluation_due = evaluate is not None and (at_end or bool(evaluation_steps and global_step % evaluation_steps == 0))
                if checkpointing_steps and global_step % checkpointing_steps == 0:
                    if not gan.parameters_are_finite():
                        raise TrainingDivergedError(
                            f"Training diverged at step {global_step}: non-finite weights. The last good checkpoint is "
                            f"{last_checkpoint or 'none'}; resume from it with a lower --learning_rate."
                        )
                    extra = {"epoch": epoch, "step_in_epoch": step_in_epoch}
                    if evaluation_due:
                        extra["evaluated"] = False  # an evaluation of this step follows: set true when it is done
                    extra.update(best.checkpoint_fields())
                    last_checkpoint = str(
                        save_checkpoint(
                            accelerator, output_dir, global_step, checkpoints_total_limit, extra_state=extra,
                            model=gan.unwrapped_generator,
                        )
                    )
                    logger.info(f"Saved {last_checkpoint}")
                # evaluation after the checkpoint: a failing evaluation does not cost the steps since the last one
                if evaluation_due:
                    evaluate_now()
                if at_end:
                    break
            if step_in_epoch == 0:
                raise ValueError("The training DataLoader is empty: the dataset has fewer images than one batch.")
            epoch, skip_batches = epoch + 1, 0
    if num_skipped:
        logger.warning(f"{num_skipped} unreadable images were skipped.")
    logs["num_skipped_images"] = num_skipped
    return {k: (v if isinstance(v, (int, float)) else float(v)) for k, v in logs.items()}
