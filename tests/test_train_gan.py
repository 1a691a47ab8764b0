"""The GAN loop (hfmagic.training.gan) and examples/train_dcgan.py: MMagic BaseGAN schedules, hooks
(an LSGAN subclass), divergence, exact resume after SIGKILL, Hub push, two DDP processes on CPU."""

import json
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

from hfmagic import DCGANConfig, DCGANDiscriminator, DCGANGenerator
from hfmagic.training import TrainingDivergedError
from hfmagic.training.gan import GAN, image_grid, train_gan_loop
from cli_help import help_by_flag

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "train_dcgan.py"
TINY = ["--resolution", "16", "--model_config_overrides", '{"generator_base_channels": 16, "discriminator_base_channels": 4}']


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny convolutions: thread hand-offs cost far more than they save on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class CountingSGD(torch.optim.SGD):
    def __init__(self, params, lr=0.01):
        super().__init__(params, lr=lr)
        self.steps = 0

    def step(self, closure=None):
        self.steps += 1
        return super().step(closure)


class RecordingGAN(GAN):
    """Records, per generator forward, whether the discriminator was trainable."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.generator_calls, self.discriminator_calls, self.frozen_during_g = 0, 0, []

    def train_discriminator(self, batch):
        self.discriminator_calls += 1
        return super().train_discriminator(batch)

    def train_generator(self, batch):
        self.generator_calls += 1
        self.frozen_during_g.append(not any(p.requires_grad for p in self.unwrapped_discriminator.parameters()))
        return super().train_generator(batch)


def _tiny_gan(cls=GAN, size=8, **kwargs):
    torch.manual_seed(0)
    config = DCGANConfig(image_size=size, noise_size=4, generator_base_channels=8, discriminator_base_channels=4)
    return cls(DCGANGenerator(config), DCGANDiscriminator(config), **kwargs)


def _prepare(gan, lr=0.01):
    accelerator = Accelerator(cpu=True)
    g_opt = CountingSGD(gan.generator.parameters(), lr=lr)
    d_opt = CountingSGD(gan.discriminator.parameters(), lr=lr)
    gan.prepare(accelerator, g_opt, d_opt, seed=0)
    return g_opt, d_opt


@pytest.mark.parametrize(
    # N iterations; expected counts worked out by hand from MMagic's BaseGAN.train_step
    "n, ds, gs, da, ga, ema_start, d_steps, g_turns, g_steps, ema_updates",
    [
        (12, 1, 1, 1, 1, 0, 12, 12, 12, 12),  # DCGAN default: one D, one G per iteration
        (12, 2, 1, 1, 1, 0, 12, 6, 6, 6),  # G on iterations 1, 3, ..., 11
        (12, 1, 3, 1, 2, 0, 12, 12, 36, 12),  # 3 G steps x 2 accumulations = 6 G backwards per turn
        (12, 2, 1, 3, 1, 0, 4, 2, 2, 2),  # D steps at it 2, 5, 8, 11; G when (it+1) % 6 == 0: it 5, 11
        (13, 1, 1, 3, 1, 0, 5, 4, 4, 4),  # 13 % 3: the last, incomplete group steps at the end (MMEngine)
        (12, 2, 1, 1, 1, 3, 12, 6, 6, 4),  # EMA from it+1 >= 3*2: turns at it 5, 7, 9, 11
    ],
)
def test_basegan_schedule_counts(n, ds, gs, da, ga, ema_start, d_steps, g_turns, g_steps, ema_updates):
    gan = _tiny_gan(
        RecordingGAN,
        discriminator_steps=ds,
        generator_steps=gs,
        discriminator_accumulation_steps=da,
        generator_accumulation_steps=ga,
        ema_momentum=0.5,
        ema_start=ema_start,
    )
    g_opt, d_opt = _prepare(gan)
    batch = {"pixel_values": torch.rand(4, 3, 8, 8) * 2 - 1}
    g_iterations = []
    for it in range(n):
        logs = gan.train_step(batch, it, max_iterations=n)
        if "loss_g" in logs:
            g_iterations.append(it)
        assert set(logs) >= {"loss_disc_fake", "loss_disc_real", "loss_d"}
    assert gan.discriminator_calls == n
    assert d_opt.steps == d_steps
    assert len(g_iterations) == g_turns and all((it + 1) % (ds * da) == 0 for it in g_iterations)
    assert gan.generator_calls == g_turns * gs * ga
    assert g_opt.steps == g_steps
    assert gan.generator_ema.num_updates == ema_updates
    assert all(gan.frozen_during_g) and all(p.requires_grad for p in gan.unwrapped_discriminator.parameters())


def test_discriminator_accumulation_divides_the_loss():
    """Two accumulated iterations step once with the mean of their gradients (MMEngine's loss / accum)."""
    gan = _tiny_gan(discriminator_accumulation_steps=2, discriminator_steps=100)  # no G update in 2 iterations
    _, d_opt = _prepare(gan, lr=1.0)
    batch = {"pixel_values": torch.rand(4, 3, 8, 8) * 2 - 1}
    weight = gan.unwrapped_discriminator.output_layer.conv.weight
    before = weight.detach().clone()
    # the same gradients by hand, with a copy of the noise generator's state
    reference = _tiny_gan()
    state = gan.noise_generator.generator.get_state()
    grads = []
    for _ in range(2):
        reference.discriminator.zero_grad()
        noise = reference.generator.sample_noise(4, gan.noise_generator.generator)
        with torch.no_grad():
            fake = reference.generator(noise)
        losses = GAN.discriminator_loss(None, reference.discriminator(batch["pixel_values"]), reference.discriminator(fake), None, None)
        sum(losses.values()).backward()
        grads.append(reference.discriminator.output_layer.conv.weight.grad.clone())
    gan.noise_generator.generator.set_state(state)
    gan.train_step(batch, 0)
    assert torch.equal(weight, before) and d_opt.steps == 0
    gan.train_step(batch, 1)
    assert d_opt.steps == 1
    torch.testing.assert_close(weight.detach(), before - (grads[0] + grads[1]) / 2, rtol=1e-5, atol=1e-6)


def test_dcgan_losses_and_no_generator_gradient_in_discriminator_step():
    gan = _tiny_gan()
    real, fake = torch.tensor([[2.0], [-1.0]]), torch.tensor([[0.5], [-3.0]])
    d = gan.discriminator_loss(real, fake, None, None)
    assert torch.isclose(d["loss_disc_real"], F.binary_cross_entropy_with_logits(real, torch.ones(2, 1)))
    assert torch.isclose(d["loss_disc_fake"], -torch.log(1 - torch.sigmoid(fake)).mean())
    assert torch.isclose(gan.generator_loss(fake, None)["loss_gen"], -torch.log(torch.sigmoid(fake)).mean())
    _prepare(gan)
    gan.train_discriminator({"pixel_values": torch.rand(2, 3, 8, 8)})["loss_disc_real"].backward()
    assert all(p.grad is None for p in gan.unwrapped_generator.parameters())


class LSGAN(GAN):
    """Least-squares GAN: only the losses change."""

    def discriminator_loss(self, real_logits, fake_logits, real, fake):
        return {"loss_disc_real": 0.5 * ((real_logits - 1) ** 2).mean(), "loss_disc_fake": 0.5 * (fake_logits**2).mean()}

    def generator_loss(self, fake_logits, fake):
        return {"loss_gen": 0.5 * ((fake_logits - 1) ** 2).mean()}


class ExplodingGAN(GAN):
    """Returns a NaN generator loss from the 7th iteration on (a stand-in for a diverging run)."""

    def generator_loss(self, fake_logits, fake):
        loss = super().generator_loss(fake_logits, fake)
        if self.iteration >= 6:
            loss["loss_gen"] = loss["loss_gen"] * float("nan")
        return loss

    def train_step(self, batch, iteration, max_iterations=None):
        self.iteration = iteration
        return super().train_step(batch, iteration, max_iterations)


def _loader(accelerator, n=24, size=8, batch_size=4):
    images = torch.rand(n, 3, size, size) * 2 - 1
    dataset = [{"pixel_values": image} for image in images]
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True)
    return accelerator.prepare(loader)


def test_lsgan_subclass_trains_with_the_same_loop(tmp_path):
    gan = _tiny_gan(LSGAN, ema_momentum=0.1)
    _prepare(gan)
    noise = torch.randn(4, 4)
    before = gan.sample(noise)
    logs = train_gan_loop(gan, _loader(gan.accelerator), max_train_steps=8, output_dir=tmp_path, save_images_steps=4,
                     fixed_noise=noise, show_progress=False)
    assert logs["step"] == 8 and logs["epoch"] == 1
    # LSGAN's D loss is 0.5 * E[(D(x) - 1)^2] + 0.5 * E[D(G(z))^2]; BCE's would be >= 2 * log(2) / 2 at chance
    assert logs["loss_d"] == pytest.approx(logs["loss_disc_real"] + logs["loss_disc_fake"])
    assert not torch.equal(gan.sample(noise), before)
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step-4.png", "step-8.png"]
    assert Image.open(tmp_path / "samples" / "step-8.png").size == (2 * 8 + 3 * 2, 2 * 8 + 3 * 2)


def test_divergence_stops_and_keeps_last_good_checkpoint(tmp_path):
    gan = _tiny_gan(ExplodingGAN)
    _prepare(gan)
    with pytest.raises(TrainingDivergedError, match=r"step 7: non-finite loss.*checkpoint-6"):
        train_gan_loop(gan, _loader(gan.accelerator), max_train_steps=20, output_dir=tmp_path, checkpointing_steps=3,
                  show_progress=False)
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]
    weights = load_file(tmp_path / "checkpoint-6" / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_resume_with_other_learning_rates_uses_them(tmp_path, caplog):
    gan = _tiny_gan()
    _prepare(gan, lr=0.01)
    train_gan_loop(gan, _loader(gan.accelerator), max_train_steps=2, output_dir=tmp_path, checkpointing_steps=2, show_progress=False)
    gan = _tiny_gan()
    g_opt, d_opt = _prepare(gan, lr=0.001)  # e.g. after a divergence: "resume with a lower --learning_rate"
    with caplog.at_level("WARNING"):
        train_gan_loop(gan, _loader(gan.accelerator), max_train_steps=4, output_dir=tmp_path, checkpointing_steps=2,
                  resume_from_checkpoint="latest", show_progress=False)
    assert g_opt.param_groups[0]["lr"] == d_opt.param_groups[0]["lr"] == 0.001
    assert "generator learning rate 0.001 replaces the checkpoint's 0.01 from step 2" in caplog.text
    saved = torch.load(tmp_path / "checkpoint-4" / "optimizer.bin", weights_only=True)
    assert saved["param_groups"][0]["lr"] == 0.001


def test_periodic_evaluation_keeps_the_best_generator_across_resume(tmp_path):
    """MMagic's save_best="swd/avg" (lower is better): best/ holds the generator of the lowest SWD
    average; the checkpoints carry that score, so a resumed run does not replace it with a worse one."""
    scores = {2: 5.0, 4: 3.0, 6: 4.0, 8: 3.5}
    calls = []

    def evaluate(generator, step):
        calls.append((step, generator))
        return {"swd": {"8": scores[step], "avg": scores[step]}, "ms_ssim": 0.25, "fid": None, "inception_score": None,
                "num_images": 4, "ms_ssim_images": 4}

    gan = _tiny_gan()
    _prepare(gan)
    with pytest.raises(ValueError, match="evaluation_steps=2 needs an evaluate function"):
        train_gan_loop(gan, _loader(gan.accelerator), max_train_steps=6, output_dir=tmp_path, evaluation_steps=2, show_progress=False)
    logs = train_gan_loop(gan, _loader(gan.accelerator), max_train_steps=6, output_dir=tmp_path, checkpointing_steps=2,
                     evaluate=evaluate, evaluation_steps=2, evaluation_dataset="toy", show_progress=False)
    assert [step for step, _ in calls] == [2, 4, 6]
    assert (logs["swd_avg"], logs["best_swd_avg"], logs["best_step"]) == (4.0, 3.0, 4)
    best = tmp_path / "best"
    assert json.loads((best / "best_step.json").read_text())["step"] == 4
    # best/ is the generator of step 4 (no EMA here: the trained generator, saved in checkpoint-4)
    for key, value in _tensors(tmp_path / "checkpoint-4" / "model.safetensors").items():
        assert torch.equal(value, _tensors(best / "model.safetensors")[key]), key
    assert (best / "discriminator" / "model.safetensors").is_file()
    card = (best / "README.md").read_text()
    assert "SWD (avg)" in card and "toy" in card and "iteration 4" in card
    assert "trained on toy\n" in card  # the title names the data, as final/'s does
    # the checkpoint saved at step 4 (before that evaluation) was told of the new best; later ones carry it
    for step in (4, 6):
        state = json.loads((tmp_path / f"checkpoint-{step}" / "hfmagic_state.json").read_text())
        assert (state["best_swd_avg"], state["best_step"]) == (3.0, 4), step
    state = json.loads((tmp_path / "checkpoint-2" / "hfmagic_state.json").read_text())
    assert (state["best_swd_avg"], state["best_step"]) == (5.0, 2)

    assert all(json.loads((tmp_path / f"checkpoint-{n}" / "hfmagic_state.json").read_text())["evaluated"] for n in (2, 4, 6))
    # resumed to step 8: 3.5 is worse than the best 3.0, so best/ stays at step 4. Made harder: the run
    # was killed while step 6 was being evaluated (checkpoint-6 saved, its evaluation not finished),
    # and between best/'s two renames (best/ sits aside): step 6 is evaluated first, then step 8
    os.replace(best, tmp_path / ".best.aside")
    state6 = tmp_path / "checkpoint-6" / "hfmagic_state.json"
    killed = {k: v for k, v in json.loads(state6.read_text()).items() if k.startswith(("step", "epoch"))}
    state6.write_text(json.dumps({**killed, "evaluated": False}))  # as saved before the evaluation began
    calls.clear()
    gan = _tiny_gan()
    _prepare(gan)
    logs = train_gan_loop(gan, _loader(gan.accelerator), max_train_steps=8, output_dir=tmp_path, checkpointing_steps=2,
                     resume_from_checkpoint="latest", evaluate=evaluate, evaluation_steps=2, show_progress=False)
    assert [step for step, _ in calls] == [6, 8]
    assert json.loads(state6.read_text())["evaluated"] is True
    assert (logs["swd_avg"], logs["best_swd_avg"], logs["best_step"]) == (3.5, 3.0, 4)
    assert json.loads((best / "best_step.json").read_text())["step"] == 4  # put back, and kept
    assert not (tmp_path / ".best.aside").exists()
    # an evaluation of another size does not compare with the best: best/ starts again
    scores[10] = 3.9
    sizes = {10: 8}
    gan = _tiny_gan()
    _prepare(gan)

    def evaluate_8(generator, step):
        return {**evaluate(generator, step), "num_images": sizes.get(step, 4)}

    logs = train_gan_loop(gan, _loader(gan.accelerator), max_train_steps=10, output_dir=tmp_path, checkpointing_steps=2,
                     resume_from_checkpoint="latest", evaluate=evaluate_8, evaluation_steps=2, show_progress=False)
    assert (logs["best_swd_avg"], logs["best_step"]) == (3.9, 10)
    assert json.loads((best / "best_step.json").read_text())["num_images"] == 8
    # without evaluation_steps: only the final generator is evaluated, and no best/ is kept
    calls.clear()
    gan = _tiny_gan()
    _prepare(gan)
    logs = train_gan_loop(gan, _loader(gan.accelerator), max_train_steps=2, output_dir=tmp_path / "final_only",
                     evaluate=evaluate, show_progress=False)
    assert [step for step, _ in calls] == [2] and logs["swd_avg"] == 5.0 and "best_step" not in logs
    assert not (tmp_path / "final_only" / "best").exists()


def test_a_killed_final_evaluation_is_redone_and_old_checkpoints_are_not_reevaluated(tmp_path):
    calls = []

    def evaluate(generator, step):
        calls.append(step)
        return {"swd": {"8": 1.0, "avg": 1.0}, "ms_ssim": 0.2, "num_images": 4}

    def run(out, steps, **kwargs):
        gan = _tiny_gan()
        _prepare(gan)
        return train_gan_loop(gan, _loader(gan.accelerator), max_train_steps=steps, output_dir=out, checkpointing_steps=2,
                         show_progress=False, **kwargs)

    # final evaluation only; killed during it: the resume (same length, nothing left to train) redoes it
    run(tmp_path / "a", 4, evaluate=evaluate)
    state = tmp_path / "a" / "checkpoint-4" / "hfmagic_state.json"
    assert json.loads(state.read_text())["evaluated"] is True and calls == [4]
    state.write_text(json.dumps({**json.loads(state.read_text()), "evaluated": False}))
    calls.clear()
    logs = run(tmp_path / "a", 4, evaluate=evaluate, resume_from_checkpoint="latest")
    assert calls == [4] and logs["swd_avg"] == 1.0 and json.loads(state.read_text())["evaluated"] is True
    # a checkpoint saved without evaluation (no "evaluated" key) is not evaluated on resume
    run(tmp_path / "b", 4)
    assert "evaluated" not in json.loads((tmp_path / "b" / "checkpoint-4" / "hfmagic_state.json").read_text())
    calls.clear()
    run(tmp_path / "b", 6, evaluate=evaluate, evaluation_steps=2, resume_from_checkpoint="latest")
    assert calls == [6]


def test_write_folder_atomically_never_loses_the_old_folder(tmp_path):
    from hfmagic.training import recover_folder, write_folder_atomically

    folder = tmp_path / "best"
    write_folder_atomically(folder, lambda f: (f / "weights").write_text("v1"))
    assert (folder / "weights").read_text() == "v1"

    def crash(f):
        (f / "weights").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_folder_atomically(folder, crash)
    assert (folder / "weights").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]  # the half-written copy is gone
    # a kill between the two renames left the old folder aside and none in place (and a stale tmp):
    # recover_folder puts it back, and so does the next write before anything else
    os.replace(folder, tmp_path / ".best.aside")
    (tmp_path / ".best.tmp").mkdir()
    recover_folder(folder)
    assert (folder / "weights").read_text() == "v1" and sorted(p.name for p in tmp_path.iterdir()) == ["best"]
    os.replace(folder, tmp_path / ".best.aside")
    with pytest.raises(KeyboardInterrupt):
        write_folder_atomically(folder, crash)
    assert (folder / "weights").read_text() == "v1"
    write_folder_atomically(folder, lambda f: (f / "weights").write_text("v2"))
    assert (folder / "weights").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]


def test_image_grid_layout():
    images = torch.full((5, 1, 4, 4), -1.0)
    images[4] = 1.0
    grid = np.asarray(image_grid(images, nrow=3, padding=1))
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1)
    assert grid[6:10, 6:10].min() == 255 and grid[1:5, 1:5].max() == 0


# ---------------------------------------------------------------- the example script
def _write_dataset(folder: Path, count: int = 24, size: int = 20) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size + 4, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    return folder


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["OMP_NUM_THREADS"] = "1"
    return env


def _script_args(data, out, *extra):
    return [
        "--train_data_dir", str(data), *TINY, "--train_batch_size", "8", "--max_train_steps", "10",
        "--discriminator_steps", "2", "--use_ema", "--ema_decay", "0.9", "--checkpointing_steps", "4",
        "--save_images_steps", "5", "--num_sample_images", "4", "--report_to", "none", "--seed", "3",
        "--output_dir", str(out), *extra,
    ]


def _tensors(path):
    return load_file(path)


def _import_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_dcgan", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_script_resume_after_sigkill_is_exact(tmp_path):
    data = _write_dataset(tmp_path / "data")  # 24 images, batch 8: 3 batches per epoch
    script = _import_script()
    full = tmp_path / "full"
    script.main(script.parse_args(_script_args(data, full)))

    # the same run, SIGKILLed right after checkpoint-4 is written
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
    # what a kill during a later save leaves behind must never be picked up
    (killed / ".checkpoint-8.tmp").mkdir()
    (killed / "checkpoint-8").mkdir()  # no state file: incomplete
    assert json.loads((killed / "checkpoint-4" / "hfmagic_state.json").read_text()) == {"step": 4, "epoch": 1, "step_in_epoch": 1}

    script.main(script.parse_args(_script_args(data, killed, "--resume_from_checkpoint", "latest")))
    for name in ("checkpoint-8/model.safetensors", "checkpoint-8/model_1.safetensors", "final/model.safetensors",
                 "final/discriminator/model.safetensors"):
        a, b = _tensors(full / name), _tensors(killed / name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}: {key} differs after resume"
    # the saved generator is the EMA one, and it differs from the trained generator
    trained = _tensors(full / "checkpoint-8" / "model.safetensors")
    in_progress = DCGANGenerator.from_pretrained(full / "checkpoint-8")  # a checkpoint loads its generator
    assert all(torch.equal(in_progress.state_dict()[k], trained[k]) for k in trained)
    with pytest.raises(ValueError, match="saved as DCGANGenerator"):  # not the discriminator (model_1)
        DCGANDiscriminator.from_pretrained(full / "checkpoint-8")
    ema = DCGANGenerator.from_pretrained(full / "final")
    assert not torch.equal(ema.output_layer.conv.weight, trained["output_layer.conv.weight"])
    assert sorted(p.name for p in (full / "samples").iterdir()) == ["step-10.png", "step-5.png"]


@pytest.mark.slow
def test_script_trains_offline_saves_card_and_pushes(tmp_path, hub_server):
    from huggingface_hub import HfApi

    out = tmp_path / "run"
    args = [*TINY, "--train_batch_size", "16", "--max_train_steps", "4", "--checkpointing_steps", "0",
            "--save_images_steps", "2", "--num_sample_images", "4", "--evaluation_images", "16", "--evaluation_steps", "2",
            "--report_to", "tensorboard", "--output_dir", str(out), "--push_to_hub", "--hub_model_id", "me/tiny-dcgan"]
    script = _import_script()
    final = script.main(script.parse_args(args))  # no dataset flag: the embedded photos
    assert final == out / "final"
    assert sorted(p.name for p in final.iterdir()) == ["README.md", "config.json", "discriminator", "model.safetensors", "samples.png"]
    card = (final / "README.md").read_text()
    assert "![samples](samples.png)" in card and "SWD" in card and "MS-SSIM" in card and "discriminator/" in card
    # a descriptive title, the license, and the snippet loading the repo it was pushed to
    assert "\n# DCGAN 16x16 trained on hfmagic embedded photos\n" in card and "license: apache-2.0" in card
    assert 'DCGANGenerator.from_pretrained("me/tiny-dcgan")' in card
    # best/ was written into a temporary sibling, but its card loads best/ itself
    best_card = (out / "best" / "README.md").read_text()
    assert f'from_pretrained("{(out / "best").as_posix()}")' in best_card
    assert "\n# DCGAN 16x16 trained on hfmagic embedded photos\n" in best_card and "license: apache-2.0" in best_card
    # TensorBoard got both losses every step and the sample grid every --save_images_steps
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "logs" / "train_dcgan"), size_guidance={"images": 0, "scalars": 0}).Reload()
    assert {"loss_d", "loss_g"} <= set(events.Tags()["scalars"]), events.Tags()
    assert [event.step for event in events.Scalars("loss_d")] == [1, 2, 3, 4]
    assert [event.step for event in events.Scalars("eval/swd_avg")] == [2, 4]  # --evaluation_steps 2
    swd_by_step = {event.step: event.value for event in events.Scalars("eval/swd_avg")}
    best = json.loads((out / "best" / "best_step.json").read_text())
    assert best["swd"]["avg"] == pytest.approx(min(swd_by_step.values())) and best["step"] == min(swd_by_step, key=swd_by_step.get)
    assert DCGANGenerator.from_pretrained(out / "best").config.image_size == 16
    grids = events.Images("samples")
    assert [event.step for event in grids] == [2, 4]
    files = set(HfApi().list_repo_files("me/tiny-dcgan")) - {".gitattributes"}  # made by create_repo
    assert files == {"README.md", "config.json", "model.safetensors", "samples.png", "discriminator/config.json",
                     "discriminator/model.safetensors"}
    generator = DCGANGenerator.from_pretrained("me/tiny-dcgan")
    discriminator = DCGANDiscriminator.from_pretrained("me/tiny-dcgan", subfolder="discriminator")
    assert generator(num_batches=2).shape == (2, 3, 16, 16)
    assert discriminator(generator(num_batches=2)).shape == (2, 1)
    from hfmagic.pipelines import DCGANPipeline

    images = DCGANPipeline.from_pretrained("me/tiny-dcgan")(num_images=2, seed=0)
    assert [image.size for image in images] == [(16, 16), (16, 16)]


def test_script_streaming_skips_corrupt_images(tmp_path):
    data = _write_dataset(tmp_path / "data", count=10)
    (data / "03.png").write_bytes(b"broken")
    out = tmp_path / "run"
    script = _import_script()
    base = ["--train_data_dir", str(data), *TINY, "--train_batch_size", "4", "--max_train_steps", "3",
            "--checkpointing_steps", "0", "--save_images_steps", "0", "--num_sample_images", "4",
            "--report_to", "none", "--output_dir", str(out)]
    with pytest.raises(ValueError, match=r"row \d+ .*03\.png.*--skip_corrupt_images"):
        script.main(script.parse_args(base))
    with pytest.warns(UserWarning, match="03.png"):
        script.main(script.parse_args([*base, "--streaming", "--skip_corrupt_images"]))
    assert DCGANGenerator.from_pretrained(out / "final").config.image_size == 16


def test_script_streaming_resume_is_exact(tmp_path):
    """A stream has no sampler: the epoch reshuffles (set_epoch) and skipped batches replay its order."""
    data = _write_dataset(tmp_path / "data", count=12)  # batch 4: 3 batches per epoch
    script = _import_script()

    def run(out, steps, *extra):
        args = ["--train_data_dir", str(data), *TINY, "--train_batch_size", "4", "--max_train_steps", str(steps),
                "--checkpointing_steps", "4", "--save_images_steps", "0", "--num_sample_images", "4", "--report_to", "none",
                "--streaming", "--shuffle_buffer_size", "5", "--output_dir", str(out), *extra]
        script.main(script.parse_args(args))

    run(tmp_path / "full", 8, "--checkpoints_total_limit", "1")
    assert [p.name for p in (tmp_path / "full").glob("checkpoint-*")] == ["checkpoint-8"]  # checkpoint-4 pruned
    run(tmp_path / "resumed", 4)
    run(tmp_path / "resumed", 8, "--resume_from_checkpoint", str(tmp_path / "resumed" / "checkpoint-4"))  # a PATH
    for name in ("checkpoint-8/model.safetensors", "checkpoint-8/model_1.safetensors"):
        a, b = _tensors(tmp_path / "full" / name), _tensors(tmp_path / "resumed" / name)
        assert all(torch.equal(a[key], b[key]) for key in a), name


def test_script_grayscale_on_embedded_photos(tmp_path, caplog, capsys):
    """Grayscale, bf16 autocast, a DataLoader worker and separate G/D learning rates in one tiny run."""
    import logging

    from accelerate.state import AcceleratorState

    script = _import_script()
    caplog.set_level(logging.INFO, logger="train_dcgan")
    caplog.set_level(logging.INFO, logger="hfmagic.training.gan")
    final = script.main(script.parse_args([*TINY, "--num_channels", "1", "--train_batch_size", "8", "--max_train_steps", "2",
                                           "--checkpointing_steps", "2", "--save_images_steps", "0", "--num_sample_images", "4",
                                           "--mixed_precision", "bf16", "--dataloader_num_workers", "1",
                                           "--generator_learning_rate", "1e-3", "--discriminator_learning_rate", "3e-4",
                                           "--report_to", "none", "--output_dir", str(tmp_path / "gray")]))
    # off a terminal, the progress bar is a log line with both losses (tests/test_logging_utils.py)
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Steps ")]
    assert len(progress) == 1 and progress[0].startswith("Steps 2/2 (100%)") and "loss_d=" in progress[0] and "loss_g=" in progress[0]
    generator = DCGANGenerator.from_pretrained(final)
    assert generator.config.num_channels == 1 and generator.output_layer.conv.weight.dtype == torch.float32
    assert Image.open(final / "samples.png").mode == "L"
    assert "Mixed precision type: bf16" in caplog.text
    # optimizer.bin is the generator's Adam, optimizer_1.bin the discriminator's
    lrs = [torch.load(tmp_path / "gray" / "checkpoint-2" / name, weights_only=True)["param_groups"][0]["lr"]
           for name in ("optimizer.bin", "optimizer_1.bin")]
    assert lrs == [1e-3, 3e-4]
    # the run released accelerate's process-wide state: a later run in this process may change mixed precision
    assert not AcceleratorState._shared_state
    # `hfmagic sample` loads the trained generator (the EMA one when --use_ema) and writes grayscale PNGs
    from hfmagic.cli import main as cli_main

    assert cli_main(["sample", "--model", str(final), "--num-images", "2", "--output", str(tmp_path / "s"), "--device", "cpu"]) == 0
    assert [Image.open(p).mode for p in sorted((tmp_path / "s").iterdir())] == ["L", "L"]


def test_script_argument_checks():
    script = _import_script()
    defaults = script.parse_args(["--dataset_name", "pcuenq/lsun-bedrooms"])  # with a dataset: MMagic's DCGAN recipe
    assert (defaults.resolution, defaults.train_batch_size, defaults.learning_rate, defaults.adam_beta1, defaults.adam_beta2) == (
        64, 128, 2e-4, 0.5, 0.999)
    assert (defaults.discriminator_steps, defaults.generator_steps, defaults.num_channels, defaults.report_to) == (1, 1, 3, "auto")
    assert defaults.license == "apache-2.0"
    assert (defaults.max_train_steps, defaults.checkpointing_steps, defaults.save_images_steps) == (1000, 500, 500)
    assert defaults.model_config_overrides is None and not defaults.smoke_run  # the full-size DCGAN
    # diffusers' flag sets both networks' accumulation; a network's own flag wins
    both = script.parse_args(["--gradient_accumulation_steps", "2", "--checkpointing_steps", "4"])
    assert (both.discriminator_accumulation_steps, both.generator_accumulation_steps) == (2, 2)
    mixed = script.parse_args(["--gradient_accumulation_steps", "2", "--generator_accumulation_steps", "1", "--checkpointing_steps", "4"])
    assert (mixed.discriminator_accumulation_steps, mixed.generator_accumulation_steps) == (2, 1)
    assert (defaults.discriminator_accumulation_steps, defaults.generator_accumulation_steps) == (1, 1)
    assert script.ema_momentum(script.parse_args(["--use_ema"])) == 0.0002
    assert script.ema_momentum(script.parse_args(["--use_ema", "--ema_decay", "0.999"])) == pytest.approx(0.001)
    for bad in (["--ema_decay", "0.9"], ["--use_ema", "--ema_decay", "0.0002"], ["--dataset_name", "a/b", "--train_data_dir", "x"],
                ["--discriminator_accumulation_steps", "3", "--checkpointing_steps", "10"], ["--evaluation_images", "3"]):
        with pytest.raises(SystemExit):
            script.parse_args(bad)


def test_script_help_shows_defaults_and_the_recipe_is_stated_truly(capsys):
    """--help gives each flag's default ("(default: X)" unless its help states it); the docstring does not
    call the 1000-iteration default MMagic's recipe."""
    script = _import_script()
    with pytest.raises(SystemExit):
        script.parse_args(["--help"])
    out = capsys.readouterr().out
    text, helps = " ".join(out.split()), help_by_flag(out)
    for flag, default in (("--resolution", "64"), ("--learning_rate", "0.0002"), ("--adam_beta1", "0.5"),
                          ("--num_sample_images", "64"), ("--output_dir", "dcgan-output"), ("--seed", "0"),
                          ("--report_to", "auto"), ("--license", "apache-2.0")):
        assert f"(default: {default})" in helps[flag], (flag, helps[flag])
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "default: 1000 with a dataset, a short first run, not MMagic's length" in text
    assert "The run's length is not" in script.__doc__


def test_report_to_auto_uses_tensorboard_only_when_installed(monkeypatch, caplog):
    """The default tracker ("auto") is tensorboard when installed, else none with a warning saying how to
    get logs/; a tracker named explicitly but not installed is an error, not a silent no-op."""
    import logging

    import accelerate.tracking
    from accelerate.utils import LoggerType

    from hfmagic.training import GANTrainingArguments
    from hfmagic.training.run import resolve_report_to

    assert GANTrainingArguments().report_to == "tensorboard"  # installed here (the dev extra)
    assert resolve_report_to("none") is None and resolve_report_to(None) is None
    monkeypatch.setattr(accelerate.tracking, "get_available_trackers", lambda: [LoggerType.WANDB])
    with caplog.at_level(logging.WARNING):
        assert GANTrainingArguments().report_to is None
    assert "tensorboard is not installed, so the run writes no logs/" in caplog.text and "pip install tensorboard" in caplog.text
    with pytest.raises(ValueError, match=r"report_to='tensorboard', but the tensorboard package is not installed.*pip install tensorboard"):
        GANTrainingArguments(report_to="tensorboard")
    assert resolve_report_to("wandb") == "wandb"


def test_script_defaults_without_a_dataset_are_a_short_smoke_run(tmp_path):
    """No dataset flag: a small DCGAN, few steps, small batch (not 1000 x 128 on the full-size one, hours on a
    CPU); the optimiser stays MMagic's, and every flag given explicitly still wins."""
    script = _import_script()
    smoke = script.parse_args([])
    assert smoke.smoke_run
    assert (smoke.train_batch_size, smoke.max_train_steps, smoke.checkpointing_steps, smoke.save_images_steps) == (16, 300, 300, 100)
    assert smoke.model_config_overrides == {"generator_base_channels": 64, "discriminator_base_channels": 16}
    assert (smoke.resolution, smoke.learning_rate, smoke.adam_beta1, smoke.adam_beta2) == (64, 2e-4, 0.5, 0.999)
    smoke.model_config_overrides["generator_base_channels"] = 8  # a copy: the next parse is not affected
    assert script.parse_args([]).model_config_overrides["generator_base_channels"] == 64
    # explicit flags win, in the smoke run and with a dataset (0 is a value, not "unset")
    explicit = ["--train_batch_size", "32", "--max_train_steps", "7", "--checkpointing_steps", "0", "--save_images_steps", "0",
                "--model_config_overrides", '{"generator_base_channels": 128}']
    for data in ([], ["--train_data_dir", str(tmp_path)]):
        args = script.parse_args([*data, *explicit])
        assert args.smoke_run == (not data)
        assert (args.train_batch_size, args.max_train_steps, args.checkpointing_steps, args.save_images_steps) == (32, 7, 0, 0)
        assert args.model_config_overrides == {"generator_base_channels": 128}
    # a default checkpoint interval becomes a multiple of the accumulation instead of an error
    assert script.parse_args(["--gradient_accumulation_steps", "7"]).checkpointing_steps == 301
    assert script.parse_args(["--dataset_name", "a/b", "--discriminator_accumulation_steps", "3"]).checkpointing_steps == 501
    # the full-size DCGAN trains 17 s per iteration on 2 CPU cores: the smoke one must be orders of magnitude smaller
    from hfmagic import DCGANConfig

    small = DCGANGenerator(DCGANConfig(**smoke.model_config_overrides)).num_parameters()
    assert small < DCGANGenerator(DCGANConfig()).num_parameters() / 50


@pytest.mark.slow
def test_script_without_arguments_is_a_smoke_run_that_leaves_a_generator_samples_and_a_card(tmp_path):
    """`python examples/train_dcgan.py` exactly as the README and the design card give it (no flag at all): it
    says it is a smoke run, trains briefly on the embedded photos and leaves final/ in ./dcgan-output."""
    proc = subprocess.run([sys.executable, str(SCRIPT)], cwd=tmp_path, env={**_env(), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Smoke run: no --dataset_name/--train_data_dir" in proc.stderr
    assert "--dataset_name pcuenq/lsun-bedrooms" in proc.stderr  # how to run the real recipe
    assert "Training for 300 iterations, batch 16" in proc.stderr
    out = tmp_path / "dcgan-output"
    final = out / "final"
    assert sorted(p.name for p in final.iterdir()) == ["README.md", "config.json", "discriminator", "model.safetensors", "samples.png"]
    generator = DCGANGenerator.from_pretrained(final)
    assert (generator.config.generator_base_channels, generator.config.image_size) == (64, 64)
    assert generator(num_batches=2).shape == (2, 3, 64, 64)
    assert Image.open(final / "samples.png").size == (8 * 64 + 9 * 2, 8 * 64 + 9 * 2)  # 64 samples
    card = (final / "README.md").read_text()
    assert "![samples](samples.png)" in card and "for 300 iterations: batch 16" in card and "smoke run" in card
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step-100.png", "step-200.png", "step-300.png"]
    assert (out / "checkpoint-300" / "hfmagic_state.json").exists()  # resumable, e.g. with a larger --max_train_steps


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--model_config_overrides", '{"generator_base_channel": 8}'], "did you mean 'generator_base_channels'?"),
        (["--model_config_overrides", '{"image_size": 32}'], "'image_size' is set by --resolution"),
        (["--model_config_overrides", "[1]"], "must be a JSON object"),
        (["--learning_rate", "0"], "--learning_rate must be > 0"),
        (["--discriminator_learning_rate", "0"], "--discriminator_learning_rate must be > 0"),  # not "use --learning_rate"
        (["--checkpointing_steps", "-5"], "--checkpointing_steps must be >= 0"),
        (["--checkpoints_total_limit", "0"], "--checkpoints_total_limit must be >= 1"),
        (["--gradient_accumulation_steps", "0"], "--gradient_accumulation_steps must be >= 1"),
        (["--gradient_accumulation_steps", "2", "--checkpointing_steps", "3"], "multiple of --discriminator_accumulation_steps"),
        (["--evaluation_steps", "5"], "--evaluation_steps needs --evaluation_images"),
        (["--train_data_dir", "my_photos_that_do_not_exist"], "is not a folder (a Hub dataset id goes to --dataset_name)"),
        (["--output_dir", __file__], "is a file, not a folder"),
        (["--evaluation_images", "8", "--evaluation_steps", "-1"], "--evaluation_steps must be >= 0"),
    ],
)
def test_script_rejects_bad_flags_with_the_reason(flags, message, capsys):
    with pytest.raises(SystemExit):
        _import_script().parse_args(flags)
    assert message in capsys.readouterr().err


def test_script_keeps_the_token_out_of_trackers_and_checks_the_hub_first(tmp_path, monkeypatch):
    from huggingface_hub import constants

    script = _import_script()
    base = [*TINY, "--train_batch_size", "4", "--max_train_steps", "1", "--checkpointing_steps", "0", "--save_images_steps", "0",
            "--num_sample_images", "4", "--hub_token", "hf_SECRET_TOKEN_123"]
    script.main(script.parse_args([*base, "--report_to", "tensorboard", "--output_dir", str(tmp_path / "run")]))
    logs = [p for p in (tmp_path / "run" / "logs").rglob("*") if p.is_file()]
    assert logs and not any(b"hf_SECRET_TOKEN_123" in p.read_bytes() for p in logs)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(ConnectionError, match=r"create the Hub repo 'me/gan'.*unreachable.*drop --push_to_hub"):
        script.main(script.parse_args([*base, "--report_to", "none", "--push_to_hub", "--hub_model_id", "me/gan",
                                       "--output_dir", str(tmp_path / "pushed")]))
    assert not (tmp_path / "pushed" / "final").exists()


@pytest.mark.slow
def test_script_diverging_run_stops_with_clear_message(tmp_path):
    out = tmp_path / "run"
    script = _import_script()
    args = script.parse_args([*TINY, "--train_batch_size", "8", "--max_train_steps", "12", "--checkpointing_steps", "1",
                              "--save_images_steps", "0", "--report_to", "none", "--learning_rate", "1e18", "--output_dir", str(out)])
    with pytest.raises(TrainingDivergedError, match="Training diverged at step") as error:
        script.main(args)
    kept = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert not (out / "final").exists()
    # Adam's first step (about lr in size) leaves finite weights, so checkpoint-1 is written; the newest
    # kept checkpoint is named, and its weights are finite
    assert kept and kept[0].name == "checkpoint-1"
    assert str(kept[-1]) in str(error.value)
    assert all(torch.isfinite(w).all() for w in _tensors(kept[-1] / "model.safetensors").values())


@pytest.mark.slow
def test_two_ddp_processes_on_cpu(tmp_path):
    data = _write_dataset(tmp_path / "data", count=32)
    out = tmp_path / "ddp"
    # report, per rank, checksums of the trained weights and of the BatchNorm running statistics
    wrapper = tmp_path / "report_ranks.py"
    wrapper.write_text(textwrap.dedent(f"""
        import os, runpy, sys
        import hfmagic.training.gan_training as gan_module
        train = gan_module.train_gan_loop
        def train_and_report(gan, *args, **kwargs):
            logs = train(gan, *args, **kwargs)
            g, d = gan.unwrapped_generator, gan.unwrapped_discriminator
            weights = sum(float(p.double().sum()) for m in (g, d) for p in m.parameters())
            stats = float(g.noise2feat.bn.running_mean.double().sum())
            # one write per line: print() writes the text and the newline separately, so the two
            # ranks' lines could interleave on the shared pipe
            os.write(1, f"RANK {{gan.accelerator.process_index}} weights {{weights!r}} bn {{stats!r}}\\n".encode())
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
                "--discriminator_accumulation_steps", "3", "--checkpointing_steps", "3", "--save_images_steps", "3",
                "--num_sample_images", "4", "--report_to", "none", "--output_dir", str(output_dir), *extra]
        proc = subprocess.run(launch + args, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    # the first run also evaluates every 6 iterations on the main process while the other rank waits
    proc = run(out, 9, "--evaluation_images", "8", "--evaluation_steps", "6")
    assert "MULTI_CPU" in proc.stderr and "Num processes: 2" in proc.stderr
    best_step = json.loads((out / "best" / "best_step.json").read_text())["step"]
    assert best_step in (6, 9)
    for step in (6, 9):  # rank 0's evaluations reached the checkpoints of their steps
        state = json.loads((out / f"checkpoint-{step}" / "hfmagic_state.json").read_text())
        assert state["evaluated"] is True and state["best_step"] == (6 if step == 6 else best_step), state
    assert "SWD (avg)" in (out / "final" / "README.md").read_text()
    reports = sorted(line.split() for line in proc.stdout.splitlines() if line.startswith("RANK "))
    assert [r[1] for r in reports] == ["0", "1"], proc.stdout
    assert reports[0][3] == reports[1][3]  # DDP kept the weights identical
    assert reports[0][5] != reports[1][5]  # each rank keeps its own BatchNorm statistics (broadcast_buffers=False)
    assert (out / "checkpoint-9" / "random_states_1.pkl").exists()  # the second rank saved its state too
    generator = DCGANGenerator.from_pretrained(out / "final")
    assert torch.isfinite(generator(num_batches=2)).all()
    # resume with two processes: each rank's data and noise continue exactly
    resumed = tmp_path / "resumed"
    run(resumed, 3)
    run(resumed, 9, "--resume_from_checkpoint", "latest")
    for name in ("checkpoint-9/model.safetensors", "checkpoint-9/model_1.safetensors", "final/model.safetensors"):
        a, b = _tensors(out / name), _tensors(resumed / name)
        assert all(torch.equal(a[key], b[key]) for key in a), name
    assert "x 2 processes" in (out / "final" / "README.md").read_text()


def test_script_evaluates_with_mmagic_counts(tmp_path, monkeypatch):
    """--evaluation_images 16384 reproduces MMagic's protocol: SWD on 16384, MS-SSIM on 10000."""
    import hfmagic.evaluation

    seen = []

    def fake_evaluate_gan(generator, real, num_images, batch_size=64, seed=0, **kwargs):
        seen.append((num_images, kwargs.get("ms_ssim_images")))
        return {"swd": {"16": 1.0, "avg": 1.0}, "ms_ssim": 0.3, "fid": None, "inception_score": None,
                "num_images": num_images, "ms_ssim_images": kwargs.get("ms_ssim_images")}

    monkeypatch.setattr(hfmagic.evaluation, "evaluate_gan", fake_evaluate_gan)
    script = _import_script()
    args = [*TINY, "--train_batch_size", "4", "--max_train_steps", "2", "--checkpointing_steps", "0", "--save_images_steps", "0",
            "--report_to", "none", "--output_dir", str(tmp_path / "run")]
    script.main(script.parse_args(args + ["--evaluation_images", "16384"]))
    script.main(script.parse_args(args + ["--evaluation_images", "64", "--output_dir", str(tmp_path / "small")]))
    assert seen == [(16384, 10000), (64, 64)]
    card = (tmp_path / "run" / "final" / "README.md").read_text()
    assert "16384 images" in card and "10000 images" in card
