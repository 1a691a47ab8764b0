"""MMagic's GANLoss and the relativistic-average GAN terms of its ESRGAN.

``GANLoss(gan_type)(logits, target_is_real, is_disc)`` per type (``y`` the label tensor filled with
``real_label_val`` or ``fake_label_val``; means over every element):

- ``"vanilla"``: ``BCEWithLogits(x, y)``
- ``"lsgan"``: ``mean((x - y)^2)``; ``"l1"``: ``mean(|x - y|)``
- ``"wgan"``: real ``-mean(x)``, fake ``mean(x)``
- ``"wgan-logistic-ns"`` (MMagic's GANLossComps, StyleGAN2): real ``mean(softplus(-x))``, fake ``mean(softplus(x))``
- ``"hinge"``: discriminator real ``mean(relu(1 - x))``, fake ``mean(relu(1 + x))``; generator ``-mean(x)``
- ``"smgan"`` (inpainting, needs ``mask``): the lsgan terms, the discriminator's fake target being the
  mask blurred by a 71x71 Gaussian (sigma 10)

``loss_weight`` multiplies the generator terms (``is_disc=False``) only.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["GAN_TYPES", "GANLoss", "relativistic_discriminator_losses", "relativistic_generator_loss"]

GAN_TYPES = ("vanilla", "lsgan", "wgan", "wgan-logistic-ns", "hinge", "l1", "smgan")
# Types whose target is the bool itself, not a label tensor.
_SIGN_TYPES = ("wgan", "wgan-logistic-ns")


def _gaussian_kernel(size: int = 71, sigma: float = 10.0) -> torch.Tensor:
    """MMagic's GaussianBlur kernel: outer product of two normalised 1-D Gaussians, (size, size)."""
    offsets = torch.arange(size, dtype=torch.float64) - size // 2
    line = torch.exp(-(offsets**2) / (2 * sigma**2))
    line = line / line.sum()
    return torch.outer(line, line).float()


class GANLoss(nn.Module):
    """MMagic's ``GANLoss``: the adversarial loss of one discriminator output.

    Args:
        gan_type (`str`):
            One of :data:`GAN_TYPES` (formulas in the module docstring).
        real_label_val (`float`, *optional*, defaults to 1.0):
            Target for real samples (vanilla, lsgan, l1, smgan).
        fake_label_val (`float`, *optional*, defaults to 0.0):
            Target for fake samples.
        loss_weight (`float`, *optional*, defaults to 1.0):
            Multiplies the generator's loss (``is_disc=False``); the discriminator's is never weighted.

    Example::

        >>> gan_loss = GANLoss("vanilla", loss_weight=5e-3)
        >>> g_loss = gan_loss(discriminator(fake), target_is_real=True)  # generator term
        >>> d_loss = gan_loss(discriminator(real), True, is_disc=True) + gan_loss(discriminator(fake.detach()), False, is_disc=True)
    """

    def __init__(self, gan_type: str, real_label_val: float = 1.0, fake_label_val: float = 0.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        if gan_type not in GAN_TYPES:
            raise ValueError(f"Unknown gan_type={gan_type!r}; choose one of {list(GAN_TYPES)}.")
        self.gan_type = gan_type
        self.real_label_val = float(real_label_val)
        self.fake_label_val = float(fake_label_val)
        self.loss_weight = float(loss_weight)
        self._blur_kernel = _gaussian_kernel() if gan_type == "smgan" else None

    def extra_repr(self) -> str:
        return (
            f"gan_type={self.gan_type!r}, real_label_val={self.real_label_val}, "
            f"fake_label_val={self.fake_label_val}, loss_weight={self.loss_weight}"
        )

    def get_target_label(self, input: torch.Tensor, target_is_real: bool) -> torch.Tensor | bool:
        """A tensor like ``input`` filled with the real or fake label (the bool itself for the wgan types)."""
        if self.gan_type in _SIGN_TYPES:
            return target_is_real
        return torch.full_like(input, self.real_label_val if target_is_real else self.fake_label_val)

    def _blur(self, mask: torch.Tensor) -> torch.Tensor:
        channels = mask.shape[1]
        kernel = self._blur_kernel.to(mask.device, mask.dtype).expand(channels, 1, *self._blur_kernel.shape)
        return F.conv2d(mask, kernel, padding=self._blur_kernel.shape[-1] // 2, groups=channels)

    def forward(
        self, input: torch.Tensor, target_is_real: bool, is_disc: bool = False, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """input: discriminator logits (any shape); ``target_is_real``: the label to push towards;
        ``is_disc``: the discriminator's loss (no ``loss_weight``); ``mask`` (N, 1, H, W): smgan only.
        Returns a scalar."""
        kind = self.gan_type
        if kind == "hinge":
            if is_disc:
                loss = F.relu(1 - input).mean() if target_is_real else F.relu(1 + input).mean()
            else:
                loss = -input.mean()
        elif kind == "wgan":
            loss = -input.mean() if target_is_real else input.mean()
        elif kind == "wgan-logistic-ns":
            loss = F.softplus(-input).mean() if target_is_real else F.softplus(input).mean()
        elif kind == "smgan":
            loss = self._smgan(input, target_is_real, is_disc, mask)
        else:
            target = self.get_target_label(input, target_is_real)
            if kind == "vanilla":
                loss = F.binary_cross_entropy_with_logits(input, target)
            elif kind == "lsgan":
                loss = F.mse_loss(input, target)
            else:  # l1
                loss = F.l1_loss(input, target)
        return loss if is_disc else loss * self.loss_weight

    def _smgan(self, input: torch.Tensor, target_is_real: bool, is_disc: bool, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            raise ValueError("gan_type='smgan' needs the inpainting mask: call gan_loss(logits, target_is_real, is_disc, mask=mask).")
        if input.shape[2:] != mask.shape[2:]:  # MMagic resizes the logits to the mask
            input = F.interpolate(input, size=mask.shape[2:], mode="bilinear", align_corners=True)
        target = self.get_target_label(input, target_is_real)
        if is_disc:
            if not target_is_real:
                target = self._blur(mask).detach()
            return F.mse_loss(input, target)
        # MMagic weights the (already averaged) loss by mask / mean(mask) and averages again
        return (F.mse_loss(input, target) * mask / mask.mean()).mean()


def relativistic_generator_loss(gan_loss: GANLoss, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """ESRGAN's relativistic-average generator loss (MMagic ``ESRGAN.g_step``)::

        (L(D(fake) - mean(D(real)), real) + L(D(real) - mean(D(fake)), fake)) / 2

    ``L = gan_loss(..., is_disc=False)`` (so ``loss_weight`` applies). ``real_logits`` = D(gt) is
    detached here; ``fake_logits`` = D(output) keeps its graph (the discriminator is frozen in this step),
    and gradients reach the generator through both terms.
    """
    real_logits = real_logits.detach()
    loss_fake = gan_loss(fake_logits - real_logits.mean(), target_is_real=True, is_disc=False)
    loss_real = gan_loss(real_logits - fake_logits.mean(), target_is_real=False, is_disc=False)
    return (loss_fake + loss_real) / 2


def relativistic_discriminator_losses(
    gan_loss: GANLoss, real_logits: torch.Tensor, fake_logits: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """ESRGAN's relativistic-average discriminator terms (MMagic ``ESRGAN.d_step_real`` / ``d_step_fake``)::

        loss_real = L(D(real) - mean(D(fake)).detach(), real) / 2
        loss_fake = L(D(fake) - mean(D(real)).detach(), fake) / 2

    ``L = gan_loss(..., is_disc=True)`` (no ``loss_weight``); ``fake_logits`` must come from the
    detached generator output. Returns ``(loss_real, loss_fake)``; MMagic back-propagates them one
    after the other before one optimizer step, which gives the same gradients as ``loss_real + loss_fake``.
    (MMagic runs D on the fake batch twice, once per term; a single forward gives the same values,
    batch-norm running statistics being updated once instead of twice.)
    """
    loss_real = gan_loss(real_logits - fake_logits.detach().mean(), target_is_real=True, is_disc=True) * 0.5
    loss_fake = gan_loss(fake_logits - real_logits.detach().mean(), target_is_real=False, is_disc=True) * 0.5
    return loss_real, loss_fake

