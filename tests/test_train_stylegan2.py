"""MMagic's StyleGAN2 recipe (hfmagic.training.lazy_regularized) and examples/train_stylegan2.py: R1 and
path-length terms against hand-computed values, the lazy intervals and weights, the Adam correction and
the EMA half-life, exact resume after SIGKILL, two DDP processes on CPU, the smoke run."""

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from PIL import Image
from safetensors.torch import load_file

from hfmagic import StyleGAN2Config, StyleGAN2Discriminator, StyleGAN2Generator
from hfmagic.training import (
    LazyRegularizedGAN,
    ema_momentum_for_half_life,
    lazy_regularization_adam,
    path_length_penalty,
    path_lengths,
    r1_penalty,
)
from hfmagic.training import lazy_regularized

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "train_stylegan2.py"
TINY = ["--resolution", "8", "--model_config_overrides", '{"style_channels": 16, "max_channels": 16, "num_mlps": 2}']


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny_gan(**kwargs):
    torch.manual_seed(0)
    config = StyleGAN2Config(out_size=8, style_channels=16, max_channels=16, num_mlps=2)
    gan = LazyRegularizedGAN(StyleGAN2Generator(config), StyleGAN2Discriminator(config), **kwargs)
    gan.prepare(
        Accelerator(cpu=True),
        torch.optim.Adam(gan.generator.parameters(), lr=1e-3, betas=(0.0, 0.99)),
        torch.optim.Adam(gan.discriminator.parameters(), lr=1e-3, betas=(0.0, 0.99)),
        seed=0,
    )
    return gan


# ---------------------------------------------------------------- the terms, by hand
class Linear(torch.nn.Module):
    """D(x) = sum(w * x): its input gradient is w for every image."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1, keepdim=True)


class Quadratic(torch.nn.Module):
    """D(x) = sum(a * x^2): its input gradient is 2 a x."""

    def __init__(self, a):
        super().__init__()
        self.a = torch.nn.Parameter(a)

    def forward(self, x):
        return (self.a * x**2).flatten(1).sum(1, keepdim=True)


def test_r1_penalty_hand_computed():
    """MMagic's r1_gradient_penalty_loss: "HWC" = E_n[sum_{c,h,w} g^2], "pixel" = E_{n,h,w}[sum_c g^2]
    with g = dD(x)/dx; differentiable in D's weights."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(1, 3, 4, 5, generator=g)
    real = torch.randn(2, 3, 4, 5, generator=g)
    assert torch.allclose(r1_penalty(Linear(w), real), (w**2).sum())
    assert torch.allclose(r1_penalty(Linear(w), real, "pixel"), (w**2).sum(1).mean())
    a = torch.rand(1, 3, 4, 5, generator=g)
    quad = Quadratic(a.clone())
    penalty = r1_penalty(quad, real)
    # g = 2 a x: E_n sum 4 a^2 x_n^2
    expected = (4 * a**2 * real**2).flatten(1).sum(1).mean()
    assert torch.allclose(penalty, expected)
    penalty.backward()  # d/da: E_n[8 a x_n^2]
    assert torch.allclose(quad.a.grad, (8 * a * real**2).mean(0, keepdim=True), atol=1e-6)
    assert real.grad is None  # the penalty works on a copy of the reals
    with pytest.raises(ValueError, match="norm_mode"):
        r1_penalty(quad, real, "CHW")


def test_path_lengths_and_penalty_hand_computed():
    """l_n = sqrt(mean_l ||J_l^T y_n||^2); for fake = sum_l latent_l W_l (linear), J_l^T y = W_l y.
    y ~ N(0, I) / sqrt(H W) by default. The running mean a' = a + decay (mean l - a), penalty
    mean((l - a')^2)."""
    g = torch.Generator().manual_seed(1)
    n, layers, dim, c, h, w = 3, 4, 5, 2, 3, 3
    weights = torch.randn(layers, dim, c * h * w, generator=g)
    latent = torch.randn(n, layers, dim, generator=g, requires_grad=True)
    fake = torch.einsum("nld,ldp->np", latent, weights).reshape(n, c, h, w)
    y = torch.randn(n, c, h, w, generator=g)
    expected = torch.stack(
        [torch.stack([(weights[l] @ y[i].flatten()).pow(2).sum() for l in range(layers)]).mean().sqrt() for i in range(n)]
    )
    assert torch.allclose(path_lengths(fake, latent, y), expected)
    # the default y: standard normal over sqrt(H W), from the given generator
    drawn = path_lengths(fake, latent, generator=torch.Generator().manual_seed(7))
    y7 = torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(7)) / math.sqrt(h * w)
    assert torch.allclose(drawn, path_lengths(fake, latent, y7))

    lengths = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    penalty, new_mean = path_length_penalty(lengths, torch.tensor(0.5), decay=0.01)
    a = 0.5 + 0.01 * (2.0 - 0.5)
    assert new_mean.item() == pytest.approx(a) and not new_mean.requires_grad
    assert penalty.item() == pytest.approx(((1 - a) ** 2 + (2 - a) ** 2 + (3 - a) ** 2) / 3)
    penalty.backward()
    # MMagic: the gradient also flows through a' (d a'/d l_i = decay / n)
    d = [2 * (li - a) / 3 for li in (1.0, 2.0, 3.0)]
    expected_grad = [d[i] - sum(d) * 0.01 / 3 for i in range(3)]
    assert lengths.grad.tolist() == pytest.approx(expected_grad)


def test_non_saturating_losses():
    gan = _tiny_gan()
    real, fake = torch.tensor([[2.0], [-1.0]]), torch.tensor([[0.5], [-3.0]])
    d = gan.discriminator_loss(real, fake, None, None)
    assert d["loss_disc_real"].item() == pytest.approx(-torch.log(torch.sigmoid(real)).mean().item())
    assert d["loss_disc_fake"].item() == pytest.approx(-torch.log(1 - torch.sigmoid(fake)).mean().item())
    assert gan.generator_loss(fake, None)["loss_gen"].item() == pytest.approx(-torch.log(torch.sigmoid(fake)).mean().item())


def test_adam_correction_and_ema_half_life():
    """MMagic's configs: G lr 0.002 x 4/5, betas (0, 0.99^(4/5)); D lr 0.002 x 16/17, betas (0, 0.99^(16/17));
    EMA momentum 1 - 0.5^(32 / 10000) at batch 32 (half-life 10 kimg)."""
    lr, betas = lazy_regularization_adam(0.002, (0.0, 0.99), 4)
    assert lr == pytest.approx(0.0016) and betas == (0.0, pytest.approx(0.99**0.8))
    lr, betas = lazy_regularization_adam(0.002, (0.0, 0.99), 16)
    assert lr == pytest.approx(0.002 * 16 / 17) and betas == (0.0, pytest.approx(0.99 ** (16 / 17)))
    assert lazy_regularization_adam(0.002, (0.5, 0.99), 1) == (0.002, (0.5, 0.99))
    with pytest.raises(ValueError, match="interval"):
        lazy_regularization_adam(0.002, (0.0, 0.99), 0)
    m = ema_momentum_for_half_life(10, 32)
    assert m == pytest.approx(1 - 0.5 ** (32 / 10000)) and m == pytest.approx(0.0022157, rel=1e-4)
    # 10 kimg at any batch halves an old weight's share
    for batch in (8, 32, 64):
        assert (1 - ema_momentum_for_half_life(10, batch)) ** (10000 / batch) == pytest.approx(0.5)


@pytest.mark.parametrize("discriminator_steps, r1_at, pl_at", [
    (1, [0, 16, 32], [0, 4, 8, 12, 16, 20, 24, 28, 32]),  # MMagic: iteration % 16, iteration % 4
    (2, [0, 16, 32], [1, 9, 17, 25, 33]),  # G turns at odd iterations; every 4th turn from the first
])
def test_lazy_intervals_and_weights(monkeypatch, discriminator_steps, r1_at, pl_at):
    """R1 only on every 16th iteration with weight 5 x 16; path length on every 4th generator turn with
    weight 2 x 4, on half the batch; the running mean moves only then; everything else is unregularised."""
    seen = {"r1": [], "pl": [], "pl_batch": []}
    r1, pl = lazy_regularized.r1_penalty, lazy_regularized.path_length_penalty

    def spy_r1(discriminator, real, norm_mode):
        value = r1(discriminator, real, norm_mode)
        seen["r1"].append(value.detach())
        return value

    def spy_pl(lengths, mean, decay):
        seen["pl_batch"].append(len(lengths))
        penalty, new_mean = pl(lengths, mean, decay)
        seen["pl"].append((penalty.detach(), mean.clone(), new_mean))
        return penalty, new_mean

    monkeypatch.setattr(lazy_regularized, "r1_penalty", spy_r1)
    monkeypatch.setattr(lazy_regularized, "path_length_penalty", spy_pl)
    gan = _tiny_gan(discriminator_steps=discriminator_steps)
    batch = {"pixel_values": torch.rand(8, 3, 8, 8) * 2 - 1}
    r1_logged, pl_logged = [], []
    for it in range(34):
        logs = gan.train_step(batch, it)
        if "loss_r1_gp" in logs:
            r1_logged.append(it)
            assert logs["loss_r1_gp"] == pytest.approx(5.0 * 16 * seen["r1"][-1])
            assert logs["loss_d"] == pytest.approx(logs["loss_disc_fake"] + logs["loss_disc_real"] + logs["loss_r1_gp"])
        if "loss_path_regular" in logs:
            pl_logged.append(it)
            penalty, before, after = seen["pl"][-1]
            assert logs["loss_path_regular"] == pytest.approx(2.0 * 4 * penalty)
            assert logs["path_length_mean"] == after and not torch.equal(before, after)
            assert logs["loss_g"] == pytest.approx(logs["loss_gen"] + logs["loss_path_regular"])
        elif "loss_g" in logs:
            assert logs["loss_g"] == logs["loss_gen"]
    assert (r1_logged, pl_logged) == (r1_at, pl_at)
    assert len(seen["r1"]) == len(r1_at) and len(seen["pl"]) == len(pl_at)
    assert set(seen["pl_batch"]) == {4}  # pl_batch_shrink 2
    assert gan.path_length_mean.value == seen["pl"][-1][2]


def test_regularisers_off_and_bad_settings():
    gan = _tiny_gan(r1_weight=0, pl_weight=0)
    logs = gan.train_step({"pixel_values": torch.rand(4, 3, 8, 8) * 2 - 1}, 0)
    assert "loss_r1_gp" not in logs and "loss_path_regular" not in logs
    config = StyleGAN2Config(out_size=8, style_channels=16, max_channels=16, num_mlps=2)
    for kwargs, message in (({"r1_interval": 0}, "r1_interval"), ({"pl_weight": -1}, "pl_weight"), ({"pl_decay": 0}, "pl_decay"),
                            ({"r1_norm_mode": "CHW"}, "r1_norm_mode")):
        with pytest.raises(ValueError, match=message):
            LazyRegularizedGAN(StyleGAN2Generator(config), StyleGAN2Discriminator(config), **kwargs)


def test_style_mixing_draws_from_the_checkpointed_noise_generator():
    """The fakes are a function of the noise generator's state (z, mixing, noise maps): the same state
    gives the same fakes; with mix_prob 1 every fake mixes two styles, with mix_styles=False none does."""
    gan = _tiny_gan()
    state = gan.noise_generator.generator.get_state()
    a = gan.generate(gan.unwrapped_generator, 4)
    gan.noise_generator.generator.set_state(state)
    assert torch.equal(a, gan.generate(gan.unwrapped_generator, 4))
    calls = []
    generator = gan.unwrapped_generator
    original = generator._styles

    def record(*args, **kwargs):
        styles = original(*args, **kwargs)
        calls.append(len(styles))
        return styles

    generator._styles = record
    generator.config.mix_prob = 1.0
    gan.generate(generator, 4)
    gan.mix_styles = False
    gan.generate(generator, 4)
    assert calls == [2, 1]
    # the sample grids use the stored noise maps: the same z gives the same images every time
    z = torch.randn(2, 16)
    assert torch.equal(gan.sample(z), gan.sample(z))


# ---------------------------------------------------------------- the example script
def _import_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_stylegan2", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["OMP_NUM_THREADS"] = "1"
    return env


def _write_dataset(folder: Path, count: int = 16, size: int = 12) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size + 2, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    return folder


def test_script_defaults_are_mmagic_recipe_and_the_smoke_run():
    script = _import_script()
    recipe = script.parse_args(["--dataset_name", "tglcourse/lsun_church_train"])
    assert not recipe.smoke_run and (recipe.resolution, recipe.train_batch_size, recipe.model_config_overrides) == (256, 4, None)
    config = script.model_config(recipe)
    assert (config.out_size, config.style_channels, config.num_mlps, config.channel_multiplier) == (256, 512, 8, 2)
    assert (recipe.r1_weight, recipe.r1_interval, recipe.pl_weight, recipe.pl_interval, recipe.pl_decay, recipe.pl_batch_shrink) == (
        5.0, 16, 2.0, 4, 0.01, 2)
    opt = script.optimizer_settings(recipe)
    assert opt["generator_learning_rate"] == pytest.approx(0.002 * 4 / 5)
    assert opt["discriminator_learning_rate"] == pytest.approx(0.002 * 16 / 17)
    assert opt["generator_adam_betas"] == (0.0, pytest.approx(0.99 ** (4 / 5)))
    assert opt["discriminator_adam_betas"] == (0.0, pytest.approx(0.99 ** (16 / 17)))
    ema = script.parse_args(["--dataset_name", "x/y", "--use_ema"])
    assert script.ema_momentum(ema, 8) == pytest.approx(1 - 0.5 ** (32 / 10000))  # 4 x 8 processes: MMagic's value
    assert script.ema_momentum(script.parse_args(["--use_ema", "--ema_momentum", "0.01"]), 1) == 0.01
    assert script.ema_momentum(script.parse_args([]), 1) is None
    smoke = script.parse_args([])
    assert smoke.smoke_run and (smoke.resolution, smoke.train_batch_size, smoke.max_train_steps, smoke.num_threads) == (32, 8, 300, 1)
    # explicit flags win
    args = script.parse_args(["--resolution", "16", "--train_batch_size", "12", "--num_threads", "2"])
    assert (args.resolution, args.train_batch_size, args.num_threads) == (16, 12, 2)


@pytest.mark.parametrize("flags, message", [
    (["--train_batch_size", "6"], "groups 4 images"),
    (["--resolution", "24"], "--resolution 24"),
    (["--model_config_overrides", '{"out_size": 64}'], "'out_size' is set by --resolution"),
    (["--model_config_overrides", '{"style_channel": 64}'], "did you mean 'style_channels'?"),
    (["--r1_interval", "0"], "--r1_interval must be >= 1"),
    (["--pl_weight", "-1"], "--pl_weight must be >= 0"),
    (["--inception", "x.pt"], "--inception needs --evaluation_images"),
    (["--ema_momentum", "0.1"], "need --use_ema"),
])
def test_script_rejects_bad_flags(flags, message, capsys):
    with pytest.raises(SystemExit):
        _import_script().parse_args(flags)
    assert message in capsys.readouterr().err


def test_script_evaluates_fid_and_keeps_the_best_by_it(tmp_path, monkeypatch):
    """--inception: the evaluations get the Inception file and best/ holds the lowest FID (lower is better),
    not the lowest SWD."""
    import hfmagic.evaluation

    fids = iter([5.0, 3.0, 4.0])
    seen = []

    def fake_evaluate_gan(generator, real, num_images, batch_size=64, seed=0, **kwargs):
        seen.append(kwargs.get("inception_path"))
        fid = next(fids)
        return {"swd": {"8": 10 - fid, "avg": 10 - fid}, "ms_ssim": 0.3, "fid": fid, "inception_score": None,
                "num_images": num_images, "ms_ssim_images": kwargs.get("ms_ssim_images")}

    monkeypatch.setattr(hfmagic.evaluation, "evaluate_gan", fake_evaluate_gan)
    inception = tmp_path / "inception.pt"
    inception.write_bytes(b"not read: evaluate_gan is replaced")
    script = _import_script()
    out = tmp_path / "run"
    tiny16 = ["--resolution", "16", *TINY[2:]]  # SWD needs a multiple of 16
    script.main(script.parse_args([*tiny16, "--train_batch_size", "4", "--max_train_steps", "3", "--checkpointing_steps", "0",
                                   "--save_images_steps", "0", "--num_sample_images", "4", "--report_to", "none",
                                   "--evaluation_images", "16", "--evaluation_steps", "1", "--inception", str(inception),
                                   "--output_dir", str(out)]))
    assert seen == [str(inception)] * 3
    best = json.loads((out / "best" / "best_step.json").read_text())
    assert (best["step"], best["fid"]) == (2, 3.0)
    assert "lowest FID (3.0000)" in (out / "best" / "README.md").read_text()
    assert "FID" in (out / "final" / "README.md").read_text()


def _script_args(data, out, *extra):
    return ["--train_data_dir", str(data), *TINY, "--train_batch_size", "4", "--max_train_steps", "8",
            "--r1_interval", "3", "--pl_interval", "2", "--use_ema", "--ema_momentum", "0.1", "--checkpointing_steps", "4",
            "--save_images_steps", "4", "--num_sample_images", "4", "--report_to", "none", "--seed", "3",
            "--output_dir", str(out), *extra]


@pytest.mark.slow
def test_script_resume_after_sigkill_is_exact(tmp_path):
    """Killed right after checkpoint-4, resumed: the weights, the EMA, the discriminator and the path-length
    mean at step 8 equal an uninterrupted run's (the noise generator, the data order and the running mean
    are in the checkpoint)."""
    data = _write_dataset(tmp_path / "data")
    script = _import_script()
    full = tmp_path / "full"
    script.main(script.parse_args(_script_args(data, full)))

    killed = tmp_path / "killed"
    wrapper = tmp_path / "kill_after_checkpoint.py"
    wrapper.write_text(textwrap.dedent(f"""
        import os, runpy, signal, sys
        import hfmagic.training.gan as gan
        save = gan.save_checkpoint
        def save_then_die(*args, **kwargs):
            path = save(*args, **kwargs)
            if path.name == "checkpoint-4":
                os.kill(os.getpid(), signal.SIGKILL)
            return path
        gan.save_checkpoint = save_then_die
        sys.argv = [{str(SCRIPT)!r}] + sys.argv[1:]
        runpy.run_path({str(SCRIPT)!r}, run_name="__main__")
    """))
    proc = subprocess.run([sys.executable, str(wrapper), *_script_args(data, killed)], env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert [p.name for p in killed.glob("checkpoint-*")] == ["checkpoint-4"] and not (killed / "final").exists()
    script.main(script.parse_args(_script_args(data, killed, "--resume_from_checkpoint", "latest")))
    for name in ("checkpoint-8/model.safetensors", "checkpoint-8/model_1.safetensors", "final/model.safetensors",
                 "final/discriminator/model.safetensors"):
        a, b = load_file(full / name), load_file(killed / name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}: {key} differs after resume"
    means = [torch.load(run / "checkpoint-8" / "custom_checkpoint_2.pkl", weights_only=False) for run in (full, killed)]
    assert means[0] == means[1] and means[0]["values"][0] > 0
    assert sorted(p.name for p in (full / "samples").iterdir()) == ["step-4.png", "step-8.png"]
    # the final generator is the EMA one, a StyleGAN2Generator
    generator = StyleGAN2Generator.from_pretrained(full / "final")
    assert generator(num_batches=2).shape == (2, 3, 8, 8)


@pytest.mark.slow
def test_two_ddp_processes_on_cpu(tmp_path):
    """Two processes: DDP keeps the weights equal (R1's and the path length's double backward included), each
    rank keeps its own path-length mean, and a two-process resume is exact."""
    data = _write_dataset(tmp_path / "data", count=16)
    wrapper = tmp_path / "report_ranks.py"
    wrapper.write_text(textwrap.dedent(f"""
        import os, runpy, sys
        import hfmagic.training.gan_training as gan_module
        train = gan_module.train_gan_loop
        def train_and_report(gan, *args, **kwargs):
            logs = train(gan, *args, **kwargs)
            weights = sum(float(p.double().sum()) for m in (gan.unwrapped_generator, gan.unwrapped_discriminator) for p in m.parameters())
            os.write(1, f"RANK {{gan.accelerator.process_index}} weights {{weights!r}} pl {{float(gan.path_length_mean.value)!r}}\\n".encode())
            return logs
        gan_module.train_gan_loop = train_and_report
        sys.argv = [{str(SCRIPT)!r}] + sys.argv[1:]
        runpy.run_path({str(SCRIPT)!r}, run_name="__main__")
    """))
    env = {**_env(), "ACCELERATE_USE_CPU": "1"}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", str(wrapper)]

    def run(output_dir, steps, *extra):
        args = ["--train_data_dir", str(data), *TINY, "--train_batch_size", "4", "--max_train_steps", str(steps), "--use_ema",
                "--r1_interval", "2", "--pl_interval", "2", "--checkpointing_steps", "3", "--save_images_steps", "0",
                "--num_sample_images", "4", "--report_to", "none", "--output_dir", str(output_dir), *extra]
        proc = subprocess.run(launch + args, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    out = tmp_path / "ddp"
    proc = run(out, 6)
    assert "MULTI_CPU" in proc.stderr and "Num processes: 2" in proc.stderr
    reports = sorted(line.split() for line in proc.stdout.splitlines() if line.startswith("RANK "))
    assert [r[1] for r in reports] == ["0", "1"], proc.stdout
    assert reports[0][3] == reports[1][3]  # DDP kept the weights identical
    assert reports[0][5] != reports[1][5]  # each rank its own path-length mean (MMagic's sync_mean_buffer=False)
    state = torch.load(out / "checkpoint-6" / "custom_checkpoint_2.pkl", weights_only=False)
    assert [repr(v) for v in state["values"]] == [reports[0][5], reports[1][5]]  # both ranks' means in the checkpoint
    # EMA momentum from the global batch (4 x 2 processes)
    assert f"EMA momentum {1 - 0.5 ** (8 / 10000):.6g}" in proc.stderr
    resumed = tmp_path / "resumed"
    run(resumed, 3)
    run(resumed, 6, "--resume_from_checkpoint", "latest")
    for name in ("checkpoint-6/model.safetensors", "checkpoint-6/model_1.safetensors", "final/model.safetensors"):
        a, b = load_file(out / name), load_file(resumed / name)
        assert all(torch.equal(a[key], b[key]) for key in a), name


@pytest.mark.slow
def test_script_without_arguments_is_a_smoke_run(tmp_path):
    """`python examples/train_stylegan2.py` with no flag: announced in one line with the LSUN recipe command,
    a small 32x32 StyleGAN2 on the embedded photos, final/ with the generator, card and samples."""
    proc = subprocess.run([sys.executable, str(SCRIPT)], cwd=tmp_path, env={**_env(), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    smoke = [line for line in proc.stderr.splitlines() if "Smoke run: no --dataset_name/--train_data_dir" in line]
    assert len(smoke) == 1 and "--dataset_name tglcourse/lsun_church_train --resolution 256" in smoke[0]
    assert "Training for 300 iterations, batch 8" in proc.stderr
    final = tmp_path / "stylegan2-output" / "final"
    assert sorted(p.name for p in final.iterdir()) == ["README.md", "config.json", "discriminator", "model.safetensors", "samples.png"]
    generator = StyleGAN2Generator.from_pretrained(final)
    assert generator.config.out_size == 32 and generator(num_batches=2).shape == (2, 3, 32, 32)
    card = (final / "README.md").read_text()
    assert "lazy R1 (HWC) weight 5 x 16" in card and "smoke run" in card
    assert (tmp_path / "stylegan2-output" / "checkpoint-300" / "hfmagic_state.json").exists()


def test_inception_from_a_local_file_or_the_hub(tmp_path, monkeypatch):
    import huggingface_hub

    script = _import_script()
    local = tmp_path / "inception.pt"
    local.write_bytes(b"x")
    assert script.resolve_inception(str(local)) == str(local) and script.resolve_inception(None) is None
    calls = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda repo, name: calls.append((repo, name)) or "/cache/file.pt")
    assert script.resolve_inception("me/metrics/weights/inception-2015-12-05.pt") == "/cache/file.pt"
    assert calls == [("me/metrics", "weights/inception-2015-12-05.pt")]
    with pytest.raises(FileNotFoundError, match="neither a file nor 'repo_id/filename'"):
        script.resolve_inception("missing.pt")


def test_script_bf16_autocast_with_both_regularisers(tmp_path, caplog):
    """bf16 autocast: accelerate hands back fp32 copies of a forward's outputs, which must not cut the
    path-length (latents -> images) or R1 (reals -> logits) gradients."""
    import logging

    script = _import_script()
    caplog.set_level(logging.INFO, logger="train_stylegan2")
    final = script.main(script.parse_args([*TINY, "--train_batch_size", "4", "--max_train_steps", "3", "--r1_interval", "1",
                                           "--pl_interval", "1", "--mixed_precision", "bf16", "--checkpointing_steps", "0",
                                           "--save_images_steps", "0", "--num_sample_images", "4", "--report_to", "none",
                                           "--output_dir", str(tmp_path / "run")]))
    assert "Mixed precision type: bf16" in caplog.text
    weights = load_file(final / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())
