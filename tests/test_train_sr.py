"""The SR training loop (hfmagic.training.train_sr) and examples/train_sr.py: end to end on tiny
models and images, exact resume (also after SIGKILL), 2-process DDP on CPU, NaN stop, best/final
models with cards, Hub push, fine-tuning and a user-defined model."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from hfmagic import MSRResNet, MSRResNetConfig, SuperResolutionConfig, SuperResolutionPreTrainedModel
from hfmagic.training import (
    SRSampleStream,
    SRTrainingArguments,
    StreamBatchSampler,
    TrainingDivergedError,
    list_checkpoints,
    train_sr,
)
from cli_help import help_by_flag

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "train_sr.py"
TINY = json.dumps({"mid_channels": 8, "num_blocks": 1})


def _load_script():
    spec = importlib.util.spec_from_file_location("train_sr_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = _load_script()


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    """Six smooth-ish 40x40 RGB photos-to-be (gradients + noise), one grayscale."""
    folder = tmp_path_factory.mktemp("hr")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:40]
    for i in range(6):
        base = np.stack([np.sin(xx / (3 + i)) , np.cos(yy / (4 + i)), np.sin((xx + yy) / (5 + i))], axis=-1)
        img = ((base * 0.4 + 0.5 + rng.normal(0, 0.05, base.shape)).clip(0, 1) * 255).astype(np.uint8)
        Image.fromarray(img if i else img[..., 0]).save(folder / f"img{i}.png")
    return folder


@pytest.fixture(scope="module")
def val_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("val")
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(folder / "v0.png")
    return folder


def _argv(image_dir, out, *extra):
    return [
        "--model", "msrresnet", "--model_config_overrides", TINY, "--scale", "2", "--train_data_dir", str(image_dir),
        "--gt_patch_size", "16", "--train_batch_size", "2", "--report_to", "none", "--output_dir", str(out),
        "--validation_steps", "0", "--seed", "3", *extra,
    ]


def _weights(folder):
    return load_file(str(Path(folder) / "model.safetensors"))


def _assert_same(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for key in a:
        if atol == 0.0:
            assert torch.equal(a[key], b[key]), key
        else:
            torch.testing.assert_close(a[key], b[key], atol=atol, rtol=0), key


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_subprocess(cmd, env_extra=None, timeout=240):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env_extra or {})}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


# ----------------------------------------------------------------------------- data order


def test_ranks_split_the_single_process_batch_and_resume_starts_in_place():
    single = list(StreamBatchSampler(4, num_batches=3))
    rank0 = list(StreamBatchSampler(2, num_batches=3, rank=0, world_size=2))
    rank1 = list(StreamBatchSampler(2, num_batches=3, rank=1, world_size=2))
    assert [a + b for a, b in zip(rank0, rank1)] == single  # different data per rank, same global batch
    assert not set(sum(rank0, [])) & set(sum(rank1, []))
    assert list(StreamBatchSampler(4, num_batches=2, start=1)) == single[1:]
    with pytest.raises(ValueError, match="rank 2"):
        StreamBatchSampler(2, 1, rank=2, world_size=2)


class _Augmenting(torch.utils.data.Dataset):
    """Each item draws 'augmentation' from the global RNGs, like build_sr_dataset's transform."""

    def __len__(self):
        return 5

    def __getitem__(self, i):
        noise = torch.rand(1).item() + np.random.rand()
        return {"pixel_values": torch.full((3, 2, 2), float(i)), "labels": torch.full((3, 2, 2), noise)}


def test_sample_stream_is_a_pure_function_of_seed_and_position():
    stream = SRSampleStream(_Augmenting(), seed=7)
    # every epoch visits each sample once, in a different order
    epochs = [[stream.sample_index(p) for p in range(e * 5, e * 5 + 5)] for e in range(3)]
    assert all(sorted(e) == list(range(5)) for e in epochs) and epochs[0] != epochs[1]
    torch.manual_seed(0)
    first = [stream[p]["labels"][0, 0, 0].item() for p in range(12)]
    torch.manual_seed(123)  # the global RNG state does not matter, and is left alone
    state = torch.get_rng_state()
    again = [SRSampleStream(_Augmenting(), seed=7)[p]["labels"][0, 0, 0].item() for p in reversed(range(12))]
    assert first == again[::-1]
    assert torch.equal(torch.get_rng_state(), state)
    assert len(set(first)) == 12  # different augmentation at every position, even for the same sample
    loader = torch.utils.data.DataLoader(stream, batch_sampler=StreamBatchSampler(3, 4), num_workers=2)
    assert torch.cat([b["labels"][:, 0, 0, 0] for b in loader]).tolist() == first
    other_seed = [SRSampleStream(_Augmenting(), seed=8)[p]["labels"][0, 0, 0].item() for p in range(12)]
    assert other_seed != first


def test_sample_stream_warns_about_a_dataset_with_its_own_seed(image_dir):
    from hfmagic.data.sr_dataset import build_sr_dataset

    with pytest.warns(UserWarning, match="own seed"):
        SRSampleStream(build_sr_dataset(str(image_dir), scale=2, gt_patch_size=16, seed=1), seed=0)
    with pytest.raises(TypeError, match="map-style"):
        SRSampleStream(iter([]), seed=0)


# ----------------------------------------------------------------------------- end to end


def test_script_trains_validates_and_saves_best_and_final(image_dir, val_dir, tmp_path):
    out = tmp_path / "run"
    argv = _argv(image_dir, out, "--max_train_steps", "12", "--validation_steps", "6", "--checkpointing_steps", "6",
                 "--checkpoints_total_limit", "1", "--use_ema", "--validation_dataset", str(val_dir),
                 "--report_to", "tensorboard", "--lr_scheduler", "constant", "--learning_rate", "1e-3")
    result = script.main(script.parse_args(argv))
    assert result.global_step == 12
    assert [p.name for p in list_checkpoints(out)] == ["checkpoint-12"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "logs" / "train_sr"), size_guidance={"scalars": 0}).Reload()
    assert [e.step for e in events.Scalars("loss")] == list(range(1, 13)) and events.Scalars("lr")[0].value == pytest.approx(1e-3)
    assert [e.step for e in events.Scalars(f"val/{val_dir.name}/psnr")] == [6, 12]
    assert {f"val/{val_dir.name}/ssim", f"val/{val_dir.name}/bicubic_psnr"} <= set(events.Tags()["scalars"])
    for folder in (out / "final", out / "best"):
        model = MSRResNet.from_pretrained(folder)
        assert model.config.upscale_factor == 2 and model.config.mid_channels == 8
        assert model(torch.rand(1, 3, 6, 6)).reconstruction.shape == (1, 3, 12, 12)
        card = (folder / "README.md").read_text()
        assert "model-index" in card and "PSNR" in card and val_dir.name in card
        assert f"on local images `{image_dir.name}`" in card and "huggingface.co/datasets" not in card
        assert f"\n# MSRResNet x2 trained on local images `{image_dir.name}`\n" in card and "license: apache-2.0" in card
        assert f'from_pretrained("{folder.as_posix()}")' in card  # the folder itself, not its temporary sibling
    # the final card: the model's validation PSNR/SSIM next to bicubic's on the same images, and the gain
    card = (out / "final" / "README.md").read_text()
    final = result.final_metrics[val_dir.name]
    for key, name in (("psnr", "PSNR"), ("ssim", "SSIM")):
        value, bicubic = round(final[key], 4), round(final[f"bicubic_{key}"], 4)
        assert f"| {val_dir.name} | validation | {name} | {value:.4f} | {bicubic:.4f} | {value - bicubic:+.4f} | RGB, crop_border=2 |" in card
    assert "bicubic" not in card.split("---")[1]  # the model-index holds the model's results only
    best_step = json.loads((out / "best" / "best_step.json").read_text())
    assert best_step["step"] in (6, 12)
    assert result.final_metrics[val_dir.name]["psnr"] > 10
    # EMA weights are what is saved: not the raw weights of the checkpoint
    raw = _weights(out / "checkpoint-12")
    final = _weights(out / "final")
    assert any(not torch.equal(raw[k], final[k]) for k in raw)
    # a checkpoint also loads as a model (its raw weights), e.g. to look at a run in progress
    from hfmagic.pipelines import SuperResolutionPipeline

    in_progress = MSRResNet.from_pretrained(out / "checkpoint-12")
    assert all(torch.equal(in_progress.state_dict()[k], raw[k]) for k in raw)
    assert SuperResolutionPipeline.from_pretrained(out / "checkpoint-12", device="cpu").scale == 2
    assert result.samples_per_second and result.samples_per_second > 0
    assert json.loads((out / "training_args.json").read_text())["max_train_steps"] == 12


def _library_run(image_dir, out, steps, callbacks=(), resume=None, data=None, **overrides):
    from hfmagic.data.sr_dataset import build_sr_dataset

    torch.manual_seed(0)
    model = MSRResNet(MSRResNetConfig(upscale_factor=2, mid_channels=8, num_blocks=1))
    data = data if data is not None else build_sr_dataset(str(image_dir), scale=2, gt_patch_size=16)
    settings = dict(
        output_dir=str(out), train_batch_size=2, max_train_steps=steps, checkpointing_steps=3, validation_steps=0,
        gradient_accumulation_steps=2, use_ema=True, lr_periods=[4, 6], lr_eta_min=1e-5, learning_rate=1e-3,
        resume_from_checkpoint=resume, seed=5,
    )
    args = SRTrainingArguments(**{**settings, **overrides})
    return train_sr(model, data, args, callbacks=callbacks)


def test_resume_after_a_crash_gives_the_same_weights(image_dir, tmp_path):
    _library_run(image_dir, tmp_path / "straight", 8)

    def crash(step, logs):
        if step == 5:  # after checkpoint-3, with two more steps of progress that are lost
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _library_run(image_dir, tmp_path / "crashed", 8, callbacks=[crash])
    assert [p.name for p in list_checkpoints(tmp_path / "crashed")] == ["checkpoint-3"]
    # resumed with a DataLoader worker: the data (and so the weights) do not depend on the workers either
    result = _library_run(image_dir, tmp_path / "crashed", 8, resume=str(tmp_path / "crashed" / "checkpoint-3"), dataloader_num_workers=1)
    assert result.global_step == 8
    _assert_same(_weights(tmp_path / "straight" / "final"), _weights(tmp_path / "crashed" / "final"))
    _assert_same(_weights(tmp_path / "straight" / "checkpoint-6"), _weights(tmp_path / "crashed" / "checkpoint-6"))


def test_resume_with_another_learning_rate_uses_it(image_dir, tmp_path, caplog):
    # a diverged run is resumed "with a lower --learning_rate": the checkpoint must not restore the old one
    def record(into):
        return lambda step, logs: into.append((step, logs["lr"]))

    with pytest.raises(KeyboardInterrupt):
        _library_run(image_dir, tmp_path / "run", 6, callbacks=[lambda step, logs: step == 4 and (_ for _ in ()).throw(KeyboardInterrupt)])
    resumed, fresh = [], []
    with caplog.at_level("WARNING", logger="hfmagic.training.sr"):
        _library_run(image_dir, tmp_path / "run", 6, callbacks=[record(resumed)], resume="latest", learning_rate=1e-4)
    assert "model learning rate 0.0001 replaces the checkpoint's 0.001 from step 3 (same schedule, new peak)" in caplog.text
    _library_run(image_dir, tmp_path / "fresh", 6, callbacks=[record(fresh)], learning_rate=1e-4)
    assert [step for step, _ in resumed] == [4, 5, 6]
    assert [step for step, _ in fresh[3:]] == [4, 5, 6]
    # the same cosine-restart position, new peak
    assert [lr for _, lr in resumed] == pytest.approx([lr for _, lr in fresh[3:]], rel=1e-9)
    assert all(lr <= 1e-4 for _, lr in resumed)  # not the checkpoint's 1e-3 peak at the restart (step 4)


def test_device_data_trains_and_resumes_exactly(image_dir, tmp_path):
    from hfmagic.data import DeviceSRData

    def data():
        return DeviceSRData.from_source(str(image_dir), scale=2, gt_patch_size=16)

    straight = _library_run(image_dir, tmp_path / "straight", 8, data=data())
    assert straight.global_step == 8

    def crash(step, logs):
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _library_run(image_dir, tmp_path / "crashed", 8, callbacks=[crash], data=data())
    _library_run(image_dir, tmp_path / "crashed", 8, resume="latest", data=data())
    _assert_same(_weights(tmp_path / "straight" / "final"), _weights(tmp_path / "crashed" / "final"))
    # it learnt something, and from other batches than the DataLoader path draws
    torch.manual_seed(0)
    initial = MSRResNet(MSRResNetConfig(upscale_factor=2, mid_channels=8, num_blocks=1)).state_dict()
    final = _weights(tmp_path / "straight" / "final")
    assert any(not torch.equal(initial[k], final[k]) for k in final)
    _library_run(image_dir, tmp_path / "loader", 8)
    other = _weights(tmp_path / "loader" / "final")
    assert any(not torch.equal(other[k], final[k]) for k in final)
    with pytest.raises(ValueError, match="x2 pairs but the model upscales x4"):
        train_sr(MSRResNet(MSRResNetConfig(upscale_factor=4, mid_channels=8, num_blocks=1)), data(),
                 SRTrainingArguments(output_dir=str(tmp_path / "x4"), max_train_steps=1))


def test_script_with_data_on_device(image_dir, tmp_path, caplog):
    out = tmp_path / "run"
    with caplog.at_level("WARNING", logger="train_sr"):
        result = script.main(script.parse_args(_argv(image_dir, out, "--max_train_steps", "2", "--data_on_device", "--checkpointing_steps", "0")))
    assert result.global_step == 2
    assert "No --validation_dataset: the run is not validated" in caplog.text  # said, since MMagic's recipe validates
    assert MSRResNet.from_pretrained(out / "final").config.upscale_factor == 2
    with pytest.raises(SystemExit):
        script.parse_args(_argv(image_dir, out, "--data_on_device", "--lr_column", "lr"))


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_same_weights(image_dir, tmp_path):
    argv = _argv(image_dir, tmp_path / "killed", "--max_train_steps", "10", "--checkpointing_steps", "4", "--use_ema")
    killer = (
        "import os, signal, sys, runpy\n"
        "from hfmagic.training import sr\n"
        "real = sr.train_sr\n"
        "def kill(step, logs):\n"
        "    if step == 6:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "def patched(*a, **kw):\n"
        "    return real(*a, callbacks=[kill], **kw)\n"
        "sr.train_sr = patched\n"
        "import hfmagic.training\n"
        "hfmagic.training.train_sr = patched\n"
        f"sys.argv = ['train_sr.py'] + {argv!r}\n"
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
    )
    killed = _run_subprocess([sys.executable, "-c", killer])
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert [p.name for p in list_checkpoints(tmp_path / "killed")] == ["checkpoint-4"]
    assert not (tmp_path / "killed" / "final").exists()
    script.main(script.parse_args(argv + ["--resume_from_checkpoint", "latest"]))
    script.main(script.parse_args(_argv(image_dir, tmp_path / "straight", "--max_train_steps", "10", "--checkpointing_steps", "4", "--use_ema")))
    _assert_same(_weights(tmp_path / "straight" / "final"), _weights(tmp_path / "killed" / "final"))


def _two_ddp_processes_then_one(image_dir, tmp_path, common):
    """Train with 2 DDP processes (batch 2 each) on CPU, one process with batch 4, and one with batch 2:
    asserts that the first two end with the same weights and the third does not (half the data)."""
    launch = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()), str(SCRIPT),
    ]
    ddp = _run_subprocess(launch + _argv(image_dir, tmp_path / "ddp", *common), env_extra={"ACCELERATE_USE_CPU": "1"})
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert "Num processes: 2" in ddp.stdout + ddp.stderr
    # the launcher's OMP_NUM_THREADS=1 replaced by each process's share of the cores (1 each on 2 cores)
    if "OMP_NUM_THREADS" not in os.environ:
        share = max(1, len(os.sched_getaffinity(0)) // 2)
        assert f"CPU threads: {share} per process (the launcher's default OMP_NUM_THREADS=1 replaced" in ddp.stdout + ddp.stderr
    single = _argv(image_dir, tmp_path / "single", *common)
    single[single.index("--train_batch_size") + 1] = "4"
    script.main(script.parse_args(single))
    _assert_same(_weights(tmp_path / "ddp" / "final"), _weights(tmp_path / "single" / "final"), atol=1e-6)
    # and not trivially: a run with only half of the data per step ends elsewhere
    script.main(script.parse_args(_argv(image_dir, tmp_path / "half", *common)))
    a, b = _weights(tmp_path / "half" / "final"), _weights(tmp_path / "single" / "final")
    assert any(not torch.allclose(a[k], b[k], atol=1e-6) for k in a)


@pytest.mark.slow
def test_two_ddp_processes_match_one_process_with_the_same_global_batch(image_dir, val_dir, tmp_path):
    # validation (main process only, the others wait) and checkpoints (every rank) along the way
    common = ["--max_train_steps", "6", "--checkpointing_steps", "3", "--use_ema", "--learning_rate", "1e-3",
              "--validation_dataset", str(val_dir), "--validation_steps", "3"]
    _two_ddp_processes_then_one(image_dir, tmp_path, common)
    assert [p.name for p in list_checkpoints(tmp_path / "ddp")] == ["checkpoint-3", "checkpoint-6"]
    assert (tmp_path / "ddp" / "best" / "model.safetensors").is_file()


@pytest.mark.slow
def test_two_ddp_processes_with_data_on_device_match_one_process(image_dir, tmp_path):
    # each rank cuts its share of micro-batch j's plan (DeviceSRData.batch_at): together one process's batch
    common = ["--max_train_steps", "4", "--checkpointing_steps", "0", "--learning_rate", "1e-3", "--data_on_device"]
    _two_ddp_processes_then_one(image_dir, tmp_path, common)


class TinySRConfig(SuperResolutionConfig):
    model_type = "tiny-sr-test"

    def __init__(self, channels: int = 8, nan_after: int = 0, **kwargs):
        self.channels = channels
        self.nan_after = nan_after
        super().__init__(**kwargs)


class TinySR(SuperResolutionPreTrainedModel):
    """A user's own network: nearest upsampling + a residual conv pair."""

    config_class = TinySRConfig

    def __init__(self, config):
        super().__init__(config)
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, config.channels, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(config.channels, 3, 3, padding=1)
        )
        self.calls = 0
        self.post_init()

    def reconstruct(self, pixel_values):
        up = torch.nn.functional.interpolate(pixel_values, scale_factor=self.config.upscale_factor, mode="nearest")
        out = up + self.body(up)
        self.calls += self.training
        if self.config.nan_after and self.calls > self.config.nan_after:
            out = out * float("nan")
        return out


class _PairDataset(torch.utils.data.Dataset):
    """A plain torch dataset (not HF): random LR patches of a fixed smooth HR image set."""

    def __init__(self, n=8):
        g = torch.Generator().manual_seed(0)
        self.hr = torch.nn.functional.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=(16, 16), mode="bilinear")

    def __len__(self):
        return len(self.hr)

    def __getitem__(self, i):
        hr = self.hr[i]
        if torch.rand(1).item() < 0.5:  # an augmentation drawn from the global RNG
            hr = hr.flip(-1)
        return {"pixel_values": torch.nn.functional.avg_pool2d(hr[None], 2)[0], "labels": hr}


def test_user_defined_model_trains_through_the_library(tmp_path):
    torch.manual_seed(0)
    model = TinySR(TinySRConfig(upscale_factor=2))
    data = _PairDataset()
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=8)))
    with torch.no_grad():
        before = model(**batch).loss.item()
    args = SRTrainingArguments(output_dir=str(tmp_path), train_batch_size=4, max_train_steps=30, learning_rate=2e-3,
                               lr_scheduler="constant", checkpointing_steps=0, validation_steps=0)
    result = train_sr(model, data, args)
    reloaded = TinySR.from_pretrained(result.final_dir)
    with torch.no_grad():
        after = reloaded(**batch).loss.item()
    assert after < 0.7 * before
    assert "tiny-sr-test" in (result.final_dir / "config.json").read_text()
    with pytest.raises(TypeError, match="SuperResolutionPreTrainedModel"):
        train_sr(torch.nn.Conv2d(3, 3, 1), data, args)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = TinySR(TinySRConfig(upscale_factor=2, nan_after=5))
    args = SRTrainingArguments(output_dir=str(tmp_path), train_batch_size=2, max_train_steps=10, checkpointing_steps=2,
                               validation_steps=0, lr_scheduler="constant")
    with pytest.raises(TrainingDivergedError, match=r"step 6.*checkpoint-4.*--resume_from_checkpoint"):
        train_sr(model, _PairDataset(), args)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-4"]
    assert torch.isfinite(_weights(tmp_path / "checkpoint-4")["body.0.weight"]).all()
    assert not (tmp_path / "final").exists()


def test_script_reports_divergence_with_a_huge_learning_rate(image_dir, tmp_path):
    argv = _argv(image_dir, tmp_path, "--max_train_steps", "40", "--checkpointing_steps", "1", "--learning_rate", "1e10")
    with pytest.raises(TrainingDivergedError, match="Training diverged at step") as caught:
        script.main(script.parse_args(argv))
    last = list_checkpoints(tmp_path)[-1]
    assert f"--resume_from_checkpoint {last}" in str(caught.value)
    assert all(torch.isfinite(v).all() for v in _weights(last).values())
    assert not (tmp_path / "final").exists()


def test_finetune_from_a_saved_model(image_dir, tmp_path):
    torch.manual_seed(0)
    source = MSRResNet(MSRResNetConfig(upscale_factor=2, mid_channels=8, num_blocks=1))
    source.save_pretrained(tmp_path / "source")
    out = tmp_path / "tuned"
    argv = _argv(image_dir, out, "--max_train_steps", "3", "--checkpointing_steps", "0")
    argv = [a for a in argv if a not in ("--model", "msrresnet", "--model_config_overrides", TINY)]
    # bf16 autocast and gradient clipping on the way (weights stay float32)
    script.main(script.parse_args(argv + ["--model_name_or_path", str(tmp_path / "source"), "--mixed_precision", "bf16", "--max_grad_norm", "0.5"]))
    tuned = MSRResNet.from_pretrained(out / "final")
    assert tuned.config.mid_channels == 8 and tuned.conv_first.weight.dtype == torch.float32
    before, after = _weights(tmp_path / "source"), _weights(out / "final")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(ValueError, match="--scale 4 differs"):
        script.main(script.parse_args(argv[:argv.index("--scale")] + argv[argv.index("--scale") + 2:]
                                      + ["--scale", "4", "--model_name_or_path", str(tmp_path / "source")]))


def _upload_set14_x2(tmp_path):
    """A two-image stand-in for eugenesiow/Set14 on the test Hub: HR and LR_x2 tarballs."""
    import io
    import tarfile

    from huggingface_hub import HfApi

    from hfmagic.data import imresize

    rng = np.random.default_rng(4)
    hr = {f"im{i}": rng.integers(0, 256, (16, 20, 3), dtype=np.uint8) for i in range(2)}
    api = HfApi()
    api.create_repo("eugenesiow/Set14", repo_type="dataset", exist_ok=True)
    for kind, images in (("HR", hr), ("LR_x2", {k: imresize(v, 0.5, round_uint8=True) for k, v in hr.items()})):
        path = tmp_path / f"Set14_{kind}.tar.gz"
        with tarfile.open(path, "w:gz") as archive:
            for name, array in images.items():
                buffer = io.BytesIO()
                Image.fromarray(array).save(buffer, format="PNG")
                info = tarfile.TarInfo(f"Set14_{kind}/{name}.png")
                info.size = buffer.tell()
                archive.addfile(info, io.BytesIO(buffer.getvalue()))
        api.upload_file(path_or_fileobj=str(path), path_in_repo=f"data/{path.name}", repo_id="eugenesiow/Set14", repo_type="dataset")


def test_push_to_hub_uploads_the_final_model_only(image_dir, tmp_path, hub_server, hub_repo_id):
    _upload_set14_x2(tmp_path)
    out = tmp_path / "run"
    argv = _argv(image_dir, out, "--max_train_steps", "2", "--checkpointing_steps", "1", "--push_to_hub", "--hub_model_id", hub_repo_id,
                 "--validation_dataset", "Set14", "--validation_steps", "2")
    result = script.main(script.parse_args(argv))
    # a benchmark name as --validation_dataset: the eugenesiow/<Name> tarballs, scored and put in the card
    assert result.final_metrics["Set14"]["num_images"] == 2 and result.final_metrics["Set14"]["psnr"] > 5
    assert "Set14" in (out / "final" / "README.md").read_text()
    assert hub_repo_id in result.hub_url
    files = set(hub_server.list_files(hub_repo_id))
    assert {"config.json", "model.safetensors", "README.md"} <= files
    assert files - {".gitattributes"} == {p.name for p in (out / "final").iterdir()}  # exactly final/
    assert not any("checkpoint" in f or "logs" in f or "optimizer" in f for f in files)
    assert hub_server.read_file(hub_repo_id, "model.safetensors") == (out / "final" / "model.safetensors").read_bytes()


def test_embedded_photos_train_offline_with_defaults(tmp_path, capsys, caplog):
    """No dataset flag: the embedded photos train, the embedded photo validates (x4, real images)."""
    import logging

    caplog.set_level(logging.INFO, logger="train_sr")
    caplog.set_level(logging.INFO, logger="hfmagic.training.sr")
    out = tmp_path / "run"
    argv = ["--model", "srcnn", "--model_config_overrides", '{"channels": [3, 8, 4, 3]}', "--gt_patch_size", "32",
            "--train_batch_size", "2", "--max_train_steps", "2", "--report_to", "none", "--output_dir", str(out)]
    result = script.main(script.parse_args(argv))
    assert "--max_train_steps 2 is shorter than one cosine cycle of the recipe (250000 steps)" in caplog.text
    # off a terminal, the progress bar is a log line: steps, loss, learning rate and throughput (test_logging_utils.py)
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Steps ")]
    assert len(progress) == 1 and progress[0].startswith("Steps 2/2 (100%)") and "loss=" in progress[0] and "samples_s=" in progress[0]
    metrics = result.final_metrics["hfmagic-embedded-validation"]
    assert metrics["num_images"] == 1 and 5 < metrics["psnr"] < 60 and "bicubic_psnr" in metrics
    card = (out / "final" / "README.md").read_text()
    assert "hfmagic-embedded-validation" in card and "\n# SRCNN x4 trained on hfmagic's embedded photos (a smoke run)\n" in card
    assert "datasets:" not in card and "huggingface.co/datasets" not in card  # local data: no Hub links


def test_script_help_shows_defaults(capsys):
    """--help gives each flag's default: "(default: X)" appended unless the help states it already."""
    with pytest.raises(SystemExit):
        script.parse_args(["--help"])
    out = capsys.readouterr().out
    text, helps = " ".join(out.split()), help_by_flag(out)
    for flag, default in (("--train_batch_size", "16"), ("--validation_steps", "5000"), ("--lr_warmup_steps", "0"),
                          ("--seed", "0"), ("--report_to", "auto"), ("--license", "apache-2.0"), ("--model", "msrresnet")):
        assert f"(default: {default})" in helps[flag], (flag, helps[flag])
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "(default: the recipe's, 1M for MSRResNet/SRCNN" in text  # None defaults say what they stand for


def test_recipes_and_argument_errors():
    args = script.parse_args(["--model", "edsr", "--scale", "3"])
    recipe, scale = script.load_recipe(args)
    model = script.build_model(args, recipe, scale)
    assert recipe["gt_patch_size"][3] == 144 and recipe["learning_rate"] == 1e-4 and recipe["lr_milestones"] == [200_000]
    assert all(p % s == 0 for r in script.RECIPES.values() for s, p in r["gt_patch_size"].items())
    assert type(model).__name__ == "EDSR" and model.config.upscale_factor == 3
    edsr = script.training_arguments(script.parse_args(["--model", "edsr", "--scale", "2", "--max_train_steps", "300"]), recipe, 2)
    assert (edsr.lr_scheduler, edsr.lr_milestones, edsr.learning_rate, edsr.output_dir) == ("multistep", [200], 1e-4, "sr-edsr-x2")
    msr_args = script.parse_args([])
    msr_recipe, msr_scale = script.load_recipe(msr_args)
    msr = script.training_arguments(msr_args, msr_recipe, msr_scale)
    assert (msr.lr_scheduler, msr.lr_eta_min, msr.learning_rate, msr.max_train_steps, msr.train_batch_size) == ("cosine_restart", 1e-7, 2e-4, 1_000_000, 16)
    assert (msr.adam_beta1, msr.adam_beta2, msr.validation_steps, msr.checkpointing_steps, msr_scale) == (0.9, 0.999, 5000, 5000, 4)
    defaults = script.parse_args([])
    assert defaults.model == "msrresnet" and defaults.train_batch_size == 16 and defaults.validation_steps == 5000
    assert script.RECIPES["msrresnet"]["max_train_steps"] == 1_000_000 and script.RECIPES["msrresnet"]["lr_eta_min"] == 1e-7
    with pytest.raises(SystemExit):
        script.parse_args(["--dataset_name", "a", "--train_data_dir", "b"])
    with pytest.raises(SystemExit):
        script.parse_args(["--model_config_overrides", "{not json"])
    with pytest.raises(ValueError, match="train_batch_size"):
        SRTrainingArguments(train_batch_size=0)
    with pytest.raises(ValueError, match="checkpoints_total_limit must be >= 1"):
        SRTrainingArguments(checkpoints_total_limit=0)
    with pytest.warns(UserWarning, match="lr_warmup_steps does not apply to lr_scheduler='cosine_restart'"):
        SRTrainingArguments(lr_warmup_steps=10)
    with pytest.warns(UserWarning, match="lr_milestones does not apply"):
        SRTrainingArguments(lr_scheduler="cosine", lr_milestones=[5])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # EDSR with another schedule: the recipe's milestones are not passed on
        edsr_cosine = script.parse_args(["--model", "edsr", "--lr_scheduler", "cosine", "--max_train_steps", "300"])
        assert script.training_arguments(edsr_cosine, *script.load_recipe(edsr_cosine)).lr_milestones is None


def test_recipe_patch_sizes_and_schedule_defaults(image_dir, tmp_path):
    """REFERENCE.md's recipes: gt 128 for MSRResNet/SRCNN x4, 96/144/196 for EDSR x2/x3/x4; EDSR's
    step decay x0.5; the cosine restart in 4 equal periods over the run (4 x 250k at 1M)."""
    for model in ("msrresnet", "srcnn"):
        assert script.RECIPES[model]["gt_patch_size"][4] == 128
    assert [script.RECIPES["edsr"]["gt_patch_size"][s] for s in (2, 3, 4)] == [96, 144, 196]
    assert script.parse_args(["--model", "edsr"]).lr_gamma == 0.5 and SRTrainingArguments().lr_gamma == 0.5
    # train_sr's default cosine restart periods: the learning rate seen at every step equals the
    # schedule with 4 equal periods of ceil(8 / 4) = 2 steps (restarts at steps 2, 4, 6)
    from hfmagic.training.schedulers import get_sr_scheduler

    seen = []
    _library_run(image_dir, tmp_path / "run", 8, callbacks=[lambda step, logs: seen.append(logs["lr"])],
                 lr_periods=None, gradient_accumulation_steps=1, use_ema=False, checkpointing_steps=0)
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    expected_schedule = get_sr_scheduler("cosine_restart", optimizer, num_training_steps=8, periods=[2, 2, 2, 2], eta_min=1e-5)
    expected = []
    for _ in range(8):
        optimizer.step()
        expected_schedule.step()
        expected.append(expected_schedule.get_last_lr()[0])
    assert seen == pytest.approx(expected, rel=1e-9)
    assert seen[1] == pytest.approx(1e-3) and seen[3] == pytest.approx(1e-3)  # restarts at steps 2 and 4


def test_short_runs_get_one_cosine_cycle_unless_the_schedule_is_given():
    """MMagic's 4 cosine restarts (4 x 250k of 1M) scale with --max_train_steps from one recipe cycle up;
    a shorter run gets one cycle over the run (no restarts), and says so; explicit flags are used as given."""

    def schedule(*flags):
        args = script.parse_args(list(flags))
        recipe, scale = script.load_recipe(args)
        training_args = script.training_arguments(args, recipe, scale)
        note = script.learning_rate_schedule(args, recipe, training_args.max_train_steps)[2]
        return training_args.lr_scheduler, training_args.lr_periods, note

    assert schedule() == ("cosine_restart", None, None)  # the recipe: 1M steps, 4 x 250k (train_sr's default periods)
    assert schedule("--max_train_steps", "250000") == ("cosine_restart", None, None)  # one recipe cycle: 4 x 62.5k
    name, periods, note = schedule("--max_train_steps", "150")
    assert (name, periods) == ("cosine_restart", [150])
    assert "one cosine cycle over the run" in note and "--lr_scheduler cosine_restart" in note
    assert schedule("--model", "srcnn", "--max_train_steps", "249999")[:2] == ("cosine_restart", [249_999])
    # explicit flags win: the recipe's 4 scaled cycles, the user's periods or weights, another schedule
    assert schedule("--max_train_steps", "150", "--lr_scheduler", "cosine_restart") == ("cosine_restart", None, None)
    assert schedule("--max_train_steps", "150", "--lr_periods", "50", "100") == ("cosine_restart", [50, 100], None)
    assert schedule("--max_train_steps", "150", "--lr_restart_weights", "1", "0.5", "0.5", "0.5") == ("cosine_restart", None, None)
    assert schedule("--max_train_steps", "150", "--lr_scheduler", "constant") == ("constant", None, None)
    assert schedule("--model", "edsr", "--max_train_steps", "300")[::2] == ("multistep", None)  # EDSR: no restarts to drop
    # the one cycle is what train_sr builds from lr_periods: peak at the start, eta_min at the end, no restart
    from hfmagic.training.schedulers import get_sr_scheduler

    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2e-4)
    one_cycle = get_sr_scheduler("cosine_restart", optimizer, num_training_steps=150, periods=[150], eta_min=1e-7)
    rates = []
    for _ in range(150):
        rates.append(one_cycle.get_last_lr()[0])
        optimizer.step()
        one_cycle.step()
    assert rates[0] == pytest.approx(2e-4) and rates[-1] < 1e-6 and all(a >= b for a, b in zip(rates, rates[1:]))


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--max_train_steps", "0"], "--max_train_steps must be > 0"),  # not "the recipe's 1M steps"
        (["--learning_rate", "0"], "--learning_rate must be > 0"),
        (["--model_config_overrides", '{"mid_channel": 8}'], "'mid_channel' is not a field of MSRResNetConfig (did you mean 'mid_channels'?)"),
        (["--model", "edsr", "--model_config_overrides", '{"res_scale": 0.1, "blocks": 4}'], "'blocks' is not a field of EDSRConfig"),
        (["--model_config_overrides", '{"upscale_factor": 2}'], "'upscale_factor' is set by --scale"),
        (["--model_config_overrides", "[1]"], "must be a JSON object"),
        (["--data_on_device", "--lr_column", "lr"], "--data_on_device makes the LR images itself"),
        (["--train_data_dir", "my_photos_that_do_not_exist"], "is not a folder (a Hub dataset id goes to --dataset_name)"),
        (["--output_dir", __file__], "is a file, not a folder"),
    ],
)
def test_script_rejects_bad_flags_with_the_reason(flags, message, capsys):
    with pytest.raises(SystemExit):
        script.parse_args(flags)
    assert message in capsys.readouterr().err


def test_library_refuses_mismatched_accelerator_and_small_validation_images(image_dir, tmp_path):
    from accelerate import Accelerator

    model = MSRResNet(MSRResNetConfig(upscale_factor=2, mid_channels=8, num_blocks=1))
    data = _PairDataset()
    with pytest.raises(ValueError, match="accumulates 1 micro-batches but args.gradient_accumulation_steps is 2"):
        train_sr(model, data, SRTrainingArguments(output_dir=str(tmp_path / "a"), gradient_accumulation_steps=2),
                 accelerator=Accelerator(cpu=True))
    rng = np.random.default_rng(0)
    tiny = [("ok", rng.integers(0, 255, (12, 12, 3), dtype=np.uint8), rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)),
            ("tiny", rng.integers(0, 255, (7, 9, 3), dtype=np.uint8), rng.integers(0, 255, (14, 18, 3), dtype=np.uint8))]
    with pytest.raises(ValueError, match=r"1 validation image\(s\) are smaller than 15x15 .*'val/tiny \(14x18\)'"):
        train_sr(model, data, SRTrainingArguments(output_dir=str(tmp_path / "b"), max_train_steps=1), eval_sets={"val": tiny})
    assert not list((tmp_path / "b").glob("checkpoint-*"))


def test_checkpoint_is_saved_before_validation_and_knows_the_new_best(image_dir, val_dir, tmp_path, monkeypatch):
    from hfmagic.data import load_eval_set
    from hfmagic.training import read_checkpoint_state, sr

    eval_sets = {"val": load_eval_set(str(val_dir), 2)}
    out = tmp_path / "run"
    _library_run_with_eval = lambda steps, **kw: train_sr(  # noqa: E731
        MSRResNet(MSRResNetConfig(upscale_factor=2, mid_channels=8, num_blocks=1)),
        _PairDataset(),
        SRTrainingArguments(output_dir=str(out), train_batch_size=2, max_train_steps=steps, validation_steps=2,
                            checkpointing_steps=2, learning_rate=1e-3, **kw),
        eval_sets,
    )
    _library_run_with_eval(2)
    # the validation at step 2 is known to checkpoint-2 (a resumed run compares later validations with it)
    best = json.loads((out / "best" / "best_step.json").read_text())
    assert read_checkpoint_state(out / "checkpoint-2")["best_score"] == pytest.approx(best["metrics"]["val"]["psnr"])
    # also when it is the final validation of the run (validation every 5 steps, the run ends at 3)
    short = tmp_path / "short"
    train_sr(MSRResNet(MSRResNetConfig(upscale_factor=2, mid_channels=8, num_blocks=1)), _PairDataset(),
             SRTrainingArguments(output_dir=str(short), train_batch_size=2, max_train_steps=3, validation_steps=5,
                                 checkpointing_steps=3), eval_sets)
    best = json.loads((short / "best" / "best_step.json").read_text())
    assert best["step"] == 3
    assert read_checkpoint_state(short / "checkpoint-3")["best_score"] == pytest.approx(best["metrics"]["val"]["psnr"])

    def broken(*args, **kwargs):
        raise RuntimeError("validation failed")

    monkeypatch.setattr(sr, "evaluate_model", broken)
    with pytest.raises(RuntimeError, match="validation failed"):
        _library_run_with_eval(4, resume_from_checkpoint="latest")
    assert [p.name for p in list_checkpoints(out)] == ["checkpoint-2", "checkpoint-4"]  # step 4 was saved first


def test_push_to_hub_without_a_reachable_hub_fails_before_training(image_dir, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    out = tmp_path / "run"
    with pytest.raises(ConnectionError, match=r"create the Hub repo 'me/x'.*127\.0\.0\.1:9 is unreachable.*drop --push_to_hub"):
        script.main(script.parse_args(_argv(image_dir, out, "--max_train_steps", "2", "--push_to_hub", "--hub_model_id", "me/x",
                                            "--hub_token", "hf_test")))
    assert not (out / "final").exists()
    parser_help = _run_help()
    assert "--resume_from_checkpoint" in parser_help and "--push_to_hub" in parser_help


def test_every_flag_has_help(monkeypatch):
    import argparse

    seen = []
    real = argparse.ArgumentParser.add_argument

    def recording(self, *names, **kwargs):
        seen.append((names, kwargs.get("help")))
        return real(self, *names, **kwargs)

    monkeypatch.setattr(argparse.ArgumentParser, "add_argument", recording)
    script.parse_args([])
    flags = [(names, text) for names, text in seen if names[0].startswith("--") and names[0] != "--help"]
    assert len(flags) > 40
    assert all(text and len(text) > 5 for _, text in flags), [n for n, t in flags if not t]


def _run_help():
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit):
        script.parse_args(["--help"])
    return buffer.getvalue()


def _readme_main_job() -> list[str]:
    """The bash block of the README's "Offline quick start", one command per entry."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Offline quick start"):]
    block = section[section.index("```bash\n") + 8: section.index("```", section.index("```bash\n") + 8)]
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


@pytest.mark.slow
def test_readme_main_job_runs_offline(tmp_path):
    """The README's main job (fewer steps), with the Hub and datasets offline: train on the embedded
    photos, then upscale an image with `hfmagic upscale`."""
    import shlex

    commands = _readme_main_job()
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}  # unreachable
    shorter = {"--max_train_steps": "3", "--validation_steps": "3", "--checkpointing_steps": "3", "--train_batch_size": "2"}
    ran = []
    for command in commands:
        words = shlex.split(command.split("#")[0])
        if words[:2] == ["pip", "install"]:
            continue
        if words[0] == "export":
            env.update(word.split("=", 1) for word in words[1:])
            continue
        words = [w.replace("runs/quick-x4", str(tmp_path / "quick")) for w in words]
        for flag, value in shorter.items():
            if flag in words:
                words[words.index(flag) + 1] = value
        if words[0] == "python":
            words[0] = sys.executable
        elif words[0] == "hfmagic":
            words = [sys.executable, "-m", "hfmagic", *words[1:]]
        run = _run_subprocess(words, env_extra=env)
        assert run.returncode == 0, f"{command}\n{run.stderr[-3000:]}"
        ran.append(words[1] if words[0] == sys.executable else words[0])
    assert ran == ["examples/train_sr.py", "-m"]
    model = MSRResNet.from_pretrained(tmp_path / "quick" / "final")
    assert model.config.upscale_factor == 4 and model.config.num_blocks == 4
    assert "hfmagic-embedded-validation" in (tmp_path / "quick" / "final" / "README.md").read_text()
    with Image.open(tmp_path / "quick" / "upscaled" / "astronaut.png") as image:
        assert image.size == (1024, 1024)
