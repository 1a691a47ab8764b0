"""GANLoss, ESRGAN's relativistic-average terms and the pixel losses (hfmagic/losses/gan.py, pixel.py),
against the formulas of MMagic's GANLoss / ESRGAN written out here."""

import math

import pytest
import torch
from torch.nn import functional as F

import hfmagic
from hfmagic.losses import (
    GAN_TYPES,
    PIXEL_LOSSES,
    GANLoss,
    PerceptualLoss,
    charbonnier_loss,
    pixel_loss,
    relativistic_discriminator_losses,
    relativistic_generator_loss,
)
from hfmagic.models.sr_base import LOSSES


@pytest.fixture
def logits():
    return torch.tensor([[-2.0, -0.5], [0.3, 1.7]])


def bce(x, y):  # binary cross-entropy of logits, element-wise mean
    p = 1 / (1 + torch.exp(-x))
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()


def softplus(x):
    return torch.log1p(torch.exp(x))


@pytest.mark.parametrize(
    "gan_type, real, fake",
    [
        ("vanilla", lambda x: bce(x, 0.9), lambda x: bce(x, 0.1)),
        ("lsgan", lambda x: ((x - 0.9) ** 2).mean(), lambda x: ((x - 0.1) ** 2).mean()),
        ("l1", lambda x: (x - 0.9).abs().mean(), lambda x: (x - 0.1).abs().mean()),
        ("wgan", lambda x: -x.mean(), lambda x: x.mean()),
        ("wgan-logistic-ns", lambda x: softplus(-x).mean(), lambda x: softplus(x).mean()),
    ],
)
def test_gan_loss_values_and_weight_on_the_generator_only(gan_type, real, fake, logits):
    loss = GANLoss(gan_type, real_label_val=0.9, fake_label_val=0.1, loss_weight=0.25)
    for target_is_real, formula in ((True, real), (False, fake)):
        torch.testing.assert_close(loss(logits, target_is_real, is_disc=True), formula(logits))
        torch.testing.assert_close(loss(logits, target_is_real), 0.25 * formula(logits))


def test_hinge(logits):
    loss = GANLoss("hinge", loss_weight=3.0)
    torch.testing.assert_close(loss(logits, True, is_disc=True), torch.clamp(1 - logits, min=0).mean())
    torch.testing.assert_close(loss(logits, False, is_disc=True), torch.clamp(1 + logits, min=0).mean())
    for target_is_real in (True, False):  # the generator's hinge term ignores the label
        torch.testing.assert_close(loss(logits, target_is_real), -3.0 * logits.mean())


def test_default_labels_and_target_label(logits):
    loss = GANLoss("vanilla")
    torch.testing.assert_close(loss(logits, True), bce(logits, 1.0))
    torch.testing.assert_close(loss(logits, False, is_disc=True), bce(logits, 0.0))
    assert torch.equal(GANLoss("lsgan", fake_label_val=-1.0).get_target_label(logits, False), torch.full((2, 2), -1.0))
    assert GANLoss("wgan").get_target_label(logits, True) is True


def test_smgan_blurs_the_mask_for_fake_targets():
    torch.manual_seed(0)
    x = torch.randn(1, 1, 4, 4)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:6, 3:7] = 1.0
    loss = GANLoss("smgan", real_label_val=1.0, fake_label_val=0.0, loss_weight=2.0)
    resized = F.interpolate(x, size=(8, 8), mode="bilinear", align_corners=True)  # logits follow the mask's size
    # MMagic's GaussianBlur: 71x71, sigma 10, normalised 1-D Gaussians' outer product, zero padding 35
    g = torch.tensor([math.exp(-((i - 35) ** 2) / 200.0) for i in range(71)])
    g = g / g.sum()
    blurred = F.conv2d(mask, torch.outer(g, g)[None, None], padding=35)
    torch.testing.assert_close(loss(x, True, is_disc=True, mask=mask), ((resized - 1) ** 2).mean())
    torch.testing.assert_close(loss(x, False, is_disc=True, mask=mask), ((resized - blurred) ** 2).mean())
    torch.testing.assert_close(loss(x, True, mask=mask), 2.0 * ((resized - 1) ** 2).mean())
    with pytest.raises(ValueError, match="needs the inpainting mask"):
        loss(x, True)


def test_unknown_gan_type():
    with pytest.raises(ValueError, match=r"Unknown gan_type='relativistic'.*vanilla"):
        GANLoss("relativistic")
    assert set(GAN_TYPES) == {"vanilla", "lsgan", "wgan", "wgan-logistic-ns", "hinge", "l1", "smgan"}


def test_relativistic_generator_loss_is_esrgan_g_step():
    real = torch.tensor([[0.5], [-1.0], [2.0]], requires_grad=True)
    fake = torch.tensor([[0.1], [0.4], [-0.3]], requires_grad=True)
    gan_loss = GANLoss("vanilla", loss_weight=5e-3)
    loss = relativistic_generator_loss(gan_loss, real, fake)
    r, f = real.detach(), fake.detach()
    expected = 5e-3 * (bce(f - r.mean(), 1.0) + bce(r - f.mean(), 0.0)) / 2
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert real.grad is None  # D(gt) is detached
    # the generator gets gradient through both terms: d/df of the formula with r fixed
    f_var = f.clone().requires_grad_()
    (5e-3 * (bce(f_var - r.mean(), 1.0) + bce(r - f_var.mean(), 0.0)) / 2).backward()
    torch.testing.assert_close(fake.grad, f_var.grad)


def test_relativistic_discriminator_losses_are_esrgan_d_steps():
    real = torch.tensor([[0.5], [-1.0], [2.0]], requires_grad=True)
    fake = torch.tensor([[0.1], [0.4], [-0.3]], requires_grad=True)
    gan_loss = GANLoss("vanilla", loss_weight=5e-3)  # not applied to the discriminator
    loss_real, loss_fake = relativistic_discriminator_losses(gan_loss, real, fake)
    r, f = real.detach(), fake.detach()
    torch.testing.assert_close(loss_real, 0.5 * bce(r - f.mean(), 1.0))
    torch.testing.assert_close(loss_fake, 0.5 * bce(f - r.mean(), 0.0))
    loss_real.backward()
    assert fake.grad is None and real.grad is not None  # each term differentiates its own logits only
    real.grad = None
    loss_fake.backward()
    assert real.grad is None and fake.grad is not None


def test_pixel_losses():
    pred, target = torch.tensor([0.0, 0.5, 1.0]), torch.tensor([0.25, 0.5, 0.0])
    torch.testing.assert_close(pixel_loss("l1")(pred, target), torch.tensor(1.25 / 3))
    torch.testing.assert_close(pixel_loss("mse")(pred, target), torch.tensor((0.0625 + 1.0) / 3))
    torch.testing.assert_close(pixel_loss("charbonnier")(pred, target), torch.sqrt((pred - target) ** 2 + 1e-12).mean())
    assert pixel_loss("charbonnier") is charbonnier_loss
    assert PIXEL_LOSSES is LOSSES  # the SR models' config.loss_type names the same functions
    with pytest.raises(ValueError, match=r"Unknown pixel loss 'huber'.*charbonnier"):
        pixel_loss("huber")


def test_top_level_exports():
    assert hfmagic.PerceptualLoss is PerceptualLoss and hfmagic.GANLoss is GANLoss
