"""report_to="trackio" (accelerate's TrackioTracker): train_sr, train_srgan and train_gan log their
scalars and sample images to trackio's local storage (a SQLite file per project in TRACKIO_DIR, the
images as PNGs under TRACKIO_DIR/media), offline; the values are read back with trackio's reader and
compared with what the loops computed. examples/train_sr.py does the same in a subprocess with
TRACKIO_DIR under tmp_path and HF_HUB_OFFLINE=1. tests/conftest.py points TRACKIO_DIR at the
session's temporary HF_HOME (trackio reads it once, at import); each test uses its own project."""

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from hfmagic import DCGANConfig, DCGANDiscriminator, DCGANGenerator, MSRResNet, MSRResNetConfig
from hfmagic import UNetDiscriminatorSN, UNetDiscriminatorSNConfig
from hfmagic.training import SRGAN, GANTrainingArguments, SRGANTrainingArguments, SRTrainingArguments, train_gan, train_sr, train_srgan
from hfmagic.training.gan import GAN
from tiny_vgg import tiny_vgg_state

trackio = pytest.importorskip("trackio")  # the dev and tracking extras install it
from trackio.sqlite_storage import SQLiteStorage  # noqa: E402  (what `trackio get metric` reads with)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny convolutions: thread hand-offs cost more than they save on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def no_network(monkeypatch):
    """HF_HUB_OFFLINE=1, and every socket connection or name lookup made during the test recorded
    (the list must stay empty: trackio logs to its local files only). huggingface_hub reads the
    variable at import, so its constant is set too: online, trackio's Run asks the Hub for the token's
    user name (one whoami request) to store in the run's config; offline it stores None."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    attempts = []
    connect, getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def recording_connect(sock, address):
        attempts.append(address)
        return connect(sock, address)

    def recording_getaddrinfo(host, *args, **kwargs):
        attempts.append(host)
        return getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", recording_connect)
    monkeypatch.setattr(socket, "getaddrinfo", recording_getaddrinfo)
    return attempts


def _project(tmp_path) -> str:
    return f"hfmagic-{tmp_path.parent.name}-{tmp_path.name}"  # one trackio project per test


def _the_run(project: str) -> list[dict]:
    """The logged rows of the project's only run: {"step", "timestamp", metric: value, ...} each."""
    runs = SQLiteStorage.get_runs(project)
    assert len(runs) == 1, runs
    assert SQLiteStorage.get_project_db_path(project).parent == Path(os.environ["TRACKIO_DIR"])
    return SQLiteStorage.get_logs(project, runs[0])


def _series(rows: list[dict], key: str) -> dict[int, object]:
    return {row["step"]: row[key] for row in rows if key in row}


def _image(value: dict) -> np.ndarray:
    """A logged trackio.Image (stored as {"_type": "trackio.image", "file_path": ...}) as an array."""
    assert value["_type"] == "trackio.image", value
    array = np.asarray(Image.open(Path(os.environ["TRACKIO_DIR"]) / "media" / value["file_path"]))
    if array.shape[-1] == 4:  # trackio writes RGBA PNGs: opaque
        assert (array[..., 3] == 255).all()
        array = array[..., :3]
    return array


class _PairDataset(torch.utils.data.Dataset):
    """LR/HR pairs (8x8 -> 16x16, x2) of smooth random images."""

    def __init__(self, n=8):
        g = torch.Generator().manual_seed(0)
        self.hr = torch.nn.functional.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=(16, 16), mode="bilinear")

    def __len__(self):
        return len(self.hr)

    def __getitem__(self, i):
        return {"pixel_values": torch.nn.functional.avg_pool2d(self.hr[i][None], 2)[0], "labels": self.hr[i]}


def _eval_set():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    from hfmagic.data import imresize

    return {"val": [("v0", imresize(hr, 0.5, round_uint8=True), hr)]}


def test_train_sr_logs_loss_lr_validation_and_a_sample_image(tmp_path, no_network):
    from hfmagic.data import imresize
    from hfmagic.evaluation import upscale_image

    torch.manual_seed(0)
    model = MSRResNet(MSRResNetConfig(upscale_factor=2, mid_channels=8, num_blocks=1))
    project, seen = _project(tmp_path), {}
    eval_sets = _eval_set()
    args = SRTrainingArguments(
        output_dir=str(tmp_path / "run"), train_batch_size=2, max_train_steps=4, validation_steps=2, checkpointing_steps=0,
        learning_rate=1e-3, lr_scheduler="multistep", lr_milestones=[2], lr_gamma=0.5, dataloader_num_workers=0,
        report_to="trackio", tracker_project_name=project,
    )
    result = train_sr(model, _PairDataset(), args, eval_sets, callbacks=[lambda step, logs: seen.update({step: dict(logs)})])
    rows = _the_run(project)
    # the loss and the learning rate of every step, as the loop computed them (the rate halved at step 2)
    assert _series(rows, "loss") == {step: logs["loss"] for step, logs in seen.items()} and len(seen) == 4
    assert _series(rows, "lr") == {step: logs["lr"] for step, logs in seen.items()} == {1: 1e-3, 2: 5e-4, 3: 5e-4, 4: 5e-4}
    # validation at steps 2 and 4; the last one is the final model's
    psnr = _series(rows, "val/val/psnr")
    assert sorted(psnr) == [2, 4] and psnr[4] == pytest.approx(result.final_metrics["val"]["psnr"])
    assert _series(rows, "val/val/bicubic_psnr")[2] == pytest.approx(result.final_metrics["val"]["bicubic_psnr"])
    # the sample image at each validation: bicubic | model | ground truth of the 12x12 -> 24x24 image
    samples = _series(rows, "val/sample")
    assert sorted(samples) == [2, 4] and samples[4]["caption"] == "val/v0: bicubic | model | ground truth"
    image = _image(samples[4])
    assert image.shape == (24, 72, 3)
    _, lr, hr = eval_sets["val"][0]
    final = MSRResNet.from_pretrained(result.final_dir)
    np.testing.assert_array_equal(image[:, :24], imresize(lr, 2, round_uint8=True))
    np.testing.assert_array_equal(image[:, 24:48], upscale_image(final.eval(), lr))
    np.testing.assert_array_equal(image[:, 48:], hr)
    assert not np.array_equal(_image(samples[2])[:, 24:48], image[:, 24:48])  # the model changed in between
    assert no_network == []


def test_train_srgan_logs_both_networks_losses_and_the_learning_rates(tmp_path, no_network):
    from hfmagic.losses import GANLoss, PerceptualLoss

    vgg = tmp_path / "vgg19_tiny.safetensors"
    save_file(tiny_vgg_state(naming="torchvision"), str(vgg))
    torch.manual_seed(0)
    srgan = SRGAN(
        MSRResNet(MSRResNetConfig(upscale_factor=2, mid_channels=8, num_blocks=1)),
        UNetDiscriminatorSN(UNetDiscriminatorSNConfig(mid_channels=4)),
        pixel_weight=1e-2,
        perceptual_loss=PerceptualLoss({"34": 1.0}, perceptual_weight=1.0, style_weight=0.0, norm_img=False, pretrained=str(vgg)),
        gan_loss=GANLoss("vanilla", loss_weight=5e-3), relativistic=True, disc_init_steps=1,
    )
    project, seen = _project(tmp_path), {}
    args = SRGANTrainingArguments(
        output_dir=str(tmp_path / "run"), train_batch_size=2, max_train_steps=3, validation_steps=0, checkpointing_steps=0,
        lr_milestones=[2], lr_gamma=0.5, dataloader_num_workers=0, report_to="trackio", tracker_project_name=project,
    )
    train_srgan(srgan, _PairDataset(), args, _eval_set(), callbacks=[lambda step, logs: seen.update({step: dict(logs)})])
    rows = _the_run(project)
    assert len(seen) == 3 and "loss_gan" not in seen[1] and "loss_gan" in seen[3]  # disc_init_steps: D alone first
    for key in ("loss_d_real", "loss_d_fake", "loss_pix", "loss_perceptual", "loss_gan", "lr"):
        assert _series(rows, key) == {step: logs[key] for step, logs in seen.items() if key in logs}, key
    assert _series(rows, "lr") == {1: 1e-4, 2: 5e-5, 3: 5e-5}  # MultiStepLR x0.5 at step 2
    assert sorted(_series(rows, "val/sample")) == [3]  # the validation at the end
    assert no_network == []


def test_train_sr_gives_tensorboard_the_validation_sample_too(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    torch.manual_seed(0)
    args = SRTrainingArguments(
        output_dir=str(tmp_path / "run"), train_batch_size=2, max_train_steps=2, validation_steps=1, checkpointing_steps=0,
        dataloader_num_workers=0, report_to="tensorboard", tracker_project_name="sr",
    )
    train_sr(MSRResNet(MSRResNetConfig(upscale_factor=2, mid_channels=8, num_blocks=1)), _PairDataset(), args, _eval_set())
    events = EventAccumulator(str(tmp_path / "run" / "logs" / "sr"), size_guidance={"images": 0}).Reload()
    samples = events.Images("val/sample")
    assert [event.step for event in samples] == [1, 2] and (samples[0].width, samples[0].height) == (72, 24)


class _RecordingGAN(GAN):
    """Keeps each iteration's loss terms as the loop gets them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.history = []

    def train_step(self, batch, step, total_steps):
        logs = super().train_step(batch, step, total_steps)
        self.history.append({name: float(value) for name, value in logs.items()})
        return logs


class _Noise(torch.utils.data.Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, i):
        return {"pixel_values": torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(i)) * 2 - 1}


def test_train_gan_logs_both_losses_and_the_sample_grid(tmp_path, no_network):
    torch.manual_seed(0)
    config = DCGANConfig(image_size=8, noise_size=4, generator_base_channels=8, discriminator_base_channels=4)
    gan = _RecordingGAN(DCGANGenerator(config), DCGANDiscriminator(config))
    project = _project(tmp_path)
    args = GANTrainingArguments(
        output_dir=str(tmp_path / "run"), max_train_steps=4, train_batch_size=4, save_images_steps=2, num_sample_images=4,
        report_to="trackio", tracker_project_name=project, show_progress=False,
    )
    train_gan(gan, _Noise(), args)
    rows = _the_run(project)
    for key in ("loss_d", "loss_g"):
        assert _series(rows, key) == {step: logs[key] for step, logs in enumerate(gan.history, 1)}, key
    assert len(gan.history) == 4
    grids = _series(rows, "samples")
    assert sorted(grids) == [2, 4]
    for step, value in grids.items():  # the grid the loop saved in samples/, pixel for pixel
        saved = np.asarray(Image.open(tmp_path / "run" / "samples" / f"step-{step}.png").convert("RGB"))
        np.testing.assert_array_equal(_image(value), saved)
    assert no_network == []


def test_trackio_starts_no_dashboard_even_in_a_notebook(tmp_path, no_network, monkeypatch):
    """trackio.init embeds a local dashboard when it runs in a notebook (a public share link in Colab):
    hfmagic's runs ask it not to (embed=False), so no server socket is opened."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from hfmagic.training.run import init_trackers

    binds = []
    bind = socket.socket.bind
    monkeypatch.setattr(socket.socket, "bind", lambda sock, address: binds.append(address) or bind(sock, address))
    monkeypatch.setattr(trackio.utils, "is_in_notebook", lambda: True)
    accelerator = Accelerator(cpu=True, log_with="trackio")
    try:
        init_trackers(accelerator, _project(tmp_path), {"learning_rate": 1e-4})
        assert accelerator.get_tracker("trackio", unwrap=False).init_kwargs == {"embed": False}
        accelerator.log({"loss": 0.5}, step=1)
    finally:
        accelerator.end_training()
        AcceleratorState._reset_state()
    assert _series(_the_run(_project(tmp_path)), "loss") == {1: 0.5}
    assert binds == [] and no_network == []


def test_trackio_is_a_tracker_to_name_and_its_absence_says_how_to_install_it(monkeypatch):
    import accelerate.tracking
    from accelerate.utils import LoggerType

    from hfmagic.training.run import resolve_report_to

    assert resolve_report_to("trackio") == "trackio"
    assert SRTrainingArguments(report_to="trackio").report_to == "trackio"
    monkeypatch.setattr(accelerate.tracking, "get_available_trackers", lambda: [LoggerType.TENSORBOARD])
    with pytest.raises(ValueError, match=r"report_to='trackio', but the trackio package is not installed.*pip install trackio"):
        GANTrainingArguments(report_to="trackio")
    assert resolve_report_to("auto") == "tensorboard"  # "auto" stays tensorboard


def _load_script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"tracking_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["train_dcgan", "train_esrgan"])
def test_scripts_take_report_to_trackio(name, tmp_path, no_network):
    """The GAN scripts log to the trackio project named after the script (their tracker project)."""
    script = _load_script(name)
    if name == "train_dcgan":
        argv = ["--resolution", "16", "--model_config_overrides", '{"generator_base_channels": 16, "discriminator_base_channels": 4}',
                "--train_batch_size", "4", "--max_train_steps", "2", "--save_images_steps", "2", "--num_sample_images", "4"]
        keys, images = ("loss_d", "loss_g"), {"samples": [2]}
    else:
        hr_dir = tmp_path / "hr"
        hr_dir.mkdir()
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(hr_dir / "img0.png")
        vgg = tmp_path / "vgg19_tiny.safetensors"
        save_file(tiny_vgg_state(naming="torchvision"), str(vgg))
        argv = ["--model", "msrresnet", "--model_config_overrides", '{"mid_channels": 8, "num_blocks": 1}', "--scale", "2",
                "--discriminator", "unet_sn", "--discriminator_config_overrides", '{"mid_channels": 4}',
                "--train_data_dir", str(hr_dir), "--gt_patch_size", "16", "--train_batch_size", "2", "--vgg_model_name_or_path",
                str(vgg), "--validation_steps", "0", "--max_train_steps", "2", "--checkpointing_steps", "0",
                "--dataloader_num_workers", "0"]
        keys, images = ("loss_d_real", "loss_d_fake", "loss_pix", "loss_perceptual", "loss_gan", "lr"), {}
    script.main(script.parse_args([*argv, "--report_to", "trackio", "--output_dir", str(tmp_path / "run")]))
    rows = _the_run(name)
    for key in keys:
        assert sorted(_series(rows, key)) == [1, 2], key
    for key, steps in images.items():
        assert sorted(_series(rows, key)) == steps
    assert no_network == []


@pytest.mark.slow
def test_train_sr_script_logs_to_the_trackio_dir_offline(tmp_path):
    """What a user runs: TRACKIO_DIR under tmp_path, HF_HUB_OFFLINE=1, examples/train_sr.py --report_to trackio."""
    hr_dir = tmp_path / "hr"
    hr_dir.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(hr_dir / f"img{i}.png")
    trackio_dir = tmp_path / "trackio"
    env = {
        **os.environ, "TRACKIO_DIR": str(trackio_dir), "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    cmd = [
        sys.executable, "examples/train_sr.py", "--model", "msrresnet", "--model_config_overrides",
        '{"mid_channels": 8, "num_blocks": 1}', "--scale", "2", "--train_data_dir", str(hr_dir), "--gt_patch_size", "16",
        "--train_batch_size", "2", "--max_train_steps", "3", "--validation_steps", "0", "--checkpointing_steps", "0",
        "--dataloader_num_workers", "0", "--report_to", "trackio", "--output_dir", str(tmp_path / "run"),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # this process's trackio reads the session's TRACKIO_DIR: the subprocess's file is read with sqlite3
    with sqlite3.connect(trackio_dir / "train_sr.db") as db:  # the project is the script's tracker project name
        rows = [(step, json.loads(metrics)) for step, metrics in db.execute("SELECT step, metrics FROM metrics ORDER BY id")]
    scalars = {step: logged for step, logged in rows if "loss" in logged}
    assert sorted(scalars) == [1, 2, 3] and all(np.isfinite(v["loss"]) and v["lr"] > 0 for v in scalars.values())
    assert not (tmp_path / "run" / "logs").exists() or not any((tmp_path / "run" / "logs").rglob("events.*"))
