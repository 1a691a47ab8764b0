"""Conversion of MMagic / BasicSR checkpoints: fake checkpoints are built here from hfmagic models
with random weights (keys renamed to each codebase's names), saved with torch.save, converted
through the function and the CLI, reloaded with from_pretrained and compared output for output."""

import pytest
import torch
from torch.nn import functional as F

from hfmagic import (
    EDSR,
    SRCNN,
    DCGANConfig,
    DCGANDiscriminator,
    DCGANGenerator,
    EDSRConfig,
    MSRResNet,
    MSRResNetConfig,
    SRCNNConfig,
    convert_checkpoint,
)
from hfmagic.cli import main
from hfmagic.models import conversion_specs
from tiny_configs import HFMAGIC_MODELS, tiny_model

ATOL = 1e-6


# ----------------------------------------------------------------------------- fake checkpoints
def randomize(model, seed=0, std=0.1):
    """Fill every float tensor (parameters and BatchNorm statistics) with random values; eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.dtype.is_floating_point:
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * std)
    return model.eval()


def mmagic_checkpoint(generator, ema=None, discriminator=None, extra=None):
    """An MMagic/MMEngine checkpoint: prefixed keys under 'state_dict', plus 'meta'."""
    state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    if ema is not None:
        state.update({f"generator_ema.module.{k}": v for k, v in ema.state_dict().items()})
        state["generator_ema.steps"] = torch.tensor([1234])
    if discriminator is not None:
        state.update({f"discriminator.{k}": v for k, v in discriminator.state_dict().items()})
    state.update(extra or {})
    return {"meta": {"mmagic_version": "1.2.0", "epoch": 1, "iter": 5000}, "state_dict": state}


def to_basicsr_names(arch, state):
    """hfmagic (= MMagic) names -> BasicSR 1.4 names, written out by hand for the test."""
    out = {}
    for key, value in state.items():
        if arch == "msrresnet":
            key = key.replace("trunk_net.", "body.").replace("upsample1.upsample_conv.", "upconv1.")
            key = key.replace("upsample2.upsample_conv.", "upconv2.")
        elif arch == "edsr" and key.startswith("upsample."):
            _, stage, _, param = key.split(".")  # upsample.{i}.upsample_conv.{param}
            key = f"upsample.{2 * int(stage)}.{param}"  # Sequential(conv, PixelShuffle, conv, ...)
        out[key] = value.clone()
    return out


def save(tmp_path, obj, name="ckpt.pth"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


def convert_both(path, out_root, arch, *flags, **kwargs):
    """Convert with the Python function and with the CLI; returns both output folders."""
    fn_dir, cli_dir = out_root / "fn", out_root / "cli"
    convert_checkpoint(path, fn_dir, arch=arch, **kwargs)
    assert main(["convert", str(path), str(cli_dir), "--arch", arch, *flags]) == 0
    return fn_dir, cli_dir


# ----------------------------------------------------------------------------- reference forwards
def _conv(params, name, x):
    weight = params[f"{name}.weight"]
    return F.conv2d(x, weight, params[f"{name}.bias"], padding=weight.shape[-1] // 2)


def _blocks(params, prefix, x):
    i = 0
    while f"{prefix}.{i}.conv1.weight" in params:
        x = x + _conv(params, f"{prefix}.{i}.conv2", F.relu(_conv(params, f"{prefix}.{i}.conv1", x)))
        i += 1
    return x


def basicsr_msrresnet(params, x, scale):
    """BasicSR's MSRResNet forward: LeakyReLU(0.1) after every pixel shuffle."""
    lrelu = lambda t: F.leaky_relu(t, 0.1)  # noqa: E731
    out = _blocks(params, "body", lrelu(_conv(params, "conv_first", x)))
    if scale == 4:
        out = lrelu(F.pixel_shuffle(_conv(params, "upconv1", out), 2))
        out = lrelu(F.pixel_shuffle(_conv(params, "upconv2", out), 2))
    else:
        out = lrelu(F.pixel_shuffle(_conv(params, "upconv1", out), scale))
    out = _conv(params, "conv_last", lrelu(_conv(params, "conv_hr", out)))
    return out + F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


def basicsr_edsr(params, x, img_range=255.0):
    """BasicSR's EDSR forward: (x - mean) * img_range ... / img_range + mean."""
    mean = torch.tensor((0.4488, 0.4371, 0.4040)).view(1, 3, 1, 1)
    feat = _conv(params, "conv_first", (x - mean) * img_range)
    out = _conv(params, "conv_after_body", _blocks(params, "body", feat)) + feat
    i = 0
    while f"upsample.{i}.weight" in params:
        conv = _conv(params, f"upsample.{i}", out)
        out = F.pixel_shuffle(conv, round((conv.shape[1] / out.shape[1]) ** 0.5))
        i += 2
    return _conv(params, "conv_last", out) / img_range + mean


def assert_close(a, b):
    assert a.shape == b.shape
    assert (a - b).abs().max().item() <= ATOL


# ----------------------------------------------------------------------------- MMagic SR
SR_CASES = [
    ("msrresnet", MSRResNet, MSRResNetConfig, {"mid_channels": 8, "num_blocks": 3}, 2),
    ("msrresnet", MSRResNet, MSRResNetConfig, {"mid_channels": 8, "num_blocks": 3}, 3),
    ("msrresnet", MSRResNet, MSRResNetConfig, {"mid_channels": 12, "num_blocks": 2}, 4),
    ("edsr", EDSR, EDSRConfig, {"mid_channels": 8, "num_blocks": 2}, 2),
    ("edsr", EDSR, EDSRConfig, {"mid_channels": 8, "num_blocks": 2}, 3),
    ("edsr", EDSR, EDSRConfig, {"mid_channels": 4, "num_blocks": 1}, 4),
    ("srcnn", SRCNN, SRCNNConfig, {"channels": (3, 8, 4, 3), "kernel_sizes": (5, 1, 3)}, 3),
]


@pytest.mark.parametrize("arch,cls,cfg_cls,sizes,scale", SR_CASES)
def test_mmagic_sr_converts_with_identical_outputs(tmp_path, arch, cls, cfg_cls, sizes, scale):
    original = randomize(cls(cfg_cls(upscale_factor=scale, **sizes)), seed=scale)
    path = save(tmp_path, mmagic_checkpoint(original))
    scale_flags = ["--scale", str(scale)] if arch == "srcnn" else []
    dirs = convert_both(path, tmp_path, arch, *scale_flags, scale=scale if arch == "srcnn" else None)
    x = torch.rand(2, 3, 6, 5)
    with torch.no_grad():
        expected = original(x).reconstruction
        for folder in dirs:
            model = cls.from_pretrained(folder)
            assert model.config.upscale_factor == scale
            for key, value in sizes.items():
                assert getattr(model.config, key) == (list(value) if isinstance(value, tuple) else value)
            assert_close(model(x).reconstruction, expected)
            assert (folder / "README.md").is_file()


def test_mmagic_ema_generator_and_skipped_modules(tmp_path):
    config = MSRResNetConfig(upscale_factor=2, mid_channels=8, num_blocks=1)
    plain, ema = randomize(MSRResNet(config), seed=1), randomize(MSRResNet(config), seed=2)
    # An SRGAN-like checkpoint: the discriminator and the perceptual loss's VGG are not converted.
    extra = {"discriminator.conv0_0.weight": torch.zeros(4, 3, 3, 3), "perceptual_loss.vgg.0.weight": torch.zeros(2)}
    path = save(tmp_path, mmagic_checkpoint(plain, ema=ema, extra=extra))
    x = torch.rand(1, 3, 4, 4)
    with torch.no_grad():
        # default: the EMA generator, which MMagic tests with; --no-ema: the raw one
        for i, (flags, reference) in enumerate((([], ema), (["--ema"], ema), (["--no-ema"], plain))):
            out = tmp_path / f"out{i}"
            assert main(["convert", str(path), str(out), "--arch", "msrresnet", *flags]) == 0
            assert_close(MSRResNet.from_pretrained(out)(x).reconstruction, reference(x).reconstruction)
        # The function returns the converted model.
        model = convert_checkpoint(path, arch="msrresnet")
        assert_close(model(x).reconstruction, ema(x).reconstruction)
        assert_close(convert_checkpoint(path, arch="msrresnet", ema=False)(x).reconstruction, plain(x).reconstruction)


def test_convert_notes_an_unused_ema_generator_and_refuses_a_file_as_output(tmp_path, capsys):
    config = MSRResNetConfig(upscale_factor=2, mid_channels=8, num_blocks=1)
    path = save(tmp_path, mmagic_checkpoint(randomize(MSRResNet(config), seed=1), ema=randomize(MSRResNet(config), seed=2)))
    assert main(["convert", str(path), str(tmp_path / "auto"), "--arch", "msrresnet"]) == 0
    assert "Converting the EMA generator ('generator_ema.module.*'), which MMagic tests with; --no-ema" in capsys.readouterr().err
    card = (tmp_path / "auto" / "README.md").read_text()
    assert "(EMA generator)" in card
    # MMagic's (and BasicSR's) released weights are Apache-2.0; the card says so and why
    assert "\nlicense: apache-2.0\n" in card and "the license of MMagic's and BasicSR's released weights" in card
    assert "\n# MSRResNet x2 super-resolution model\n" in card
    # --license: another checkpoint's license (e.g. Real-ESRGAN's RRDBNet files), or none
    assert main(["convert", str(path), str(tmp_path / "bsd"), "--license", "bsd-3-clause"]) == 0
    card = (tmp_path / "bsd" / "README.md").read_text()
    assert "\nlicense: bsd-3-clause\n" in card and "MMagic's and BasicSR's released weights" not in card
    assert main(["convert", str(path), str(tmp_path / "unlicensed"), "--license", "none"]) == 0
    assert "\nlicense:" not in (tmp_path / "unlicensed" / "README.md").read_text()
    capsys.readouterr()
    assert main(["convert", str(path), str(tmp_path / "raw"), "--arch", "msrresnet", "--no-ema"]) == 0
    assert "the checkpoint's EMA generator ('generator_ema.module.*') is what MMagic tests with" in capsys.readouterr().err
    assert "(EMA generator)" not in (tmp_path / "raw" / "README.md").read_text()
    (tmp_path / "taken").write_text("a file")
    assert main(["convert", str(path), str(tmp_path / "taken"), "--arch", "msrresnet"]) == 1
    assert "exists and is not a folder" in capsys.readouterr().err


# ----------------------------------------------------------------------------- BasicSR SR
@pytest.mark.parametrize("scale", [4, 3])
def test_basicsr_msrresnet_matches_basicsr_forward(tmp_path, scale):
    config = MSRResNetConfig(upscale_factor=scale, mid_channels=8, num_blocks=2)
    params = to_basicsr_names("msrresnet", randomize(MSRResNet(config), seed=3, std=0.3).state_dict())
    params_ema = to_basicsr_names("msrresnet", randomize(MSRResNet(config), seed=4, std=0.3).state_dict())
    path = save(tmp_path, {"params": params, "params_ema": params_ema})
    dirs = convert_both(path, tmp_path, "msrresnet", "--no-ema", ema=False)
    x = torch.rand(2, 3, 5, 6)
    with torch.no_grad():
        expected = basicsr_msrresnet(params, x, scale)
        for folder in dirs:
            model = MSRResNet.from_pretrained(folder)
            assert model.config.upsample_lrelu is True
            assert model.config.upscale_factor == scale
            assert_close(model(x).reconstruction, expected)
        # Without the LeakyReLU after the pixel shuffles (MMagic's forward) the output differs.
        model.config.upsample_lrelu = False
        assert (model(x).reconstruction - expected).abs().max() > 1e-3
        for ema in (True, None):  # params_ema is also the default when present (BasicSR tests with it)
            ema_model = convert_checkpoint(path, arch="msrresnet", ema=ema, source="basicsr")
            assert_close(ema_model(x).reconstruction, basicsr_msrresnet(params_ema, x, scale))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_basicsr_edsr_matches_basicsr_forward(tmp_path, scale):
    config = EDSRConfig(upscale_factor=scale, mid_channels=8, num_blocks=2)
    params = to_basicsr_names("edsr", randomize(EDSR(config), seed=5, std=0.05).state_dict())
    path = save(tmp_path, {"params_ema": params})
    dirs = convert_both(path, tmp_path, "edsr", "--ema", ema=True)
    x = torch.rand(1, 3, 5, 4)
    with torch.no_grad():
        expected = basicsr_edsr(params, x)
        for folder in dirs:
            model = EDSR.from_pretrained(folder)
            assert model.config.upscale_factor == scale
            assert_close(model(x).reconstruction, expected)
    assert_close(convert_checkpoint(path, arch="edsr")(x).reconstruction, expected)  # params_ema by default
    with pytest.raises(ValueError, match="has no 'params'.*leave out --no-ema"):
        convert_checkpoint(path, arch="edsr", ema=False)


def test_bare_state_dicts_are_accepted(tmp_path):
    config = MSRResNetConfig(upscale_factor=4, mid_channels=8, num_blocks=1)
    model = randomize(MSRResNet(config), seed=6, std=0.3)
    x = torch.rand(1, 3, 4, 4)
    with torch.no_grad():
        # MMagic names: the network itself.
        converted = convert_checkpoint(save(tmp_path, model.state_dict(), "mm.pth"), arch="msrresnet")
        assert converted.config.upsample_lrelu is False
        assert_close(converted(x).reconstruction, model(x).reconstruction)
        # BasicSR names, recognised from the key names.
        params = to_basicsr_names("msrresnet", model.state_dict())
        converted = convert_checkpoint(save(tmp_path, params, "bsr.pth"), arch="msrresnet")
        assert converted.config.upsample_lrelu is True
        assert_close(converted(x).reconstruction, basicsr_msrresnet(params, x, 4))
        # a bare state dict has no EMA generator to insist on
        with pytest.raises(ValueError, match=r"bare state dict with no EMA generator: leave out --ema \(ema=True\)"):
            convert_checkpoint(save(tmp_path, model.state_dict(), "mm.pth"), arch="msrresnet", ema=True)


# ----------------------------------------------------------------------------- DCGAN
def tiny_gan(seed):
    config = DCGANConfig(image_size=32, noise_size=8, generator_base_channels=16, discriminator_base_channels=4)
    return randomize(DCGANGenerator(config), seed, std=0.2), randomize(DCGANDiscriminator(config), seed + 1, std=0.2)


def load_gan(folder):
    generator = DCGANGenerator.from_pretrained(folder)
    discriminator = DCGANDiscriminator.from_pretrained(folder, subfolder="discriminator")
    return generator.eval(), discriminator.eval()


def test_dcgan_bgr_checkpoint_converts_to_rgb(tmp_path):
    generator, discriminator = tiny_gan(seed=10)
    ema, _ = tiny_gan(seed=20)
    path = save(tmp_path, mmagic_checkpoint(generator, ema=ema, discriminator=discriminator))
    noise = torch.randn(3, 8)
    rgb = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        for folder in convert_both(path, tmp_path, "dcgan", "--no-ema", ema=False):
            g, d = load_gan(folder)
            assert (g.config.image_size, g.config.noise_size, g.config.generator_base_channels) == (32, 8, 16)
            assert (d.config.discriminator_base_channels, d.config.discriminator_output_scale) == (4, 4)
            # MMagic draws BGR: the converted generator draws the same image with channels reversed...
            assert_close(g(noise), generator(noise).flip(1))
            # ... and the converted discriminator scores RGB as MMagic's scores the BGR image.
            assert_close(d(rgb), discriminator(rgb.flip(1)))
            assert (folder / "README.md").is_file()

        g, d = convert_checkpoint(path, arch="dcgan")  # the EMA generator by default
        assert_close(g(noise), ema(noise).flip(1))
        assert_close(d(rgb), discriminator(rgb.flip(1)))

        # A generator-only checkpoint converts the generator alone.
        out = tmp_path / "generator-only"
        g, d = convert_checkpoint(mmagic_checkpoint(generator), out, arch="dcgan")
        assert d is None and not (out / "discriminator").exists()
        assert_close(DCGANGenerator.from_pretrained(out)(noise), generator(noise).flip(1))

        out = tmp_path / "rgb"
        assert main(["convert", str(path), str(out), "--arch", "dcgan", "--no-bgr-to-rgb"]) == 0
        g, d = load_gan(out)
        assert_close(g(noise), ema(noise))
        assert_close(d(rgb), discriminator(rgb))


# ----------------------------------------------------------------------------- errors
@pytest.fixture
def msrresnet_x4():
    return randomize(MSRResNet(MSRResNetConfig(upscale_factor=4, mid_channels=8, num_blocks=2)))


def test_missing_and_left_over_keys_are_listed(tmp_path, msrresnet_x4):
    ckpt = mmagic_checkpoint(msrresnet_x4)
    del ckpt["state_dict"]["generator.trunk_net.1.conv2.bias"]
    with pytest.raises(ValueError, match=r"missing keys: generator\.trunk_net\.1\.conv2\.bias"):
        convert_checkpoint(save(tmp_path, ckpt), arch="msrresnet")

    ckpt = mmagic_checkpoint(msrresnet_x4, extra={"generator.extra_conv.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"left-over keys: generator\.extra_conv\.weight"):
        convert_checkpoint(ckpt, arch="msrresnet")

    # BasicSR checkpoints: listed in BasicSR's own names.
    params = to_basicsr_names("msrresnet", msrresnet_x4.state_dict())
    del params["body.0.conv1.weight"], params["upconv2.bias"]
    with pytest.raises(ValueError, match=r"missing keys: body\.0\.conv1\.weight, upconv2\.bias"):
        convert_checkpoint({"params": params}, arch="msrresnet")


def test_wrong_arch_and_scale_are_named_from_shapes(tmp_path, msrresnet_x4):
    path = save(tmp_path, mmagic_checkpoint(msrresnet_x4))
    with pytest.raises(
        ValueError, match=r"--arch edsr does not match.*MSRResNet \(x4, mid_channels=8, num_blocks=2.*--arch msrresnet"
    ):
        convert_checkpoint(path, arch="edsr")
    with pytest.raises(ValueError, match=r"--scale 2 does not match.*32 = 8\*2\^2.*x4\. Pass --scale 4"):
        convert_checkpoint(path, arch="msrresnet", scale=2)
    edsr = EDSR(EDSRConfig(upscale_factor=3, mid_channels=8, num_blocks=1))
    with pytest.raises(ValueError, match=r"--scale 2 does not match.*one x3 stage.*72 channels"):
        convert_checkpoint(mmagic_checkpoint(edsr), arch="edsr", scale=2)
    generator, _ = tiny_gan(seed=0)
    with pytest.raises(ValueError, match=r"--arch msrresnet does not match.*DCGAN \(image_size=32"):
        convert_checkpoint(mmagic_checkpoint(generator), arch="msrresnet")

    # The CLI reports the same error and fails.
    assert main(["convert", str(path), str(tmp_path / "out"), "--arch", "srcnn", "--scale", "4"]) == 1
    assert not (tmp_path / "out").exists()


def test_layout_and_names_must_agree(tmp_path, msrresnet_x4):
    mmagic_names = msrresnet_x4.state_dict()
    with pytest.raises(ValueError, match=r"uses MMagic's layer names .* but the file's layout says BasicSR"):
        convert_checkpoint({"params": mmagic_names}, arch="msrresnet")
    with pytest.raises(
        ValueError, match=r"uses BasicSR's layer names .* but --source mmagic says MMagic: pass --source basicsr"
    ):
        convert_checkpoint(to_basicsr_names("msrresnet", mmagic_names), arch="msrresnet", source="mmagic")
    with pytest.raises(ValueError, match=r"--source basicsr does not match the file: it is an MMagic checkpoint"):
        convert_checkpoint(mmagic_checkpoint(msrresnet_x4), arch="msrresnet", source="basicsr")


def test_srcnn_needs_scale(tmp_path, capsys):
    srcnn = SRCNN(SRCNNConfig(upscale_factor=4, channels=(3, 8, 4, 3)))
    path = save(tmp_path, mmagic_checkpoint(srcnn))
    with pytest.raises(ValueError, match="SRCNN's scale is not stored in its weights.*--scale"):
        convert_checkpoint(path, arch="srcnn")
    assert main(["convert", str(path), str(tmp_path / "out"), "--arch", "srcnn"]) == 1
    assert "--scale" in capsys.readouterr().err


class NotATensor:
    pass


def test_files_that_are_not_checkpoints(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a checkpoint\n")
    with pytest.raises(ValueError, match="is not a PyTorch checkpoint"):
        convert_checkpoint(text, arch="msrresnet")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        convert_checkpoint(tmp_path / "missing.pth", arch="msrresnet")
    with pytest.raises(ValueError, match="Python object of type .*NotATensor.*weights_only"):
        convert_checkpoint(save(tmp_path, {"state_dict": {}, "hook": NotATensor()}), arch="msrresnet")
    with pytest.raises(ValueError, match=r"no 'state_dict' \(MMagic\), no 'params'"):
        convert_checkpoint(save(tmp_path, {"epoch": 3}), arch="msrresnet")
    with pytest.raises(ValueError, match="has no EMA generator"):
        convert_checkpoint(
            mmagic_checkpoint(MSRResNet(MSRResNetConfig(mid_channels=4, num_blocks=1))), arch="msrresnet", ema=True
        )


# ----------------------------------------------------------------------------- Hub
def test_push_converted_models_to_the_hub(tmp_path, hub_server):
    generator, discriminator = tiny_gan(seed=30)
    path = save(tmp_path, mmagic_checkpoint(generator, discriminator=discriminator))
    repo_id = hub_server.new_repo_id("dcgan-converted")
    assert main(["convert", str(path), str(tmp_path / "gan"), "--arch", "dcgan", "--push-to-hub", repo_id]) == 0
    files = set(hub_server.list_files(repo_id))
    assert {
        "config.json",
        "model.safetensors",
        "README.md",
        "discriminator/config.json",
        "discriminator/model.safetensors",
    } <= files
    assert b"hfmagic convert" in hub_server.read_file(repo_id, "README.md")
    g, d = load_gan(repo_id)
    noise, rgb = torch.randn(2, 8), torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert_close(g(noise), generator(noise).flip(1))
        assert_close(d(rgb), discriminator(rgb.flip(1)))

    # The function pushes without an output folder too (it saves to a temporary one).
    sr = randomize(MSRResNet(MSRResNetConfig(upscale_factor=2, mid_channels=8, num_blocks=1)), seed=31)
    sr_repo = hub_server.new_repo_id("msrresnet-converted")
    convert_checkpoint(mmagic_checkpoint(sr), arch="msrresnet", push_to_hub=sr_repo)
    x = torch.rand(1, 3, 4, 4)
    with torch.no_grad():
        assert_close(MSRResNet.from_pretrained(sr_repo)(x).reconstruction, sr(x).reconstruction)


# ----------------------------------------------------------------------------- detection and extension
@pytest.mark.parametrize("arch", ["msrresnet", "edsr", "dcgan"])
def test_arch_is_detected_without_arch_flag(tmp_path, arch):
    """Each architecture's checkpoints convert without --arch (MMagic layout; BasicSR too for SR)."""
    torch.manual_seed(0)
    if arch == "dcgan":
        config = DCGANConfig(image_size=16, noise_size=8, generator_base_channels=16, discriminator_base_channels=4)
        model = randomize(DCGANGenerator(config))
        path = save(tmp_path, mmagic_checkpoint(model, discriminator=randomize(DCGANDiscriminator(config), seed=1)))
    else:
        model_cls, cfg = {"msrresnet": (MSRResNet, MSRResNetConfig(mid_channels=8, num_blocks=2)), "edsr": (EDSR, EDSRConfig(mid_channels=8, num_blocks=2))}[arch]
        model = randomize(model_cls(cfg))
        path = save(tmp_path, {"params": to_basicsr_names(arch, model.state_dict())}, "bsr.pth")
        path_mm = save(tmp_path, mmagic_checkpoint(model), "mm.pth")
        assert main(["convert", str(path_mm), str(tmp_path / "mm")]) == 0
        assert type(convert_checkpoint(path_mm)) is model_cls
    assert main(["convert", str(path), str(tmp_path / "out")]) == 0
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(tmp_path / "out").model_type == arch
    if arch == "dcgan":
        assert (tmp_path / "out" / "discriminator" / "config.json").is_file()


def test_safetensors_checkpoints_convert(tmp_path):
    from safetensors.torch import save_file

    model = randomize(MSRResNet(MSRResNetConfig(mid_channels=8, num_blocks=2)))
    save_file(to_basicsr_names("msrresnet", model.state_dict()), tmp_path / "bsr.safetensors")
    converted = convert_checkpoint(tmp_path / "bsr.safetensors", tmp_path / "out")
    assert converted.config.upsample_lrelu  # BasicSR names -> BasicSR's forward
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable .safetensors file"):
        convert_checkpoint(tmp_path / "junk.safetensors")


def test_unknown_and_ambiguous_checkpoints_are_named(tmp_path, monkeypatch, capsys):
    import hfmagic.models as models

    path = save(tmp_path, {"encoder.weight": torch.zeros(2, 2), "decoder.weight": torch.zeros(2, 2)})
    assert main(["convert", str(path), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "No registered architecture recognises" in err and "decoder.weight, encoder.weight" in err
    assert "SRCNN" in err and "DCGAN" in err and not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match=r"Unknown arch 'nope'; choose one of \[.*'dcgan', 'edsr', 'msrresnet', .*'srcnn'.*\]"):
        convert_checkpoint(path, arch="nope")

    class Greedy(models.ConversionSpec):  # recognises everything, so MSRResNet's keys are ambiguous
        arch, display_name = "greedy", "Greedy"

        def identifies(self, keys):
            return True

    monkeypatch.setitem(models._CONVERSIONS, "greedy", Greedy())
    ckpt = mmagic_checkpoint(MSRResNet(MSRResNetConfig(mid_channels=4, num_blocks=1)))
    with pytest.raises(ValueError, match="recognised by several architectures: .*greedy.*msrresnet.*Pass --arch"):
        convert_checkpoint(ckpt)
    assert type(convert_checkpoint(ckpt, arch="msrresnet")) is MSRResNet  # --arch settles it


def test_options_of_other_architectures_are_refused(tmp_path):
    ckpt = mmagic_checkpoint(MSRResNet(MSRResNetConfig(mid_channels=4, num_blocks=1)))
    with pytest.raises(ValueError, match=r"--res-scale \(res_scale=...\) only applies to EDSR, not MSRResNet"):
        convert_checkpoint(ckpt, res_scale=0.1)
    with pytest.raises(ValueError, match=r"--no-bgr-to-rgb .* only applies to DCGAN(, [^,]+)*, not MSRResNet"):
        convert_checkpoint(ckpt, bgr_to_rgb=False)
    config = DCGANConfig(image_size=16, noise_size=8, generator_base_channels=16, discriminator_base_channels=4)
    with pytest.raises(ValueError, match="--scale does not apply to DCGAN"):
        convert_checkpoint(mmagic_checkpoint(DCGANGenerator(config)), scale=4)


USER_CONVERSION_MODULE = '''
import math

from torch import nn
from torch.nn import functional as F

from hfmagic import SuperResolutionConfig, SuperResolutionPreTrainedModel, register_model
from hfmagic.models.conversion import SRConversionSpec


class TinyShuffleConfig(SuperResolutionConfig):
    model_type = "tiny-shuffle-convert-test"
    supported_upscale_factors = (2, 3)
    mmagic_module = "TinyShuffleNet"

    def __init__(self, mid_channels=4, **kwargs):
        self.mid_channels = mid_channels
        super().__init__(**kwargs)


class TinyShuffle(SuperResolutionPreTrainedModel):
    config_class = TinyShuffleConfig

    def __init__(self, config):
        super().__init__(config)
        self.head = nn.Conv2d(config.in_channels, config.mid_channels, 3, padding=1)
        self.tail = nn.Conv2d(config.mid_channels, config.out_channels * config.upscale_factor**2, 3, padding=1)
        self.post_init()

    def reconstruct(self, pixel_values):
        return F.pixel_shuffle(self.tail(F.relu(self.head(pixel_values))), self.config.upscale_factor)

    def receptive_field(self):
        return 2  # two 3x3 convolutions at LR resolution


class TinyShuffleConversion(SRConversionSpec):
    arch = "tiny-shuffle-convert-test"
    display_name = "TinyShuffle"
    config_class = TinyShuffleConfig
    model_class = TinyShuffle
    summary_fields = ("mid_channels",)
    basicsr_to_hf = [(r"^first\\.", "head."), (r"^last\\.", "tail.")]
    hf_to_basicsr = [(r"^head\\.", "first."), (r"^tail\\.", "last.")]

    def identifies(self, keys):
        return {"head.weight", "tail.weight"} <= keys or {"first.weight", "last.weight"} <= keys

    def naming(self, keys):
        return "basicsr" if "first.weight" in keys else "mmagic"

    def infer_config(self, shapes):
        mid, in_ch = shapes("head.weight")[:2]
        scale = math.isqrt(shapes("tail.weight")[0] // in_ch)
        evidence = f"{shapes.name('tail.weight')} has {shapes('tail.weight')[0]} = {in_ch}*{scale}^2 channels"
        return {"mid_channels": mid, "in_channels": in_ch, "out_channels": in_ch}, evidence, scale


register_model(TinyShuffleConfig, TinyShuffle, conversion=TinyShuffleConversion())
'''


def test_a_registered_architecture_outside_hfmagic_converts_tiles_and_trains(tmp_path):
    """A user's architecture (config, model, conversion spec, receptive field) in a file outside
    hfmagic: `hfmagic --import FILE convert` recognises its MMagic- and BasicSR-style checkpoints
    without --arch, reads the scale from the shapes and writes a folder with a card, in a fresh
    process; the pipeline tiles it exactly; train_sr trains it and writes its card."""
    import subprocess
    import sys

    module = tmp_path / "tiny_shuffle_ext.py"
    module.write_text(USER_CONVERSION_MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        import tiny_shuffle_ext as ext
    finally:
        sys.path.remove(str(tmp_path))
    model = randomize(ext.TinyShuffle(ext.TinyShuffleConfig(upscale_factor=3, mid_channels=5)))
    torch.save(mmagic_checkpoint(model), tmp_path / "mm.pth")
    renamed = {k.replace("head.", "first.").replace("tail.", "last."): v for k, v in model.state_dict().items()}
    torch.save({"params_ema": renamed}, tmp_path / "bsr.pth")
    x = torch.rand(1, 3, 5, 6)
    for name in ("mm", "bsr"):
        cmd = [sys.executable, "-m", "hfmagic", "--import", str(module), "convert", str(tmp_path / f"{name}.pth"), str(tmp_path / name)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Converted the" in done.stderr and "TinyShuffle (x3, mid_channels=5)" in done.stderr
        loaded = ext.TinyShuffle.from_pretrained(tmp_path / name)
        assert loaded.config.upscale_factor == 3
        torch.testing.assert_close(loaded(x).reconstruction, model(x).reconstruction, atol=ATOL, rtol=0)
        card = (tmp_path / name / "README.md").read_text()
        assert "MMagic's `TinyShuffleNet`" in card and "hfmagic convert" in card
    # --arch checks; a wrong --scale is named from the shapes by the spec's evidence
    with pytest.raises(ValueError, match=r"--scale 2 does not match the weights: generator.tail.weight has 27 = 3\*3\^2"):
        convert_checkpoint(tmp_path / "mm.pth", scale=2)

    # the pipeline tiles it exactly with the receptive field the class declares (checked by the NaN probe)
    from hfmagic import SuperResolutionPipeline
    from hfmagic.pipelines import probe_receptive_field

    assert probe_receptive_field(model) == model.receptive_field() == 2
    pipe = SuperResolutionPipeline.from_pretrained(tmp_path / "mm", device="cpu", exact=True)
    image = torch.rand(1, 3, 13, 11)
    assert torch.equal(pipe.upscale_tensor(image, tile_size=4), pipe.upscale_tensor(image))
    # train_sr trains it and saves a final model with its card
    from hfmagic.training import SRTrainingArguments, train_sr

    data = [{"pixel_values": torch.rand(3, 6, 6), "labels": torch.rand(3, 18, 18)} for _ in range(8)]
    args = SRTrainingArguments(output_dir=str(tmp_path / "run"), train_batch_size=4, max_train_steps=3,
                               validation_steps=0, checkpointing_steps=0, learning_rate=1e-2)
    train_sr(ext.TinyShuffle.from_pretrained(tmp_path / "mm"), data, args)
    trained = ext.TinyShuffle.from_pretrained(tmp_path / "run" / "final")
    assert not torch.equal(trained.tail.weight, loaded.tail.weight)  # it learned
    card = (tmp_path / "run" / "final" / "README.md").read_text()
    assert "pipeline_tag: image-to-image" in card and "`TinyShuffle`" in card and "MMagic's `TinyShuffleNet`" in card


@pytest.mark.parametrize("arch", [arch for arch in HFMAGIC_MODELS if arch in conversion_specs()])
def test_every_registered_conversion_round_trips(tmp_path, arch):
    """Common test over the registered conversion specs: a tiny model's MMagic checkpoint converts
    without --arch (SRCNN: with --scale, which its weights lack) to the same outputs."""
    model = randomize(tiny_model(arch))
    gan = conversion_specs()[arch].has_discriminator
    kwargs = {"bgr_to_rgb": False} if gan else {"scale": model.config.upscale_factor} if arch == "srcnn" else {}
    converted = convert_checkpoint(mmagic_checkpoint(model), tmp_path / "out", **kwargs)
    converted = converted[0] if gan else converted
    assert type(converted) is type(model)
    if gan:
        noise = torch.randn(2, model.config.noise_size)
        # the same global RNG state for both: generators with internal randomness (injected noise)
        outputs = [(torch.manual_seed(0), net(noise))[1] for net in (converted, model)]
        torch.testing.assert_close(*outputs, atol=ATOL, rtol=0)
    else:
        x = torch.rand(1, model.config.in_channels, 6, 5)
        torch.testing.assert_close(converted(x).reconstruction, model(x).reconstruction, atol=ATOL, rtol=0)
