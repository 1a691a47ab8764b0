"""The super-resolution GANs' discriminators (MMagic's ModifiedVGG, Real-ESRGAN's U-Net with spectral
norm): outputs against functional references written here from the published layer definitions,
shapes, errors, init, save/load in the GAN repo layout (spectral-norm tensors included), cards, and
their conversion from MMagic SRGAN / Real-ESRGAN checkpoints through the function and the CLI."""

import math
import re

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from hfmagic import (
    ModifiedVGGConfig,
    ModifiedVGGDiscriminator,
    MSRResNet,
    MSRResNetConfig,
    UNetDiscriminatorSN,
    UNetDiscriminatorSNConfig,
    convert_checkpoint,
)
from hfmagic.cli import main
from hfmagic.hub import model_card, save_gan_pretrained

ATOL = 1e-5


def randomize(model, seed=0, std=0.1):
    """Random parameters and BatchNorm statistics (spectral norm's u/v stay unit vectors); eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.dtype.is_floating_point:
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
            elif name.endswith(("weight_u", "weight_v")):
                vector = torch.randn(tensor.shape, generator=gen)
                tensor.copy_(vector / vector.norm())
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * std)
    return model.eval()


# ----------------------------------------------------------------------------- references
def modified_vgg_reference(sd, x):
    """MMagic's ModifiedVGG: conv0_0 (3x3, bias) -> lrelu; conv0_1 (4x4/2) + bn0_1 -> lrelu; stages 1-4:
    convK_0 (3x3) + bnK_0 -> lrelu, convK_1 (4x4/2) + bnK_1 -> lrelu; flatten; linear1 -> lrelu; linear2."""
    lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731

    def bn(t, name):
        return F.batch_norm(t, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"], sd[f"{name}.bias"], eps=1e-5)

    h = lrelu(F.conv2d(x, sd["conv0_0.weight"], sd["conv0_0.bias"], padding=1))
    h = lrelu(bn(F.conv2d(h, sd["conv0_1.weight"], stride=2, padding=1), "bn0_1"))
    for k in range(1, 5):
        h = lrelu(bn(F.conv2d(h, sd[f"conv{k}_0.weight"], padding=1), f"bn{k}_0"))
        h = lrelu(bn(F.conv2d(h, sd[f"conv{k}_1.weight"], stride=2, padding=1), f"bn{k}_1"))
    h = lrelu(F.linear(h.reshape(h.shape[0], -1), sd["linear1.weight"], sd["linear1.bias"]))
    return F.linear(h, sd["linear2.weight"], sd["linear2.bias"])


class ReferenceUNet(nn.Module):
    """Real-ESRGAN's UNetDiscriminatorSN from its published definition, spectral norm by
    torch.nn.utils.spectral_norm (so it also runs the power iteration in train mode)."""

    def __init__(self, in_ch, mid, skip=True):
        super().__init__()
        sn = nn.utils.spectral_norm
        self.skip = skip
        self.conv0 = nn.Conv2d(in_ch, mid, 3, 1, 1)
        self.conv1 = sn(nn.Conv2d(mid, mid * 2, 4, 2, 1, bias=False))
        self.conv2 = sn(nn.Conv2d(mid * 2, mid * 4, 4, 2, 1, bias=False))
        self.conv3 = sn(nn.Conv2d(mid * 4, mid * 8, 4, 2, 1, bias=False))
        self.conv4 = sn(nn.Conv2d(mid * 8, mid * 4, 3, 1, 1, bias=False))
        self.conv5 = sn(nn.Conv2d(mid * 4, mid * 2, 3, 1, 1, bias=False))
        self.conv6 = sn(nn.Conv2d(mid * 2, mid, 3, 1, 1, bias=False))
        self.conv7 = sn(nn.Conv2d(mid, mid, 3, 1, 1, bias=False))
        self.conv8 = sn(nn.Conv2d(mid, mid, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(mid, 1, 3, 1, 1)

    def forward(self, x):
        lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
        up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)  # noqa: E731
        x0 = lrelu(self.conv0(x))
        x1 = lrelu(self.conv1(x0))
        x2 = lrelu(self.conv2(x1))
        x3 = lrelu(self.conv3(x2))
        x4 = lrelu(self.conv4(up(x3)))
        x4 = x4 + x2 if self.skip else x4
        x5 = lrelu(self.conv5(up(x4)))
        x5 = x5 + x1 if self.skip else x5
        x6 = lrelu(self.conv6(up(x5)))
        x6 = x6 + x0 if self.skip else x6
        return self.conv9(lrelu(self.conv8(lrelu(self.conv7(x6)))))


def unet_pair(seed=0, mid=4, skip=True):
    ours = randomize(UNetDiscriminatorSN(UNetDiscriminatorSNConfig(mid_channels=mid, skip_connection=skip)), seed)
    reference = ReferenceUNet(3, mid, skip)
    reference.load_state_dict(ours.state_dict())
    return ours, reference.eval()


# ----------------------------------------------------------------------------- ModifiedVGG
def test_modified_vgg_matches_reference_and_mmagic_layout():
    model = randomize(ModifiedVGGDiscriminator(ModifiedVGGConfig(mid_channels=4)), std=0.3)
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 1)
        assert (out - modified_vgg_reference(model.state_dict(), x)).abs().max() < ATOL
    names = [n for n, _ in model.named_children()]
    expected = ["conv0_0", "conv0_1", "bn0_1"] + [f"{p}{k}_{h}" for k in range(1, 5) for h in (0, 1) for p in ("conv", "bn")]
    assert names[: len(expected)] == expected and names[len(expected):] == ["linear1", "linear2", "lrelu"]
    assert model.conv0_0.bias is not None and all(getattr(model, f"conv{k}_1").bias is None for k in range(5))
    assert model.linear1.in_features == 4 * 8 * 4 * 4 and model.lrelu.negative_slope == 0.2
    # MMagic's defaults (in_channels=3, mid_channels=64): 14,499,401 parameters
    assert sum(p.numel() for p in ModifiedVGGDiscriminator(ModifiedVGGConfig()).parameters()) == 14_499_401


def test_modified_vgg_takes_128_pixels_float_images_only():
    model = ModifiedVGGDiscriminator(ModifiedVGGConfig(mid_channels=2))
    with pytest.raises(ValueError, match=r"scores 128x128 images .* got \(64, 64\): crop or resize to 128x128"):
        model(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 3, H, W\), got \(1, 1, 128, 128\)"):
        model(torch.rand(1, 1, 128, 128))
    with pytest.raises(TypeError, match=r"float tensor of images in \[0, 1\], got torch.uint8.*float\(\) / 255"):
        model(torch.zeros(1, 3, 128, 128, dtype=torch.uint8))


def test_modified_vgg_keeps_pytorch_default_init():
    torch.manual_seed(0)
    model = ModifiedVGGDiscriminator(ModifiedVGGConfig())
    for name in ("conv0_0", "conv2_1", "linear1"):  # kaiming_uniform(a=sqrt(5)): U(+-1/sqrt(fan_in))
        layer = model.get_submodule(name)
        bound = 1 / math.sqrt(layer.weight[0].numel())
        assert layer.weight.abs().max() <= bound and layer.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)
    assert torch.all(model.bn3_0.weight == 1) and torch.all(model.bn3_0.bias == 0) and torch.all(model.bn3_0.running_var == 1)


# ----------------------------------------------------------------------------- U-Net with spectral norm
@pytest.mark.parametrize("skip", [True, False])
def test_unet_matches_reference_in_eval_and_train_mode(skip):
    ours, reference = unet_pair(seed=1, skip=skip)
    x = torch.rand(2, 3, 16, 24)
    with torch.no_grad():
        out = ours(x)
        assert out.shape == (2, 1, 16, 24)
        assert (out - reference(x)).abs().max() < ATOL
        ours.train(), reference.train()
        for _ in range(2):  # train mode: one power iteration per forward, u and v updated in place
            assert (ours(x) - reference(x)).abs().max() < ATOL
    for key, value in reference.state_dict().items():
        assert torch.allclose(ours.state_dict()[key], value, atol=1e-6), key
    assert not torch.equal(ours.conv1.weight_u, unet_pair(seed=1, skip=skip)[0].conv1.weight_u)  # they did move


def test_unet_keys_init_and_errors():
    torch.manual_seed(0)
    model = UNetDiscriminatorSN(UNetDiscriminatorSNConfig())
    keys = set(model.state_dict())
    assert {"conv0.weight", "conv0.bias", "conv9.weight", "conv9.bias"} <= keys
    for k in range(1, 9):
        assert {f"conv{k}.weight_orig", f"conv{k}.weight_u", f"conv{k}.weight_v"} <= keys and f"conv{k}.bias" not in keys
        conv = getattr(model, f"conv{k}")
        assert conv.weight_u.norm().item() == pytest.approx(1.0) and conv.weight_v.norm().item() == pytest.approx(1.0)
        bound = 1 / math.sqrt(conv.weight_orig[0].numel())
        assert conv.weight_orig.abs().max() <= bound
    assert sum(p.numel() for p in model.parameters()) == 4_376_897  # Real-ESRGAN's netD
    with pytest.raises(ValueError, match=r"multiples of 8 .* got 20x16: crop to 16x16"):
        model(torch.rand(1, 3, 20, 16))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\), got \(3, 16, 16\)"):
        model(torch.rand(3, 16, 16))


def test_unet_round_trip_keeps_spectral_norm_state(tmp_path):
    """transformers' legacy renaming of '.weight_v' (weight norm) must not touch spectral norm's
    vector, and _init_weights must leave the loaded u/v/weight_orig alone."""
    ours, _ = unet_pair(seed=2)
    x = torch.rand(2, 3, 16, 16)
    ours.train()
    with torch.no_grad():
        ours(x)  # one power iteration: u/v differ from any freshly drawn ones
    ours.eval()
    ours.save_pretrained(tmp_path)
    loaded, info = UNetDiscriminatorSN.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info.values()), info
    for key, value in ours.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), ours(x))
        ours.train(), loaded.train()
        assert torch.equal(loaded(x), ours(x))  # the same power iteration from the same vectors
    assert torch.equal(loaded.conv3.weight_v, ours.conv3.weight_v)


# ----------------------------------------------------------------------------- GAN layout and cards
@pytest.mark.parametrize("disc_cls,cfg_cls,size", [(ModifiedVGGDiscriminator, ModifiedVGGConfig, 128), (UNetDiscriminatorSN, UNetDiscriminatorSNConfig, 64)])
def test_saved_with_an_sr_generator_in_the_gan_layout(tmp_path, disc_cls, cfg_cls, size, monkeypatch):
    generator = MSRResNet(MSRResNetConfig(upscale_factor=2, mid_channels=4, num_blocks=1)).eval()
    discriminator = randomize(disc_cls(cfg_cls(mid_channels=2)), seed=3)
    save_gan_pretrained(generator, discriminator, tmp_path / "gan")
    assert (tmp_path / "gan" / "discriminator" / "model.safetensors").is_file()
    loaded = disc_cls.from_pretrained(tmp_path / "gan", subfolder="discriminator").eval()
    x = torch.rand(1, 3, size, size)
    with torch.no_grad():
        assert torch.equal(loaded(x), discriminator(x))
    card = (tmp_path / "gan" / "README.md").read_text()
    assert f'{disc_cls.__name__}.from_pretrained("{tmp_path / "gan"}", subfolder="discriminator")' in card
    assert "[-1, 1]" not in card and f"torch.rand(2, 3, {size}, {size})   # float in [0, 1]" in card
    (code,) = re.findall(r"```python\n(.*?)```", card, flags=re.S)
    monkeypatch.chdir(tmp_path)
    from PIL import Image

    Image.new("RGB", (6, 5)).save("photo.png")
    namespace = {}
    exec(compile(code, "card-snippet", "exec"), namespace)  # the whole snippet runs, discriminator included
    assert namespace["logits"].shape == ((2, 1) if size == 128 else (2, 1, size, size))
    with pytest.raises(ValueError, match=r"draws 3-channel images but the discriminator scores 1-channel"):
        save_gan_pretrained(generator, disc_cls(cfg_cls(in_channels=1, mid_channels=2)), tmp_path / "bad")


def test_a_discriminators_own_card():
    text = str(model_card(UNetDiscriminatorSN(UNetDiscriminatorSNConfig(mid_channels=2)), repo_id="me/d"))
    assert "\n# UNetDiscriminatorSN GAN discriminator\n" in text and "pipeline_tag" not in text.split("---")[1]
    assert "MMagic's `UNetDiscriminatorWithSpectralNorm`" in text
    assert "- **Input:** `pixel_values` (N, 3, H, W) with H and W multiples of 8, float in [0, 1]" in text
    assert 'UNetDiscriminatorSN.from_pretrained("me/d")' in text and "(N, 1, H, W)" in text
    with pytest.raises(ValueError, match="discriminator's card holds no evaluation results"):
        model_card(ModifiedVGGDiscriminator(ModifiedVGGConfig(mid_channels=2)), metrics=[{"dataset": "x", "name": "PSNR", "value": 1}])


# ----------------------------------------------------------------------------- conversion
def srgan_checkpoint(generator, discriminator, mmagic_unet_names=False, ema=None):
    """MMagic's SRGAN / Real-ESRGAN checkpoint: generator.*, generator_ema.module.*, discriminator.*
    (MMagic names the U-Net's layers conv_0 ... conv_9)."""
    state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    if ema is not None:
        state.update({f"generator_ema.module.{k}": v for k, v in ema.state_dict().items()})
    for key, value in discriminator.state_dict().items():
        key = re.sub(r"^conv(\d)\.", r"conv_\1.", key) if mmagic_unet_names else key
        state[f"discriminator.{key}"] = value
    state["perceptual_loss.vgg.0.weight"] = torch.zeros(2)
    return {"meta": {"mmagic_version": "1.2.0"}, "state_dict": state}


def _generator(seed):
    return randomize(MSRResNet(MSRResNetConfig(upscale_factor=4, mid_channels=4, num_blocks=1)), seed)


def test_srgan_checkpoint_converts_generator_and_modified_vgg(tmp_path, capsys):
    generator, ema = _generator(10), _generator(11)
    discriminator = randomize(ModifiedVGGDiscriminator(ModifiedVGGConfig(mid_channels=4)), seed=12, std=0.3)
    path = tmp_path / "srgan.pth"
    torch.save(srgan_checkpoint(generator, discriminator, ema=ema), path)
    x, images = torch.rand(1, 3, 5, 6), torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        expected = modified_vgg_reference(discriminator.state_dict(), images)
        # the Python API: the SR model as before; the pair with return_discriminator=True
        model = convert_checkpoint(path, tmp_path / "fn")
        assert type(model) is MSRResNet
        assert (model(x).reconstruction - ema(x).reconstruction).abs().max() < ATOL
        g, d = convert_checkpoint(path, return_discriminator=True, ema=False)
        assert (g(x).reconstruction - generator(x).reconstruction).abs().max() < ATOL
        assert type(d) is ModifiedVGGDiscriminator and not d.training and (d(images) - expected).abs().max() < ATOL
        assert main(["convert", str(path), str(tmp_path / "cli")]) == 0
        assert "Converted its discriminator, ModifiedVGG (in_channels=3, mid_channels=4)" in capsys.readouterr().err
        for folder in (tmp_path / "fn", tmp_path / "cli"):
            assert (MSRResNet.from_pretrained(folder)(x).reconstruction - ema(x).reconstruction).abs().max() < ATOL
            d = ModifiedVGGDiscriminator.from_pretrained(folder, subfolder="discriminator")
            assert (d(images) - expected).abs().max() < ATOL
            assert 'subfolder="discriminator"' in (folder / "README.md").read_text()


@pytest.mark.parametrize("mmagic_names", [True, False])
def test_real_esrgan_checkpoint_converts_the_unet(tmp_path, mmagic_names):
    generator = _generator(20)
    discriminator, reference = unet_pair(seed=21)
    path = tmp_path / "real_esrgan.pth"
    torch.save(srgan_checkpoint(generator, discriminator, mmagic_unet_names=mmagic_names), path)
    images = torch.rand(2, 3, 16, 16)
    g, d = convert_checkpoint(path, tmp_path / "fn", return_discriminator=True)
    assert main(["convert", str(path), str(tmp_path / "cli")]) == 0
    with torch.no_grad():
        expected = reference(images)
        assert type(d) is UNetDiscriminatorSN and (d(images) - expected).abs().max() < ATOL
        for folder in (tmp_path / "fn", tmp_path / "cli"):
            loaded = UNetDiscriminatorSN.from_pretrained(folder, subfolder="discriminator")
            assert (loaded(images) - expected).abs().max() < ATOL
            assert loaded.config.mid_channels == 4 and loaded.config.skip_connection is True


def test_unrecognised_or_broken_discriminators(tmp_path, capsys, caplog):
    generator = _generator(30)
    # keys no registered discriminator recognises: skipped and logged, as before
    ckpt = srgan_checkpoint(generator, nn.Conv2d(3, 2, 3))
    assert main(["convert", str(torch.save(ckpt, tmp_path / "a.pth") or tmp_path / "a.pth"), str(tmp_path / "a")]) == 0
    assert "Skipped the discriminator (2 tensors): only the generator of MSRResNet is converted." in capsys.readouterr().err
    assert not (tmp_path / "a" / "discriminator").exists()
    assert convert_checkpoint(ckpt, return_discriminator=True)[1] is None
    # a recognised one with a missing tensor: an error naming it in the checkpoint's names
    broken = srgan_checkpoint(generator, UNetDiscriminatorSN(UNetDiscriminatorSNConfig(mid_channels=2)), mmagic_unet_names=True)
    del broken["state_dict"]["discriminator.conv_5.weight_u"]
    with pytest.raises(ValueError, match=r"missing keys: discriminator\.conv_5\.weight_u"):
        convert_checkpoint(broken)
    # ModifiedVGG built for another input size
    vgg = ModifiedVGGDiscriminator(ModifiedVGGConfig(mid_channels=2))
    vgg.linear1 = nn.Linear(2 * 8 * 8 * 8, 100)
    with pytest.raises(ValueError, match=r"discriminator\.linear1\.weight takes 1024 features, not 2\*8\*4\*4 = 256"):
        convert_checkpoint(srgan_checkpoint(generator, vgg))


def test_loading_the_wrong_network_of_an_srgan_folder_says_where_each_is(tmp_path):
    from hfmagic import SuperResolutionPipeline

    generator = MSRResNet(MSRResNetConfig(upscale_factor=2, mid_channels=4, num_blocks=1))
    save_gan_pretrained(generator, ModifiedVGGDiscriminator(ModifiedVGGConfig(mid_channels=2)), tmp_path)
    with pytest.raises(ValueError, match=r"saved as ModifiedVGGDiscriminator .*not MSRResNet.*subfolder='discriminator'"):
        MSRResNet.from_pretrained(tmp_path / "discriminator")
    with pytest.raises(ValueError, match=r"saved as MSRResNet.*ModifiedVGGDiscriminator.from_pretrained\(path, subfolder='discriminator'\)"):
        ModifiedVGGDiscriminator.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"is a GAN discriminator \(ModifiedVGGDiscriminator\).*load the repo's root"):
        SuperResolutionPipeline.from_pretrained(tmp_path / "discriminator", device="cpu")
