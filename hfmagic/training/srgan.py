"""Adversarial super-resolution (SRGAN, ESRGAN, Real-ESRGAN's losses): MMagic's ``SRGAN.train_step``
as an update rule of ``train_sr``'s loop.

```python
from hfmagic.losses import GANLoss, PerceptualLoss
from hfmagic.training import SRGAN, SRGANTrainingArguments, train_srgan

srgan = SRGAN(
    generator, discriminator,                      # e.g. a PSNR-trained RRDBNet and a ModifiedVGGDiscriminator
    pixel_weight=1e-2,
    perceptual_loss=PerceptualLoss({"34": 1.0}, perceptual_weight=1.0, style_weight=0, norm_img=False),
    gan_loss=GANLoss("vanilla", loss_weight=5e-3),
    relativistic=True,                             # ESRGAN; False: SRGAN
)
train_srgan(srgan, data, SRGANTrainingArguments(output_dir="esrgan", max_train_steps=1000))
```

One step (MMagic 1.x ``SRGAN.train_step``, ``ESRGAN`` overriding the GAN terms), at 0-based step ``t``:

1. the generator upscales the batch once;
2. when ``t % disc_steps == 0 and t >= disc_init_steps``: the generator step, with the
   discriminator frozen (``requires_grad=False``): pixel + perceptual (+ style) + GAN loss;
3. ``disc_repeat`` times: the discriminator step on the detached output, real term then fake term
   (a backward each), then one optimizer step.

Everything else (the deterministic data stream, LR schedules for both optimizers, the generator's
EMA, validation PSNR/SSIM with a best model, atomic checkpoints with exact resume, DDP, trackers,
the final model with a card) is ``train_sr``'s loop: see :mod:`hfmagic.training.sr`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .cpu_threads import configure_cpu_threads
from .sr import SRTrainingArguments, SRTrainingResult, _train, _Update, create_accelerator, release_accelerator

__all__ = ["SRGAN", "SRGANTrainingArguments", "create_srgan_accelerator", "train_srgan"]

logger = logging.getLogger(__name__)

DISCRIMINATOR_SUBFOLDER = "discriminator"


@dataclass
class SRGANTrainingArguments(SRTrainingArguments):
    """Settings of :func:`train_srgan`: :class:`~hfmagic.training.SRTrainingArguments` with MMagic's
    ESRGAN recipe as defaults (Adam 1e-4 (0.9, 0.999) for both networks, MultiStepLR x0.5 at 50k,
    100k, 200k, 300k of 400k steps, batch 16) and the discriminator's learning rate.

    Args:
        discriminator_learning_rate: Adam's learning rate for the discriminator (None: ``learning_rate``).
        (the rest: see ``SRTrainingArguments``; ``gradient_accumulation_steps`` must stay 1, as MMagic's SRGAN.)
    """

    output_dir: str = "esrgan-model"
    max_train_steps: int = 400_000
    learning_rate: float = 1e-4
    discriminator_learning_rate: float | None = None
    lr_scheduler: str = "multistep"
    lr_milestones: list[int] | None = field(default_factory=lambda: [50_000, 100_000, 200_000, 300_000])
    tracker_project_name: str = "train_esrgan"

    def __post_init__(self):
        super().__post_init__()
        if self.gradient_accumulation_steps != 1:
            raise ValueError(
                f"gradient_accumulation_steps={self.gradient_accumulation_steps}: adversarial SR training updates the "
                "generator and the discriminator on every batch (MMagic's SRGAN has no accumulation); use 1 and a "
                "larger train_batch_size or more processes instead."
            )
        if self.discriminator_learning_rate is not None and self.discriminator_learning_rate <= 0:
            raise ValueError(f"discriminator_learning_rate must be > 0, got {self.discriminator_learning_rate}.")


class SRGAN(_Update):
    """A super-resolution generator trained against a discriminator, MMagic's ``SRGAN`` / ``ESRGAN``.

    Args:
        generator: an hfmagic ``SuperResolutionPreTrainedModel`` (LR (N, C, h, w) in [0, 1] ->
            ``.reconstruction`` (N, C, sh, sw)).
        discriminator: HR images (N, C, sh, sw) in [0, 1] -> logits (e.g. ``ModifiedVGGDiscriminator``,
            (N, 1), or ``UNetDiscriminatorSN``, (N, 1, sh, sw)).
        pixel_loss: ``"l1"``, ``"mse"`` or ``"charbonnier"``, or None for no pixel term.
        pixel_weight: its weight (ESRGAN: 1e-2; Real-ESRGAN: 1.0).
        perceptual_loss: a ``hfmagic.losses.PerceptualLoss`` (its own weights inside), or None.
        gan_loss: a ``hfmagic.losses.GANLoss`` (its ``loss_weight`` scales the generator's term only).
        relativistic: ESRGAN's relativistic-average terms instead of SRGAN's plain ones.
        disc_steps: the generator steps on every ``disc_steps``-th step only (MMagic ``disc_steps``).
        disc_repeat: discriminator updates per step (MMagic ``disc_repeat``).
        disc_init_steps: steps before the generator's first update (MMagic ``disc_init_steps``).
    """

    function_name = "train_srgan"

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        *,
        pixel_loss: str | None = "l1",
        pixel_weight: float = 1e-2,
        perceptual_loss: nn.Module | None = None,
        gan_loss: nn.Module,
        relativistic: bool = False,
        disc_steps: int = 1,
        disc_repeat: int = 1,
        disc_init_steps: int = 0,
    ):
        from ..models.sr_base import LOSSES, SuperResolutionPreTrainedModel

        if not isinstance(generator, SuperResolutionPreTrainedModel):
            raise TypeError(
                f"The generator must be an hfmagic super-resolution model (SuperResolutionPreTrainedModel), got "
                f"{type(generator).__name__}."
            )
        if not isinstance(discriminator, nn.Module):
            raise TypeError(f"The discriminator must be a torch.nn.Module, got {type(discriminator).__name__}.")
        if gan_loss is None:
            raise ValueError("gan_loss is required: e.g. hfmagic.losses.GANLoss('vanilla', loss_weight=5e-3).")
        if pixel_loss is not None and pixel_loss not in LOSSES:
            raise ValueError(f"Unknown pixel_loss={pixel_loss!r}; choose one of {sorted(LOSSES)} or None.")
        for name, value, least in (("disc_steps", disc_steps, 1), ("disc_repeat", disc_repeat, 1), ("disc_init_steps", disc_init_steps, 0)):
            if not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}.")
        self.generator_module = generator
        self.discriminator_module = discriminator
        self.pixel_loss = LOSSES[pixel_loss] if pixel_loss is not None else None
        self.pixel_loss_name = pixel_loss
        self.pixel_weight = float(pixel_weight)
        self.perceptual_loss = perceptual_loss
        self.gan_loss = gan_loss
        self.relativistic = relativistic
        self.disc_steps, self.disc_repeat, self.disc_init_steps = disc_steps, disc_repeat, disc_init_steps
        self.generator_optimizer: torch.optim.Optimizer | None = None
        self.discriminator_optimizer: torch.optim.Optimizer | None = None
        self.accelerator = None

    # ------------------------------------------------------------------ setup
    def create_optimizers(self, args: SRTrainingArguments) -> None:
        """Adam for each network (MMagic's ESRGAN: 1e-4, (0.9, 0.999) both)."""
        d_lr = getattr(args, "discriminator_learning_rate", None) or args.learning_rate
        betas, eps, decay = (args.adam_beta1, args.adam_beta2), args.adam_epsilon, args.adam_weight_decay
        self.generator_optimizer = torch.optim.Adam(self.generator_module.parameters(), lr=args.learning_rate, betas=betas, eps=eps, weight_decay=decay)
        self.discriminator_optimizer = torch.optim.Adam(self.discriminator_module.parameters(), lr=d_lr, betas=betas, eps=eps, weight_decay=decay)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        if self.generator_optimizer is None:
            raise RuntimeError("Call create_optimizers(args) first (train_srgan does).")
        return {"generator": self.generator_optimizer, "discriminator": self.discriminator_optimizer}

    def prepare(self, accelerator) -> None:
        """Wrap both networks and optimizers (checkpointed in this order); the losses (a frozen VGG)
        move to the device but are not prepared: they are not trained and not saved."""
        self.accelerator = accelerator
        (self.generator_module, self.discriminator_module, self.generator_optimizer, self.discriminator_optimizer) = accelerator.prepare(
            self.generator_module, self.discriminator_module, self.generator_optimizer, self.discriminator_optimizer
        )
        for loss in (self.perceptual_loss, self.gan_loss):
            if loss is not None:
                loss.to(accelerator.device)

    def _unwrap(self, module: nn.Module) -> nn.Module:
        return self.accelerator.unwrap_model(module) if self.accelerator is not None else module

    @property
    def generator(self) -> nn.Module:
        return self._unwrap(self.generator_module)

    @property
    def discriminator(self) -> nn.Module:
        return self._unwrap(self.discriminator_module)

    def train(self) -> None:
        self.generator_module.train()
        self.discriminator_module.train()

    # ------------------------------------------------------------------ the step
    def runs_generator(self, step: int) -> bool:
        """MMagic's ``if_run_g``: every ``disc_steps``-th step, from ``disc_init_steps`` on."""
        return step % self.disc_steps == 0 and step >= self.disc_init_steps

    def generator_losses(self, output: torch.Tensor, gt: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named generator terms (summed for the backward): ``loss_pix``, ``loss_perceptual``,
        ``loss_style``, ``loss_gan``. The discriminator is called unwrapped: it is frozen, and DDP
        must not wait for gradients of its parameters."""
        losses = {}
        if self.pixel_loss is not None:
            losses["loss_pix"] = self.pixel_loss(output, gt) * self.pixel_weight
        if self.perceptual_loss is not None:
            percep, style = self.perceptual_loss(output, gt)
            if percep is not None:
                losses["loss_perceptual"] = percep
            if style is not None:
                losses["loss_style"] = style
        discriminator = self.discriminator
        if self.relativistic:
            from ..losses import relativistic_generator_loss

            # D(real) first, then D(fake), as MMagic (BatchNorm statistics and spectral-norm vectors follow the calls)
            real_pred = discriminator(gt)
            losses["loss_gan"] = relativistic_generator_loss(self.gan_loss, real_pred, discriminator(output))
        else:
            losses["loss_gan"] = self.gan_loss(discriminator(output), True, is_disc=False)
        return losses

    def discriminator_losses(self, output: torch.Tensor, gt: torch.Tensor, check: Callable) -> dict[str, torch.Tensor]:
        """The real term, then the fake term, a backward each (MMagic's ``d_step_real`` /
        ``d_step_fake``); ``output`` is detached. Returns the checked terms."""
        backward = self.accelerator.backward
        d = self.discriminator_module
        if self.relativistic:
            # ESRGAN: each term x0.5, against the other side's mean prediction (without gradient); D runs
            # on the fakes once per term, as MMagic (BatchNorm statistics see the same calls)
            with torch.no_grad():
                fake_pred = d(output)
            real_pred = d(gt)
            loss_real = self.gan_loss(real_pred - fake_pred.mean(), True, is_disc=True) * 0.5
            logs = check({"loss_d_real": loss_real})
            backward(loss_real)
            fake_pred = d(output)
            loss_fake = self.gan_loss(fake_pred - real_pred.detach().mean(), False, is_disc=True) * 0.5
        else:
            loss_real = self.gan_loss(d(gt), True, is_disc=True)
            logs = check({"loss_d_real": loss_real})
            backward(loss_real)
            loss_fake = self.gan_loss(d(output), False, is_disc=True)
        logs.update(check({"loss_d_fake": loss_fake}))
        backward(loss_fake)
        return logs

    def train_step(self, pixel_values, labels, step, check):
        run_generator = self.runs_generator(step)
        with torch.set_grad_enabled(run_generator):  # MMagic runs the generator on every step
            output = self.generator_module(pixel_values=pixel_values).reconstruction
        logs: dict[str, torch.Tensor] = {}
        if run_generator:
            self.discriminator.requires_grad_(False)
            try:
                losses = self.generator_losses(output, labels)
                total = sum(losses.values())
                logs.update(check({**losses, "loss": total}))
                self.accelerator.backward(total)
            finally:
                self.discriminator.requires_grad_(True)
            self.generator_optimizer.step()
            self.generator_optimizer.zero_grad(set_to_none=True)
        output = output.detach()
        for _ in range(self.disc_repeat):
            logs.update(self.discriminator_losses(output, labels, check))
            self.discriminator_optimizer.step()
            self.discriminator_optimizer.zero_grad(set_to_none=True)
        return logs

    # ------------------------------------------------------------------ saving
    def save_extra(self, folder: Path) -> None:
        """The discriminator under ``discriminator/`` (the GAN repo layout), to resume adversarial training."""
        from transformers import PreTrainedModel

        discriminator = self.discriminator
        if isinstance(discriminator, PreTrainedModel):
            # transformers' own save_pretrained: the one card is the generator's, at the root
            PreTrainedModel.save_pretrained(discriminator, Path(folder) / DISCRIMINATOR_SUBFOLDER)
        else:
            from safetensors.torch import save_file

            (Path(folder) / DISCRIMINATOR_SUBFOLDER).mkdir(parents=True, exist_ok=True)
            state = {k: v.detach().contiguous() for k, v in discriminator.state_dict().items()}
            save_file(state, str(Path(folder) / DISCRIMINATOR_SUBFOLDER / "model.safetensors"))

    def card_kwargs(self) -> dict:
        from transformers import PreTrainedModel

        if not isinstance(self.discriminator, PreTrainedModel):
            return {}
        # the card's snippet loads the discriminator from its subfolder too
        return {"discriminator": self.discriminator, "discriminator_subfolder": DISCRIMINATOR_SUBFOLDER}

    def describe(self, args: SRTrainingArguments) -> str:
        terms = []
        if self.pixel_loss is not None:
            terms.append(f"{self.pixel_loss_name} pixel loss x{self.pixel_weight:g}")
        if self.perceptual_loss is not None:
            weights = getattr(self.perceptual_loss, "layer_weights", None)
            terms.append(f"VGG perceptual loss{f' (layers {dict(weights)})' if weights else ''} x{getattr(self.perceptual_loss, 'perceptual_weight', 1.0):g}")
        gan_type = getattr(self.gan_loss, "gan_type", type(self.gan_loss).__name__)
        terms.append(f"{'relativistic-average ' if self.relativistic else ''}{gan_type} GAN loss x{getattr(self.gan_loss, 'loss_weight', 1.0):g}")
        d_lr = getattr(args, "discriminator_learning_rate", None) or args.learning_rate
        return (
            f"adversarial: {', '.join(terms)}; discriminator `{type(self.discriminator).__name__}`, saved under "
            f"`{DISCRIMINATOR_SUBFOLDER}/`; Adam lr {args.learning_rate:g} (discriminator {d_lr:g}), schedule "
            f"`{args.lr_scheduler}`{', EMA weights' if args.use_ema else ''}"
        )


def create_srgan_accelerator(args: SRGANTrainingArguments):
    """The Accelerator :func:`train_srgan` uses: ``create_accelerator``'s, with DDP leaving each rank
    its own buffers (the discriminator's BatchNorm statistics, MMagic's default wrapper)."""
    return create_accelerator(args, broadcast_buffers=False)


def train_srgan(
    srgan: SRGAN,
    train_dataset: Any,
    args: SRGANTrainingArguments,
    eval_sets: dict[str, Any] | None = None,
    *,
    accelerator: Any = None,
    callbacks: Sequence[Callable[[int, dict[str, float]], None]] = (),
) -> SRTrainingResult:
    """Train ``srgan`` on ``train_dataset`` (LR/HR pairs, as ``train_sr``) with ``train_sr``'s loop.

    Returns an ``SRTrainingResult``; ``final/`` (and ``best/``, by validation PSNR) hold the generator
    (EMA weights when ``use_ema``) with its card and the discriminator under ``discriminator/``.
    Checkpoints hold both networks, both optimizers and schedules and the EMA: a killed run resumes
    exactly with ``resume_from_checkpoint="latest"``.
    """
    if not isinstance(srgan, SRGAN):
        raise TypeError(f"train_srgan trains an SRGAN(generator, discriminator, ...), got {type(srgan).__name__}.")
    if not isinstance(args, SRGANTrainingArguments):
        raise TypeError(f"args must be SRGANTrainingArguments, got {type(args).__name__}.")
    owns_accelerator = accelerator is None
    accelerator = accelerator or create_srgan_accelerator(args)
    configure_cpu_threads(accelerator, args.num_threads)
    srgan.create_optimizers(args)
    try:
        return _train(srgan, train_dataset, args, eval_sets, accelerator, callbacks)
    finally:
        if owns_accelerator:
            release_accelerator(accelerator)
