"""Logs off a terminal (hfmagic.logging_utils): the rate-limited progress lines, the quiet library
output, rounded metrics, and real runs of train_sr.py / train_dcgan.py / ``hfmagic upscale`` with
stderr in a file (a real non-TTY) whose size per step is bounded."""

import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hfmagic.logging_utils import (
    LogProgress,
    MainProcessLogger,
    format_metrics,
    progress_bar,
    quiet_library_output,
    quiet_loggers,
)

ROOT = Path(__file__).resolve().parents[1]
# every line of the scripts' stderr: "2026-12-03 17:06:10 - INFO - name - message"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - (DEBUG|INFO|WARNING|ERROR) - [\w.]+ - \S")


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _progress(caplog, **kwargs):
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="test.progress")
    bar = LogProgress(logger=logging.getLogger("test.progress"), clock=clock, **kwargs)
    return bar, clock, lambda: [r.getMessage() for r in caplog.records if r.name == "test.progress"]


def test_a_line_every_n_seconds_not_every_step(caplog):
    bar, clock, lines = _progress(caplog, total=100, desc="Steps", every_seconds=30)
    for step in range(100):
        clock.now += 1.0  # one step a second
        bar.set_postfix(loss=f"{1 / (step + 1):.4g}", refresh=False)
        bar.update(1)
    assert len(lines()) == 3  # at 30, 60, 90 s
    assert lines()[0] == "Steps 30/100 (30%), 1 it/s, elapsed 0:00:30, left 0:01:10, loss=0.03333"
    bar.close()
    bar.close()  # idempotent
    assert len(lines()) == 4 and lines()[-1] == "Steps 100/100 (100%), 1 it/s, elapsed 0:01:40, loss=0.01"


def test_a_line_every_k_steps_and_a_resumed_count(caplog):
    bar, clock, lines = _progress(caplog, total=50, initial=20, desc="Steps", every_seconds=None, every_steps=10)
    for _ in range(30):
        clock.now += 0.5
        bar.update(1)
    bar.close()  # the last update was just logged: no repeat
    assert [line.split(",")[0] for line in lines()] == ["Steps 30/50 (60%)", "Steps 40/50 (80%)", "Steps 50/50 (100%)"]
    assert "2 it/s" in lines()[0]  # counted from the resumed step, not from 0
    # update(n) crossing a multiple logs once
    bar, clock, lines = _progress(caplog, total=None, desc="big", every_seconds=None, every_steps=10)
    caplog.clear()
    bar.update(25)
    assert lines() == ["big 25, elapsed 0:00:00"]


def test_slow_steps_and_inner_bars(caplog):
    # slow steps read as seconds per step; an inner bar (leave=False) logs only when it takes long
    bar, clock, lines = _progress(caplog, total=3, desc="tiles", unit="tile", every_seconds=30, leave=False)
    clock.now = 45.0
    bar.update(1)
    bar.update(1)
    bar.close()
    assert lines() == ["tiles 1/3 (33%), 45 s/tile, elapsed 0:00:45, left 0:01:30"]
    caplog.clear()
    bar, clock, lines = _progress(caplog, total=3, desc="tiles", every_seconds=30, leave=False)
    bar.update(3)
    bar.close()
    assert lines() == []


def test_iteration_yields_everything_and_logs_the_end(caplog):
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="test.progress")
    bar = LogProgress(["a", "b", "c"], desc="upscaling", unit="image", logger=logging.getLogger("test.progress"), clock=clock)
    assert list(bar) == ["a", "b", "c"] and bar.closed
    assert [r.getMessage() for r in caplog.records] == ["upscaling 3/3 (100%), elapsed 0:00:00"]


def test_without_logging_set_up_lines_still_reach_stderr(capsys):
    bar = LogProgress(total=2, desc="Steps", logger=logging.getLogger("hfmagic.test.nohandler"), clock=FakeClock())
    logging.getLogger("hfmagic.test.nohandler").propagate = False  # no handler anywhere on its way
    try:
        bar.update(2)
        bar.close()
    finally:
        logging.getLogger("hfmagic.test.nohandler").propagate = True
    err = capsys.readouterr().err
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - Steps 2/2 \(100%\), elapsed 0:00:00\n", err), err


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_progress_bar_is_tqdm_on_a_terminal_and_log_lines_elsewhere(monkeypatch):
    from tqdm.auto import tqdm

    monkeypatch.delenv("HFMAGIC_PROGRESS_SECONDS", raising=False)
    monkeypatch.delenv("HFMAGIC_PROGRESS_STEPS", raising=False)
    terminal = progress_bar(total=3, file=_Stream(True))
    assert isinstance(terminal, tqdm)
    terminal.close()
    assert isinstance(progress_bar(total=3, disable=True, file=_Stream(False)), tqdm)  # disabled: tqdm's no-op
    logged = progress_bar(total=3, file=_Stream(False))
    assert isinstance(logged, LogProgress) and (logged.every_seconds, logged.every_steps) == (30.0, None)
    monkeypatch.setenv("HFMAGIC_PROGRESS_SECONDS", "0")
    monkeypatch.setenv("HFMAGIC_PROGRESS_STEPS", "100")
    logged = progress_bar(total=3, file=_Stream(False))
    assert (logged.every_seconds, logged.every_steps) == (None, 100)
    monkeypatch.setenv("HFMAGIC_PROGRESS_SECONDS", "often")
    with pytest.raises(ValueError, match="HFMAGIC_PROGRESS_SECONDS='often' is not a number"):
        progress_bar(total=3, file=_Stream(False))
    with pytest.raises(ValueError, match="every_steps=0 must be >= 1"):
        LogProgress(total=3, every_steps=0)


def test_quiet_loggers_restores_the_levels():
    log = logging.getLogger("accelerate.checkpointing")
    log.setLevel(logging.DEBUG)
    try:
        with quiet_loggers("accelerate.checkpointing", "some.other"):
            assert log.level == logging.WARNING and not log.isEnabledFor(logging.INFO)
        assert log.level == logging.DEBUG
    finally:
        log.setLevel(logging.NOTSET)


def test_main_process_logger_has_no_rank_prefix_and_is_silent_elsewhere(caplog):
    caplog.set_level(logging.INFO, logger="test.main")
    MainProcessLogger(logging.getLogger("test.main"), True).info("Saved %s", "checkpoint-4")
    MainProcessLogger(logging.getLogger("test.main"), False).info("twice")
    assert [r.getMessage() for r in caplog.records] == ["Saved checkpoint-4"]


def test_transformers_bars_are_off_after_quiet_library_output(tmp_path, capsys):
    from transformers.utils import logging as transformers_logging

    from hfmagic import EDSR, EDSRConfig

    was_on = transformers_logging.is_progress_bar_enabled()
    try:
        quiet_library_output(_Stream(False))
        assert not transformers_logging.is_progress_bar_enabled()
        EDSR(EDSRConfig(upscale_factor=2, mid_channels=4, num_blocks=1)).save_pretrained(tmp_path)
        EDSR.from_pretrained(tmp_path)
        err = capsys.readouterr().err
        assert "Writing model shards" not in err and "Loading weights" not in err
    finally:
        if was_on:
            transformers_logging.enable_progress_bar()


def test_metrics_are_one_rounded_line():
    results = {
        "Set5": {"psnr": 30.123456789012345, "ssim": 0.876543219, "bicubic_psnr": 28.9999999, "num_images": 5.0},
        "val": {"psnr": 11.41, "ssim": 0.19, "lpips": 0.000123456789},
    }
    assert format_metrics(results) == (
        "Set5: PSNR 30.1235, SSIM 0.8765, bicubic PSNR 29.0000, images 5; val: PSNR 11.4100, SSIM 0.1900, lpips 0.0001235"
    )
    assert format_metrics({"16": 104.20321, "avg": 98.7654321}) == "16 104.2, avg 98.77"


# ----------------------------------------------------------------------------- real runs, stderr in a file


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HFMAGIC_PROGRESS")}
    env.update(PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1", **extra)
    return env


def _run_to_file(cmd, log, **env):
    """Run ``cmd`` with stderr (and stdout) in the file ``log``: not a terminal, like nohup or a cluster job."""
    with open(log, "w") as handle:
        proc = subprocess.run(cmd, cwd=ROOT, env=_env(**env), stdout=handle, stderr=subprocess.STDOUT, timeout=300)
    text = Path(log).read_text()
    assert proc.returncode == 0, text[-3000:]
    return text


def _assert_quiet_log(text):
    assert "\r" not in text and "\x1b[" not in text  # no redraws, no cursor moves
    assert "Loading weights" not in text and "Writing model shards" not in text and "Generating train split" not in text
    assert ".tmp" not in text and "[RANK" not in text
    bad = [line for line in text.splitlines() if not LOG_LINE.match(line)]
    assert not bad, bad  # one format, one line per message


def test_train_sr_logs_a_bounded_amount_per_step_to_a_file(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "hr").mkdir()
    (tmp_path / "val").mkdir()
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "hr" / f"{i}.png")
    Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(tmp_path / "val" / "v.png")
    steps = 60
    argv = [
        sys.executable, str(ROOT / "examples" / "train_sr.py"), "--model", "msrresnet",
        "--model_config_overrides", json.dumps({"mid_channels": 8, "num_blocks": 1}), "--scale", "2",
        "--train_data_dir", str(tmp_path / "hr"), "--gt_patch_size", "16", "--train_batch_size", "2",
        "--report_to", "none", "--output_dir", str(tmp_path / "run"), "--max_train_steps", str(steps),
        "--validation_steps", "30", "--validation_dataset", str(tmp_path / "val"), "--checkpointing_steps", "30", "--seed", "3",
    ]
    text = _run_to_file(argv, tmp_path / "train.log", HFMAGIC_PROGRESS_STEPS="20")
    _assert_quiet_log(text)
    progress = [line for line in text.splitlines() if " - Steps " in line]
    assert [re.search(r"Steps (\d+)/60", line).group(1) for line in progress] == ["20", "40", "60"]
    assert re.search(r"Steps 40/60 \(67%\), [\d.]+ it/s, elapsed \S+, left \S+, loss=[\d.e-]+ lr=[\d.e+-]+ samples_s=[\d.]+$", progress[1])
    assert re.search(r"Validation at step 30: val: PSNR \d+\.\d{4}, SSIM 0\.\d{4}, bicubic PSNR \d+\.\d{4}, bicubic SSIM 0\.\d{4}, images 1$", text, re.M)
    assert f"Saved {tmp_path / 'run' / 'checkpoint-30'}" in text
    # the run's own lines (start, 2 checkpoints + validations, the end) plus ~120 bytes per progress line:
    # a tqdm redraw per step was ~136 bytes a step (8 KB here), growing with the run
    assert len(text.encode()) < 2600 + 30 * steps, text


def test_train_dcgan_logs_in_the_same_format_to_a_file(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "data").mkdir()
    for i in range(16):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(tmp_path / "data" / f"{i:02d}.png")
    steps = 40
    argv = [
        sys.executable, str(ROOT / "examples" / "train_dcgan.py"), "--train_data_dir", str(tmp_path / "data"),
        "--resolution", "16", "--model_config_overrides", json.dumps({"generator_base_channels": 16, "discriminator_base_channels": 4}),
        "--train_batch_size", "8", "--max_train_steps", str(steps), "--checkpointing_steps", "20", "--save_images_steps", "20",
        "--num_sample_images", "4", "--report_to", "none", "--seed", "3", "--output_dir", str(tmp_path / "run"),
        "--evaluation_steps", "20", "--evaluation_images", "16",
    ]
    text = _run_to_file(argv, tmp_path / "train.log")
    _assert_quiet_log(text)
    progress = [line for line in text.splitlines() if " - Steps " in line]
    assert len(progress) == 1 and re.search(r"Steps 40/40 \(100%\), .*loss_d=[\d.e-]+ loss_g=[\d.e-]+$", progress[0])
    assert re.search(r"Evaluation at step 20: SWD avg \d+\.\d{4}, MS-SSIM \d\.\d{4}$", text, re.M)
    assert re.search(r"SWD 16 [\d.]+, avg [\d.]+, MS-SSIM \d\.\d{4} on 16 images$", text, re.M)
    assert len(text.encode()) < 2600 + 30 * steps, text


def test_upscale_to_a_file_has_no_redraws_nor_loading_bars(tmp_path):
    from hfmagic import EDSR, EDSRConfig

    torch.manual_seed(0)
    EDSR(EDSRConfig(upscale_factor=2, mid_channels=4, num_blocks=1)).save_pretrained(tmp_path / "model")
    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "in" / f"{i}.png")
    cmd = [sys.executable, "-m", "hfmagic", "upscale", str(tmp_path / "in"), "--model", str(tmp_path / "model"),
           "--output", str(tmp_path / "out"), "--device", "cpu", "--dtype", "float32", "--tile", "8"]
    text = _run_to_file(cmd, tmp_path / "upscale.log")
    assert "\r" not in text and "\x1b[" not in text and "Loading weights" not in text
    lines = text.splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - upscaling 3/3 \(100%\), .*", lines[-2]), text
    assert lines[-1] == f"hfmagic upscale: wrote 3 image(s) to {tmp_path / 'out'}"
    assert len(lines) <= 3, text  # (the dtype line), the progress line, the summary


def test_progress_callback_receives_every_step_in_its_block_only():
    import threading

    from hfmagic.logging_utils import progress_bar, progress_callback

    calls = []
    with progress_callback(lambda done, total, desc: calls.append((done, total, desc))):
        assert list(progress_bar(range(3), desc="tiles")) == [0, 1, 2]
        bar = progress_bar(total=4, desc="regions")
        bar.update(2)
        bar.update(2)
        bar.close()
        list(progress_bar(range(2), disable=True))  # a disabled bar stays silent
        other = threading.Thread(target=lambda: list(progress_bar(range(2), desc="other thread", every_seconds=1e9)))
        other.start()
        other.join()  # context-local: another thread's bar does not call it
    list(progress_bar(range(2), desc="after", every_seconds=1e9))
    assert calls == [(0, 3, "tiles"), (1, 3, "tiles"), (2, 3, "tiles"), (3, 3, "tiles"), (0, 4, "regions"), (2, 4, "regions"), (4, 4, "regions")]
