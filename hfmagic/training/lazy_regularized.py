"""A GAN with lazy R1 and path-length regularisation: MMagic's StyleGAN2 training recipe on the GAN loop.

:class:`LazyRegularizedGAN` is a :class:`~hfmagic.training.GAN` with

- the non-saturating logistic loss: D minimises ``softplus(D(G(z))) + softplus(-D(x))``, G
  minimises ``softplus(-D(G(z)))`` (means over the batch);
- lazy R1 on the real images: every ``r1_interval``-th iteration (``iteration % r1_interval == 0``,
  MMagic's test on its 0-based iteration) the discriminator's loss gets
  ``r1_weight * r1_interval * R1`` with ``R1 = E_n[sum_{c,h,w} (dD(x_n)/dx_n)^2]`` (MMagic's
  ``r1_gradient_penalty_loss(norm_mode="HWC")``; "pixel": ``E_{n,h,w}[sum_c (...)^2]``);
- lazy path-length regularisation: every ``pl_interval``-th generator turn the generator's loss
  gets ``pl_weight * pl_interval * E_n[(l_n - a)^2]`` on ``N // pl_batch_shrink`` extra samples,
  with ``l_n = sqrt(mean_layers ||J_n^T y_n||^2)``, ``J_n`` the Jacobian of the image with respect
  to the per-layer latents, ``y_n ~ N(0, I) / sqrt(H W)``, and ``a`` the running mean updated as
  ``a <- a + decay (mean_n l_n - a)`` before the penalty (MMagic's ``gen_path_regularizer``,
  gradient through the new mean included). Each process keeps its own ``a`` (MMagic's
  ``sync_mean_buffer=False``); all of them are saved in the checkpoints.

Every random draw of the training (z, style mixing, the injected noise maps, ``y``) comes from the
checkpointed ``noise_generator``, so a resumed run is exact. The generator must take MMagic's
style-based arguments: ``generator(None, num_batches=n, generator=g)`` draws its own styles (mixing
them with its ``mix_prob`` in training), ``generator(z, generator=g)`` takes z,
``return_latent_only=True`` returns the (N, L, D) per-layer latents, ``input_is_latent=True``
takes them back, and ``randomize_noise=False`` uses its stored noise maps (the sample grids).

The lazy-regularisation correction of Adam (fewer, larger regularisation steps) is
:func:`lazy_regularization_adam`; the EMA's half-life in images is :func:`ema_momentum_for_half_life`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .gan import GAN

__all__ = [
    "LazyRegularizedGAN",
    "ema_momentum_for_half_life",
    "lazy_regularization_adam",
    "path_length_penalty",
    "path_lengths",
    "r1_penalty",
]


def lazy_regularization_adam(learning_rate: float, betas: tuple[float, float], interval: int) -> tuple[float, tuple[float, float]]:
    """Adam settings for a network regularised every ``interval`` steps (StyleGAN2's correction,
    MMagic's configs): with ``c = interval / (interval + 1)``, lr ``* c`` and betas ``** c``.
    E.g. (0.002, (0, 0.99), 16) -> (0.002 * 16/17, (0, 0.99^(16/17))). ``interval`` 1: unchanged."""
    if not isinstance(interval, int) or interval < 1:
        raise ValueError(f"interval must be an integer >= 1, got {interval!r}.")
    ratio = interval / (interval + 1) if interval > 1 else 1.0
    return learning_rate * ratio, (betas[0] ** ratio, betas[1] ** ratio)


def ema_momentum_for_half_life(half_life_kimg: float, global_batch_size: int) -> float:
    """EMA momentum (weight of the new weights, updated every iteration) that halves an old
    weight's share every ``half_life_kimg`` thousand images: ``1 - 0.5^(batch / (1000 half_life))``.
    MMagic's StyleGAN2 configs: half-life 10 kimg at batch 32 (4 x 8 GPUs) -> 1 - 0.5^(32/10000)."""
    if half_life_kimg <= 0 or global_batch_size < 1:
        raise ValueError(f"half_life_kimg must be > 0 and global_batch_size >= 1, got {half_life_kimg}, {global_batch_size}.")
    return 1.0 - 0.5 ** (global_batch_size / (half_life_kimg * 1000.0))


def r1_penalty(discriminator: nn.Module, real: torch.Tensor, norm_mode: str = "HWC") -> torch.Tensor:
    """R1 (Mescheder et al. 2018) on ``real`` (N, C, H, W): the squared gradient of D's output with
    respect to its input, with a graph (so that it is trained on). "HWC":
    ``E_n[sum_{c,h,w} g^2]``; "pixel": ``E_{n,h,w}[sum_c g^2]`` (MMagic's two norm modes)."""
    if norm_mode not in ("HWC", "pixel"):
        raise ValueError(f"norm_mode must be 'HWC' (StyleGAN2) or 'pixel', got {norm_mode!r}.")
    real = real.detach().clone().requires_grad_(True)
    logits = discriminator(real)
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    if norm_mode == "HWC":
        return grad.pow(2).flatten(1).sum(1).mean()
    return grad.pow(2).sum(1).mean()


def path_lengths(fake: torch.Tensor, latent: torch.Tensor, y: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample path lengths (N,): ``sqrt(mean_l ||d(sum fake * y) / d latent[:, l]||^2)`` with
    ``fake`` (N, C, H, W) made from ``latent`` (N, L, D) in the current graph, and ``y`` (like
    ``fake``; default ``N(0, I) / sqrt(H W)`` drawn on CPU with ``generator``). Differentiable."""
    if y is None:
        y = torch.randn(fake.shape, generator=generator).to(fake.device, fake.dtype) / math.sqrt(fake.shape[2] * fake.shape[3])
    (grad,) = torch.autograd.grad((fake * y).sum(), latent, create_graph=True)
    return grad.pow(2).sum(2).mean(1).sqrt()


def path_length_penalty(lengths: torch.Tensor, mean: torch.Tensor, decay: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """(penalty, new running mean): ``a' = a + decay (mean(lengths) - a)``, ``penalty = mean((lengths - a')^2)``
    (MMagic: the penalty's gradient also flows through ``a'``); the returned ``a'`` is detached."""
    new_mean = mean + decay * (lengths.mean() - mean)
    return (lengths - new_mean).pow(2).mean(), new_mean.detach()


class _PerProcessValue:
    """A float per process (the path-length mean), all saved in the main process's checkpoint file
    (accelerate calls ``state_dict`` on every rank but writes the main one's)."""

    def __init__(self, accelerator, value: float = 0.0):
        self.accelerator = accelerator
        self.value = torch.tensor(float(value), device=accelerator.device)

    def state_dict(self) -> dict:
        from accelerate.utils import gather_object

        values = [float(self.value)]
        return {"values": gather_object(values) if self.accelerator.num_processes > 1 else values}

    def load_state_dict(self, state: dict) -> None:
        values = state["values"]
        if len(values) != self.accelerator.num_processes:
            raise ValueError(
                f"This checkpoint was written by {len(values)} process(es); resume it with the same number of processes "
                f"(now {self.accelerator.num_processes})."
            )
        self.value = torch.tensor(values[self.accelerator.process_index], device=self.accelerator.device)


class LazyRegularizedGAN(GAN):
    """A style-based GAN trained with MMagic's StyleGAN2 recipe (see the module docstring).

    Args:
        generator, discriminator: the networks (the generator with MMagic's style-based forward).
        r1_weight: R1 weight per iteration (gamma / 2; MMagic 10 / 2); applied as
            ``r1_weight * r1_interval`` (MMagic's ``r1_loss_weight`` 80) every ``r1_interval``
            iterations. 0: no R1.
        r1_interval: MMagic's ``d_reg_interval`` 16.
        r1_norm_mode: "HWC" (MMagic's StyleGAN2) or "pixel".
        pl_weight: path-length weight per generator turn (MMagic 2); applied as ``pl_weight *
            pl_interval`` (MMagic's ``g_reg_weight`` 8) every ``pl_interval`` turns. 0: none.
        pl_interval: MMagic's ``g_reg_interval`` 4.
        pl_decay: the running mean's decay (0.01).
        pl_batch_shrink: the path-length batch is ``max(1, N // pl_batch_shrink)`` (2).
        mix_styles: the fakes of the adversarial losses are drawn by the generator itself, so
            style mixing applies with its ``mix_prob`` (the official StyleGAN2); False: one z per
            fake, as MMagic's ``train_step`` (which mixes only in the path-length batch).
        **gan_kwargs: :class:`~hfmagic.training.GAN`'s (steps, accumulation, ``ema_momentum``, ``ema_start``).
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        *,
        r1_weight: float = 5.0,
        r1_interval: int = 16,
        r1_norm_mode: str = "HWC",
        pl_weight: float = 2.0,
        pl_interval: int = 4,
        pl_decay: float = 0.01,
        pl_batch_shrink: int = 2,
        mix_styles: bool = True,
        **gan_kwargs,
    ):
        super().__init__(generator, discriminator, **gan_kwargs)
        for name, value in (("r1_interval", r1_interval), ("pl_interval", pl_interval), ("pl_batch_shrink", pl_batch_shrink)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
        for name, value in (("r1_weight", r1_weight), ("pl_weight", pl_weight)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0 (0: off), got {value}.")
        if not 0.0 < pl_decay <= 1.0:
            raise ValueError(f"pl_decay must be in (0, 1], got {pl_decay} (MMagic: 0.01).")
        if r1_norm_mode not in ("HWC", "pixel"):
            raise ValueError(f"r1_norm_mode must be 'HWC' (StyleGAN2) or 'pixel', got {r1_norm_mode!r}.")
        self.r1_weight, self.r1_interval, self.r1_norm_mode = float(r1_weight), r1_interval, r1_norm_mode
        self.pl_weight, self.pl_interval, self.pl_decay, self.pl_batch_shrink = float(pl_weight), pl_interval, pl_decay, pl_batch_shrink
        self.mix_styles = mix_styles
        self.path_length_mean: _PerProcessValue | None = None
        self._iteration = 0

    def prepare(self, accelerator, generator_optimizer, discriminator_optimizer, seed: int = 0) -> None:
        """As :meth:`GAN.prepare`, and registers the path-length running mean for checkpointing."""
        super().prepare(accelerator, generator_optimizer, discriminator_optimizer, seed)
        self.path_length_mean = _PerProcessValue(accelerator)
        accelerator.register_for_checkpointing(self.path_length_mean)

    # ------------------------------------------------------------------ schedule
    def r1_due(self, iteration: int) -> bool:
        """R1 on this (0-based) iteration: MMagic's ``iteration % r1_interval == 0``."""
        return self.r1_weight > 0 and iteration % self.r1_interval == 0

    def path_length_due(self, iteration: int) -> bool:
        """Path length on this iteration's generator turn: every ``pl_interval``-th turn from the first
        (with one discriminator step per iteration, MMagic's ``iteration % pl_interval == 0``)."""
        if self.pl_weight <= 0 or not self.is_generator_iteration(iteration):
            return False
        turn = (iteration + 1) // (self.discriminator_steps * self.discriminator_accumulation_steps) - 1
        return turn % self.pl_interval == 0

    def train_step(self, batch: dict, iteration: int, max_iterations: int | None = None) -> dict[str, torch.Tensor]:
        self._iteration = iteration
        logs = super().train_step(batch, iteration, max_iterations)
        if self.path_length_due(iteration):
            logs["path_length_mean"] = self.path_length_mean.value.detach().clone()
        return logs

    # ------------------------------------------------------------------ hooks
    def _rng(self) -> torch.Generator | None:
        return self.noise_generator.generator if self.noise_generator else None

    def generate(self, module: nn.Module, num_batches: int) -> torch.Tensor:
        """``num_batches`` training fakes from ``module`` (the generator, wrapped or not), all draws
        from the checkpointed noise generator."""
        if self.mix_styles:
            return module(None, num_batches=num_batches, generator=self._rng())
        return module(self.sample_noise(num_batches), generator=self._rng())

    def discriminator_loss(self, real_logits, fake_logits, real, fake) -> dict[str, torch.Tensor]:
        """Non-saturating logistic loss: ``softplus(D(G(z)))`` and ``softplus(-D(x))``, batch means."""
        return {"loss_disc_fake": F.softplus(fake_logits).mean(), "loss_disc_real": F.softplus(-real_logits).mean()}

    def generator_loss(self, fake_logits, fake) -> dict[str, torch.Tensor]:
        """Non-saturating logistic loss: ``softplus(-D(G(z)))``, batch mean."""
        return {"loss_gen": F.softplus(-fake_logits).mean()}

    def train_discriminator(self, batch: dict) -> dict[str, torch.Tensor]:
        """The adversarial terms, plus ``loss_r1_gp`` on R1 iterations (a third D call, on the reals)."""
        real = batch["pixel_values"]
        with torch.no_grad():
            fake = self.generate(self.unwrapped_generator, real.shape[0])
        fake_logits = self.discriminator(fake)
        real_logits = self.discriminator(real)
        losses = self.discriminator_loss(real_logits, fake_logits, real, fake)
        if self.r1_due(self._iteration):
            penalty = r1_penalty(self.discriminator, real, self.r1_norm_mode)
            losses["loss_r1_gp"] = self.r1_weight * self.r1_interval * penalty
        return losses

    def train_generator(self, batch: dict) -> dict[str, torch.Tensor]:
        """The adversarial term, plus ``loss_path_regular`` on path-length turns."""
        num = batch["pixel_values"].shape[0]
        fake = self.generate(self.generator, num)
        losses = self.generator_loss(self.unwrapped_discriminator(fake), fake)
        if self.path_length_due(self._iteration):
            # the per-layer latents, then the images made from them: two calls rather than MMagic's one
            # (return_latents=True), since under mixed precision accelerate returns fp32 copies of a
            # forward's outputs, and a copy of the latents is not in the images' graph
            latent = self.generator(None, num_batches=max(1, num // self.pl_batch_shrink), return_latent_only=True, generator=self._rng())
            fake_pl = self.generator(latent, input_is_latent=True, generator=self._rng())
            lengths = path_lengths(fake_pl, latent, generator=self._rng())
            penalty, self.path_length_mean.value = path_length_penalty(lengths.float(), self.path_length_mean.value, self.pl_decay)
            losses["loss_path_regular"] = self.pl_weight * self.pl_interval * penalty
        return losses

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def sample(self, noise: torch.Tensor) -> torch.Tensor:
        """Images from ``noise`` with the inference generator in eval mode and its stored noise maps
        (``randomize_noise=False``): the sample grids of a run show the same z and noise every time."""
        generator = self.inference_generator
        was_training = generator.training
        generator.eval()
        try:
            return generator(noise.to(self.device), randomize_noise=False).float()
        finally:
            generator.train(was_training)

    def card_details(self) -> str:
        parts = ", non-saturating logistic loss"
        if self.r1_weight:
            parts += (
                f", lazy R1 ({self.r1_norm_mode}) weight {self.r1_weight:g} x {self.r1_interval} every {self.r1_interval} iterations"
            )
        if self.pl_weight:
            parts += (
                f", lazy path-length regularisation weight {self.pl_weight:g} x {self.pl_interval} every {self.pl_interval} "
                f"generator steps (decay {self.pl_decay:g}, batch / {self.pl_batch_shrink})"
            )
        return parts + (", style mixing" if self.mix_styles else "")
