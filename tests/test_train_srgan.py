"""Adversarial SR training (hfmagic.training.train_srgan, examples/train_esrgan.py): MMagic's
SRGAN.train_step order, ESRGAN's relativistic terms against their formulas, exact resume after
SIGKILL, the GAN repo layout of the saved model, 2-process DDP on CPU, and the script's errors."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file

from hfmagic import ModifiedVGGDiscriminator, MSRResNet, MSRResNetConfig, RRDBNet, UNetDiscriminatorSN, UNetDiscriminatorSNConfig
from hfmagic.losses import GANLoss, PerceptualLoss
from hfmagic.training import SRGAN, SRGANTrainingArguments, list_checkpoints, train_srgan
from hfmagic.training.sr import release_accelerator

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "train_esrgan.py"
VGG19_CONVS = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]


def _load_script():
    spec = importlib.util.spec_from_file_location("train_esrgan_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = _load_script()


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """A tiny random VGG19 (4 channels per conv) in torchvision's key names."""
    generator = torch.Generator().manual_seed(0)
    tensors, channels = {}, 3
    for index in VGG19_CONVS:
        tensors[f"features.{index}.weight"] = torch.randn(4, channels, 3, 3, generator=generator) * 0.3
        tensors[f"features.{index}.bias"] = torch.randn(4, generator=generator) * 0.1
        channels = 4
    path = tmp_path_factory.mktemp("vgg") / "vgg19_tiny.safetensors"
    save_file(tensors, str(path))
    return path


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hr")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:40]
    for i in range(4):
        base = np.stack([np.sin(xx / (3 + i)), np.cos(yy / (4 + i)), np.sin((xx + yy) / (5 + i))], axis=-1)
        img = ((base * 0.4 + 0.5 + rng.normal(0, 0.05, base.shape)).clip(0, 1) * 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"img{i}.png")
    return folder


def _srgan(vgg_file, relativistic=True, **kwargs):
    torch.manual_seed(0)
    generator = MSRResNet(MSRResNetConfig(upscale_factor=2, mid_channels=8, num_blocks=1))
    discriminator = UNetDiscriminatorSN(UNetDiscriminatorSNConfig(mid_channels=4))
    perceptual = PerceptualLoss({"34": 1.0}, perceptual_weight=1.0, style_weight=0.0, norm_img=False, pretrained=str(vgg_file))
    return SRGAN(
        generator, discriminator, pixel_weight=1e-2, perceptual_loss=perceptual,
        gan_loss=GANLoss("vanilla", loss_weight=5e-3), relativistic=relativistic, **kwargs,
    )


def _no_reduce(losses):
    return {name: value.detach() for name, value in losses.items()}


def _prepared(srgan, tmp_path):
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    srgan.create_optimizers(SRGANTrainingArguments(output_dir=str(tmp_path), report_to="none"))
    srgan.prepare(accelerator)
    return accelerator


def test_generator_waits_for_disc_init_steps_and_trains_against_a_frozen_discriminator(vgg_file, tmp_path):
    srgan = _srgan(vgg_file, disc_init_steps=2)
    accelerator = _prepared(srgan, tmp_path)
    try:
        events = []
        srgan.discriminator.register_forward_hook(
            lambda module, inputs, output: events.append(("D", next(module.parameters()).requires_grad))
        )
        for name, optimizer in srgan.optimizers().items():
            real_step = optimizer.step

            def recording(*args, _name=name, _step=real_step, **kwargs):
                events.append((f"step_{_name}", None))
                return _step(*args, **kwargs)

            optimizer.step = recording
        torch.manual_seed(1)
        lr, gt = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16)
        before = {k: v.clone() for k, v in srgan.generator.state_dict().items()}
        for step in (0, 1):
            events.clear()
            logs = srgan.train_step(lr, gt, step, _no_reduce)
            assert "loss_gan" not in logs and {"loss_d_real", "loss_d_fake"} <= set(logs)
            assert [e[0] for e in events] == ["D", "D", "D", "step_discriminator"]  # relativistic: D(f) no grad, D(r), D(f)
            assert all(trainable for name, trainable in events if name == "D")
        assert all(torch.equal(before[k], v) for k, v in srgan.generator.state_dict().items())

        events.clear()
        logs = srgan.train_step(lr, gt, 2, _no_reduce)
        names = [e[0] for e in events]
        # the generator's step first, against a frozen discriminator (D(fake), D(real)); then the discriminator's
        assert names == ["D", "D", "step_generator", "D", "D", "D", "step_discriminator"]
        assert [flag for _, flag in events[:2]] == [False, False]
        assert all(flag for name, flag in events[3:6])
        assert {"loss_pix", "loss_perceptual", "loss_gan", "loss"} <= set(logs)
        assert not all(torch.equal(before[k], v) for k, v in srgan.generator.state_dict().items())
    finally:
        release_accelerator(accelerator)


def test_relativistic_and_plain_terms_follow_mmagic_formulas(vgg_file, tmp_path):
    torch.manual_seed(3)
    output, gt = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    bce = F.binary_cross_entropy_with_logits
    for relativistic in (True, False):
        srgan = _srgan(vgg_file, relativistic=relativistic)
        d = srgan.discriminator.eval()  # eval: the spectral norm does no power iteration, so calls agree
        losses = srgan.generator_losses(output, gt)
        real, fake = d(gt), d(output)
        if relativistic:
            expected = (bce(fake - real.mean(), torch.ones_like(fake)) + bce(real - fake.mean(), torch.zeros_like(real))) / 2 * 5e-3
        else:
            expected = bce(fake, torch.ones_like(fake)) * 5e-3
        torch.testing.assert_close(losses["loss_gan"], expected)
        torch.testing.assert_close(losses["loss_pix"], (output - gt).abs().mean() * 1e-2)

        class _Backward:
            backward = staticmethod(lambda loss: loss.backward())

        srgan.accelerator = _Backward()
        d_logs = srgan.discriminator_losses(output, gt, _no_reduce)
        if relativistic:  # each term x0.5, no loss_weight on discriminator terms
            exp_real = bce(real - fake.mean(), torch.ones_like(real)) * 0.5
            exp_fake = bce(fake - real.mean(), torch.zeros_like(fake)) * 0.5
        else:
            exp_real, exp_fake = bce(real, torch.ones_like(real)), bce(fake, torch.zeros_like(fake))
        torch.testing.assert_close(d_logs["loss_d_real"], exp_real.detach())
        torch.testing.assert_close(d_logs["loss_d_fake"], exp_fake.detach())
        assert all(p.grad is not None for p in d.parameters())


def test_arguments_refuse_accumulation_and_keep_esrgan_defaults():
    args = SRGANTrainingArguments(report_to="none")
    assert (args.learning_rate, args.max_train_steps, args.lr_scheduler, args.lr_milestones) == (
        1e-4, 400_000, "multistep", [50_000, 100_000, 200_000, 300_000],
    )
    with pytest.raises(ValueError, match="gradient_accumulation_steps=2"):
        SRGANTrainingArguments(gradient_accumulation_steps=2, report_to="none")
    with pytest.raises(TypeError, match="SuperResolutionPreTrainedModel"):
        SRGAN(torch.nn.Conv2d(3, 3, 1), torch.nn.Conv2d(3, 1, 1), gan_loss=GANLoss("vanilla"))
    with pytest.raises(ValueError, match="gan_loss is required"):
        SRGAN(MSRResNet(MSRResNetConfig(mid_channels=4, num_blocks=1)), torch.nn.Conv2d(3, 1, 1), gan_loss=None)


# ----------------------------------------------------------------------------- the script


def _argv(image_dir, vgg_file, out, *extra):
    return [
        "--model", "msrresnet", "--model_config_overrides", json.dumps({"mid_channels": 8, "num_blocks": 1}), "--scale", "2",
        "--discriminator", "unet_sn", "--discriminator_config_overrides", json.dumps({"mid_channels": 4}),
        "--train_data_dir", str(image_dir), "--gt_patch_size", "16", "--train_batch_size", "2", "--report_to", "none",
        "--vgg_model_name_or_path", str(vgg_file), "--output_dir", str(out), "--validation_steps", "0", "--seed", "5",
        "--max_train_steps", "6", "--checkpointing_steps", "2", *extra,
    ]


def _run_subprocess(cmd, env_extra=None, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env_extra or {})}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_script_resumes_exactly_after_sigkill_and_saves_both_networks(image_dir, vgg_file, tmp_path):
    argv = _argv(image_dir, vgg_file, tmp_path / "killed", "--use_ema")
    killer = (
        "import os, signal, sys, runpy\n"
        "from hfmagic.training import srgan\n"
        "real = srgan.train_srgan\n"
        "def kill(step, logs):\n"
        "    if step == 3:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "def patched(*a, **kw):\n"
        "    return real(*a, callbacks=[kill], **kw)\n"
        "import hfmagic.training\n"
        "hfmagic.training.train_srgan = patched\n"
        f"sys.argv = ['train_esrgan.py'] + {argv!r}\n"
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
    )
    killed = _run_subprocess([sys.executable, "-c", killer])
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert [p.name for p in list_checkpoints(tmp_path / "killed")] == ["checkpoint-2"]
    checkpoint = tmp_path / "killed" / "checkpoint-2"
    # both networks (and no VGG) in the checkpoint
    weights = sorted(p.name for p in checkpoint.glob("model*.safetensors"))
    assert weights == ["model.safetensors", "model_1.safetensors"]
    assert not any(k.startswith(("vgg", "perceptual")) for w in weights for k in load_file(str(checkpoint / w)))
    script.main(script.parse_args(argv + ["--resume_from_checkpoint", "latest"]))
    script.main(script.parse_args(_argv(image_dir, vgg_file, tmp_path / "straight", "--use_ema")))
    for sub in ("", "discriminator"):
        _assert_same(load_file(str(tmp_path / "straight" / "final" / sub / "model.safetensors")),
                     load_file(str(tmp_path / "killed" / "final" / sub / "model.safetensors")))
    final = tmp_path / "straight" / "final"
    discriminator = UNetDiscriminatorSN.from_pretrained(final, subfolder="discriminator")
    assert discriminator.config.mid_channels == 4
    card = (final / "README.md").read_text()
    assert "train_srgan" in card and "UNetDiscriminatorSN" in card and "discriminator/" in card
    assert MSRResNet.from_pretrained(final).config.upscale_factor == 2


@pytest.mark.slow
def test_two_ddp_processes_train_and_checkpoint(image_dir, vgg_file, tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    launch = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port), str(SCRIPT),
    ]
    argv = _argv(image_dir, vgg_file, tmp_path / "ddp")
    argv[argv.index("--max_train_steps") + 1] = "2"
    run = _run_subprocess(launch + argv, env_extra={"ACCELERATE_USE_CPU": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Num processes: 2" in run.stdout + run.stderr
    assert (tmp_path / "ddp" / "final" / "discriminator" / "model.safetensors").exists()
    assert [p.name for p in list_checkpoints(tmp_path / "ddp")] == ["checkpoint-2"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--gradient_accumulation_steps", "2"], "must be 1"),
        (["--model_config_overrides", '{"num_blok": 2}'], "did you mean 'num_blocks'"),
        (["--gan_weight", "0"], "train_sr.py"),
        (["--max_train_steps", "0"], "must be > 0"),
    ],
)
def test_script_rejects_bad_flags_with_the_reason(flags, message, capsys):
    with pytest.raises(SystemExit):
        script.parse_args(flags)
    assert message in capsys.readouterr().err


def test_modified_vgg_needs_128_pixel_patches(image_dir, vgg_file, tmp_path):
    argv = _argv(image_dir, vgg_file, tmp_path / "vgg")
    argv[argv.index("--discriminator") + 1] = "modified_vgg"
    with pytest.raises(ValueError, match="--gt_patch_size 128"):
        script.main(script.parse_args(argv))


def test_no_dataset_flag_is_an_offline_smoke_run_with_validation_and_best(vgg_file, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    caplog.set_level("INFO", logger="train_esrgan")
    args = script.parse_args([
        "--vgg_model_name_or_path", str(vgg_file), "--output_dir", str(tmp_path / "smoke"), "--report_to", "none",
        "--max_train_steps", "2", "--validation_steps", "2", "--checkpointing_steps", "0", "--dataloader_num_workers", "0",
    ])
    result = script.main(args)
    assert "smoke run of a small rrdbnet" in caplog.text and "not a useful model" in caplog.text
    assert result.global_step == 2 and result.best_dir is not None
    for folder in (tmp_path / "smoke" / "final", tmp_path / "smoke" / "best"):
        assert (folder / "discriminator" / "config.json").exists()
    generator = RRDBNet.from_pretrained(tmp_path / "smoke" / "final")
    assert generator.config.num_blocks == script.SMOKE_GENERATOR["rrdbnet"]["num_blocks"]
    discriminator = ModifiedVGGDiscriminator.from_pretrained(tmp_path / "smoke" / "final", subfolder="discriminator")
    assert discriminator.config.mid_channels == script.SMOKE_DISCRIMINATOR["mid_channels"]
    assert "psnr" in result.final_metrics["hfmagic-embedded-validation"]


def test_missing_vgg_offline_names_the_flag(image_dir, tmp_path, monkeypatch):
    argv = _argv(image_dir, tmp_path / "missing.safetensors", tmp_path / "out")
    with pytest.raises(ValueError, match=r"--vgg_model_name_or_path .*missing.safetensors: No VGG weights.*--perceptual_weight 0"):
        script.main(script.parse_args(argv))
