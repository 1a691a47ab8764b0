"""A newcomer's mistakes with every ``hfmagic`` command and both example scripts: one line saying what
is wrong and what to do, a non-zero exit code, no traceback, and no run folder for a mistake that is
knowable before training starts. ``--debug`` / ``HFMAGIC_DEBUG=1`` show the traceback."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hfmagic import DCGANConfig, DCGANGenerator, MSRResNet, MSRResNetConfig
from hfmagic.cli import main
from hfmagic.errors import error_message

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """An x4 model folder, its MMagic-style checkpoint, a GAN, a folder without config.json, a text
    file, a small image and a folder of 20x20 photos (smaller than any recipe's patch)."""
    root = tmp_path_factory.mktemp("mistakes")
    torch.manual_seed(0)
    sr = MSRResNet(MSRResNetConfig(upscale_factor=4, mid_channels=4, num_blocks=1))
    sr.save_pretrained(root / "msr_x4")
    torch.save({"state_dict": {f"generator.{k}": v for k, v in sr.state_dict().items()}, "meta": {}}, root / "iter_1000.pth")
    gan = DCGANConfig(image_size=8, noise_size=4, generator_base_channels=8, discriminator_base_channels=4)
    DCGANGenerator(gan).save_pretrained(root / "gan")
    (root / "no_config").mkdir()
    (root / "no_config" / "iter_1000.pth").write_bytes(b"weights")
    (root / "notes.txt").write_text("not a checkpoint\n")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(root / "photo.png")
    (root / "small").mkdir()
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(root / "small" / f"{i}.png")
    return root


# (command line with {root} for the fixture folder, phrase the message must hold)
CLI_MISTAKES = [
    ("upscale {root}/photo.png --model {root}/iter_1000.pth --output {root}/out",
     "is a checkpoint file, not a model folder: convert it first with `hfmagic convert"),
    ("upscale {root}/photo.png --model {root}/no_config --output {root}/out",
     "has no config.json, so it is not a saved model folder; for an MMagic/BasicSR checkpoint, convert it first"),
    ("upscale {root}/photo.png --model {root}/gan --output {root}/out", "is a GAN (DCGANGenerator), not a super-resolution model"),
    ("upscale {root}/missing.png --model {root}/msr_x4 --output {root}/out", "no such file or folder"),
    ("upscale {root}/photo.png --model {root}/msr_x4 --output {root}/out --tile 0", "--tile must be >= 1"),
    ("upscale {root}/photo.png --model org/not-downloaded --output {root}/out", "cannot load --model org/not-downloaded"),
    ("convert {root}/notes.txt {root}/converted", "is not a PyTorch checkpoint"),
    ("convert {root}/msr_x4 {root}/converted", "does not exist or is not a file"),
    ("sample --model {root}/msr_x4 --output {root}/out", "super-resolution models go to SuperResolutionPipeline"),
    ("sample --model {root}/iter_1000.pth --output {root}/out", "is a checkpoint file"),
    ("evaluate --model {root}/iter_1000.pth --dataset {root}/small", "is a checkpoint file"),
    ("evaluate --model {root}/msr_x4 --dataset Set5", "Could not get data/Set5_HR.tar.gz"),
    ("evaluate --model {root}/msr_x4 --dataset {root}/nowhere", "nowhere"),
    # the message depends on whether datasets was imported offline; either way it names the id
    ("evaluate-gan --model {root}/gan --dataset org/not-downloaded --num-images 2", "'org/not-downloaded'"),
    ("evaluate-gan --model {root}/gan --dataset {root}/small --num-images 3", "--num-images must be an even number"),
    ("prepare-div2k {root}/no_such_div2k {root}/prepared", "does not exist"),
]


@pytest.mark.parametrize("command, phrase", CLI_MISTAKES, ids=[c.split()[0] + f"-{i}" for i, (c, _) in enumerate(CLI_MISTAKES)])
def test_cli_mistakes_print_one_line_and_exit_1(command, phrase, files, capsys, monkeypatch):
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HFMAGIC_DEBUG", raising=False)
    code = main(command.format(root=files).split() + ["--device", "cpu"] * command.startswith(("upscale", "sample", "evaluate")))
    err = capsys.readouterr().err
    assert code == 1
    lines = [line for line in err.splitlines() if "error:" in line]
    assert lines and lines[0].startswith(f"hfmagic {command.split()[0]}: error:"), err
    assert phrase in err, err
    assert "Traceback" not in err
    assert not (files / "out").exists() and not (files / "converted").exists() and not (files / "prepared").exists()


def test_debug_flag_and_environment_variable_show_the_traceback(files, monkeypatch):
    argv = ["upscale", str(files / "photo.png"), "--model", str(files / "iter_1000.pth"), "--output", str(files / "out")]
    monkeypatch.delenv("HFMAGIC_DEBUG", raising=False)
    with pytest.raises(ValueError, match="is a checkpoint file"):
        main(["--debug", *argv])
    with pytest.raises(ValueError, match="is a checkpoint file"):
        main([*argv, "--debug"])  # after the command too
    assert main(argv) == 1  # --debug does not stick to the process
    monkeypatch.setenv("HFMAGIC_DEBUG", "1")
    with pytest.raises(ValueError, match="is a checkpoint file"):
        main(argv)
    monkeypatch.setenv("HFMAGIC_DEBUG", "0")
    assert main(argv) == 1


def test_an_offline_hub_error_says_what_to_do():
    message = error_message(ConnectionError("Couldn't reach 'org/data' on the Hub (OfflineModeIsEnabled)"))
    assert message.startswith("Couldn't reach 'org/data'") and "pass a local folder or file instead" in message


def test_a_dataloader_worker_error_is_reported_as_the_worker_s_last_line():
    err = ValueError(
        "Caught ValueError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\nValueError: row 2 (a.png) is 20x20, smaller than gt_patch_size=128.'
    )
    assert error_message(err) == "row 2 (a.png) is 20x20, smaller than gt_patch_size=128."


def _load_script(name):
    spec = importlib.util.spec_from_file_location(f"cli_errors_{name[:-3]}", ROOT / "examples" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _script(name, *argv):
    """The script in a subprocess, as a user runs it (its ``__main__`` block)."""
    env = {**os.environ, **OFFLINE, "PYTHONPATH": str(ROOT)}
    env.pop("HFMAGIC_DEBUG", None)
    return subprocess.run([sys.executable, str(ROOT / "examples" / name), *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)


# (script, flags with {root}, phrase); each run gets --output_dir, which must not appear. In-process
# through the scripts' cli() (what their __main__ runs), except the mistakes train_sr meets after
# creating its accelerator, which run as a user runs them, in a subprocess (a few seconds each).
SCRIPT_MISTAKES = [
    ("train_sr.py", "--scale 8", "MSRResNetConfig does not support upscale_factor=8"),
    ("train_sr.py", "--model_name_or_path {root}/msr_x4 --scale 2", "--scale 2 differs from"),
    ("train_sr.py", "--model_name_or_path {root}/iter_1000.pth", "is a checkpoint file, not a model folder"),
    ("train_sr.py", "--foo 1", "unrecognized arguments: --foo 1"),
    ("train_sr.py", "--model srcnn --gt_patch_size 32 --train_batch_size 1 --resume_from_checkpoint checkpoint-7",
     "Cannot resume from 'checkpoint-7'"),
    ("train_dcgan.py", "--resolution 48", "--resolution 48: image_size=48 must be"),
    ("train_dcgan.py", "--dataset_name org/not-downloaded", "'org/not-downloaded'"),
    ("train_dcgan.py", "--train_data_dir {root}/small --num_channels 2", "invalid choice"),
    ("train_dcgan.py", "--train_data_dir {root}/no_config", "holds no image files"),
    ("train_dcgan.py", "--resume_from_checkpoint {root}/no_config", "not a complete hfmagic checkpoint folder"),
]
SUBPROCESS_MISTAKES = [
    ("train_sr.py", "--train_data_dir {root}/small", "2 of 2 training image(s) are smaller than gt_patch_size=128"),
    ("train_sr.py", "--validation_dataset Set5", "Could not get data/Set5_HR.tar.gz"),
]


def _argv(flags, root, out):
    return flags.format(root=root).split() + ["--output_dir", str(out), "--report_to", "none", "--max_train_steps", "1"]


def _check(script, phrase, code, err, out):
    assert code not in (0, None)
    assert f"{script}: error:" in err and phrase in err, err[-2000:]
    assert "Traceback" not in err
    assert len(err.splitlines()) < 12  # a few log lines at most, not a 38-line usage
    assert not out.exists()


@pytest.mark.parametrize("script, flags, phrase", SCRIPT_MISTAKES, ids=[f"{s[:-3]}-{i}" for i, (s, _, _) in enumerate(SCRIPT_MISTAKES)])
def test_script_mistakes_print_the_reason_and_create_no_run_folder(script, flags, phrase, files, tmp_path, capsys, monkeypatch):
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HFMAGIC_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", [str(ROOT / "examples" / script)])  # argparse's prog, as when run
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_:
        _load_script(script).cli(_argv(flags, files, out))
    _check(script, phrase, exit_.value.code, capsys.readouterr().err, out)


@pytest.mark.parametrize("script, flags, phrase", SUBPROCESS_MISTAKES, ids=["small-images", "offline-Set5"])
def test_script_data_mistakes_end_before_the_run_folder(script, flags, phrase, files, tmp_path):
    out = tmp_path / "run"
    proc = _script(script, *_argv(flags, files, out))
    _check(script, phrase, proc.returncode, proc.stderr, out)


def test_script_debug_shows_the_traceback(files, tmp_path, monkeypatch):
    from hfmagic.errors import set_debug

    monkeypatch.delenv("HFMAGIC_DEBUG", raising=False)
    script = _load_script("train_sr.py")
    argv = ["--model_name_or_path", str(files / "msr_x4"), "--scale", "2", "--output_dir", str(tmp_path / "run")]
    try:
        with pytest.raises(ValueError, match="--scale 2 differs"):
            script.cli([*argv, "--debug"])
        set_debug(False)
        monkeypatch.setenv("HFMAGIC_DEBUG", "1")
        with pytest.raises(ValueError, match="--scale 2 differs"):
            script.cli(argv)
    finally:
        set_debug(False)


def test_bugs_keep_their_traceback_and_user_errors_exit_1(capsys):
    from hfmagic.errors import report_errors

    with pytest.raises(RuntimeError, match="a bug"):  # not a user error: the traceback is the bug report
        with report_errors("prog"):
            raise RuntimeError("a bug")
    with pytest.raises(SystemExit) as exit_:
        with report_errors("prog"):
            raise FileNotFoundError("data.parquet does not exist")
    assert exit_.value.code == 1 and capsys.readouterr().err == "prog: error: data.parquet does not exist\n"
