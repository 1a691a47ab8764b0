"""CPU threads of training processes (hfmagic.training.cpu_threads): the decision over environments,
reading what the launcher was started with, applying it, and the training scripts under a real
``accelerate launch``."""

import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from hfmagic.training import SRTrainingArguments, choose_cpu_threads, configure_cpu_threads
from hfmagic.training.cpu_threads import _local_processes, launcher_had_thread_setting

ROOT = Path(__file__).resolve().parents[1]
ACCELERATE = {"ACCELERATE_DYNAMO_BACKEND": "NO", "ACCELERATE_MIXED_PRECISION": "no", "ACCELERATE_USE_CPU": "False"}
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _choose(environ, cores=8, local=1, **kwargs):
    kwargs.setdefault("current_threads", 5)
    return choose_cpu_threads(device_type="cpu", environ=environ, available_cores=cores, local_processes=local, **kwargs)


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- the decision


def test_launcher_default_of_one_thread_becomes_the_process_share_of_the_cores():
    launched = {**ACCELERATE, "OMP_NUM_THREADS": "1"}
    choice = _choose(launched, cores=8, local=1)
    assert choice.num_threads == 8 and "launcher's default OMP_NUM_THREADS=1 replaced" in choice.reason
    assert choice.reason.endswith("8 cores / 1 local process")
    # DDP: the cores are split between the local processes, never below one thread
    assert _choose(launched, cores=8, local=2).num_threads == 4
    assert _choose(launched, cores=2, local=2).num_threads == 1
    assert _choose(launched, cores=3, local=2).num_threads == 1
    assert _choose(launched, cores=1, local=4).num_threads == 1
    # unknown launcher environment (no /proc): the same
    assert _choose(launched, cores=6, launcher_had_setting=None).num_threads == 6
    # torchrun (and accelerate's multi-process launcher through it) marks its processes too
    assert _choose({"TORCHELASTIC_RUN_ID": "x", "OMP_NUM_THREADS": "1"}, cores=4, local=2).num_threads == 2


def test_a_thread_count_the_user_set_is_kept():
    launched = {**ACCELERATE, "OMP_NUM_THREADS": "1"}
    # OMP_NUM_THREADS=1 that the launcher was given (its environment or --num_cpu_threads_per_process)
    choice = _choose(launched, launcher_had_setting=True)
    assert choice.num_threads == 1 and "given to the launcher" in choice.reason
    # launchers make up only 1: another value came from the user
    assert _choose({**ACCELERATE, "OMP_NUM_THREADS": "3"}, launcher_had_setting=False).num_threads == 3
    # no launcher: OMP_NUM_THREADS is the user's, even 1
    choice = _choose({"OMP_NUM_THREADS": "1"}, cores=8)
    assert choice.num_threads == 1 and "from the environment" in choice.reason
    # num_threads (--num_threads) wins over everything
    for environ in (launched, {"OMP_NUM_THREADS": "2"}, {}):
        choice = _choose(environ, num_threads=3, launcher_had_setting=False)
        assert choice.num_threads == 3 and "--num_threads" in choice.reason


def test_without_omp_num_threads_one_process_keeps_torch_default_and_several_split_the_cores():
    choice = _choose({}, cores=8, local=1, current_threads=5)
    assert choice.num_threads == 5 and "torch's default" in choice.reason  # e.g. torch.set_num_threads in a notebook
    assert _choose({}, cores=8, local=4).num_threads == 2
    assert _choose({"OMP_NUM_THREADS": "lots"}, cores=8, local=2).num_threads == 4  # unreadable: as if unset


def test_gpu_leaves_threads_alone_and_bad_counts_are_refused():
    environ = {**ACCELERATE, "OMP_NUM_THREADS": "1"}
    choice = choose_cpu_threads(device_type="cuda", environ=environ, available_cores=8, local_processes=1)
    assert choice.num_threads is None and "cuda" in choice.reason
    for bad in (0, -2):
        with pytest.raises(ValueError, match="num_threads must be >= 1"):
            _choose({}, num_threads=bad)
    with pytest.raises(ValueError, match="num_threads must be >= 1"):
        SRTrainingArguments(output_dir="x", num_threads=0)


def test_local_processes_come_from_the_launcher_then_the_process_count():
    assert _local_processes({"LOCAL_WORLD_SIZE": "2"}, num_processes=4) == 2
    assert _local_processes({"OMPI_COMM_WORLD_LOCAL_SIZE": "3"}, num_processes=6) == 3
    assert _local_processes({}, num_processes=2) == 2


# ----------------------------------------------------------------------------- reading the launcher


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_what_the_launching_process_was_started_with_is_read_from_proc():
    base = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    sleeper = "import os, sys, time; os.environ['OMP_NUM_THREADS'] = '1'; print('ready', flush=True); time.sleep(60)"
    cases = [
        ({**base, "OMP_NUM_THREADS": "1"}, [], True),  # `OMP_NUM_THREADS=1 accelerate launch ...`
        (base, ["--num_cpu_threads_per_process", "1"], True),
        (base, ["--num_cpu_threads=2"], True),  # argparse's prefix abbreviation
        (base, [], False),  # set in-process later (torchrun's os.environ[...] = '1'): not the user's
    ]
    for env, argv, expected in cases:
        process = subprocess.Popen([sys.executable, "-c", sleeper, *argv], env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert process.stdout.readline().strip() == "ready"
            assert launcher_had_thread_setting(process.pid) is expected, argv
        finally:
            process.kill()
            process.wait()
    assert launcher_had_thread_setting(2**22 + 12345) is None  # no such process


# ----------------------------------------------------------------------------- applying it


def _accelerator(device="cpu", main=True, processes=1):
    return SimpleNamespace(device=torch.device(device), num_processes=processes, is_main_process=main)


def test_configure_sets_torch_threads_and_logs_once_on_the_main_process(monkeypatch, caplog, restore_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for name in ("ACCELERATE_DYNAMO_BACKEND", "TORCHELASTIC_RUN_ID", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    caplog.set_level(logging.INFO, logger="hfmagic.training.cpu_threads")
    choice = configure_cpu_threads(_accelerator(), num_threads=1)
    assert choice.num_threads == 1 and torch.get_num_threads() == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "hfmagic.training.cpu_threads"]
    assert lines == ["CPU threads: 1 per process (set by num_threads (--num_threads))."]
    caplog.clear()
    # the launcher's OMP_NUM_THREADS=1 in this process (the test process's parent did not set it)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for name, value in ACCELERATE.items():
        monkeypatch.setenv(name, value)
    had = launcher_had_thread_setting()
    choice = configure_cpu_threads(_accelerator(main=False))
    assert choice.num_threads == (1 if had else CORES) == torch.get_num_threads()
    assert not caplog.records  # other ranks stay quiet
    # two local processes share the cores
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert configure_cpu_threads(_accelerator(processes=2)).num_threads == (1 if had else max(1, CORES // 2))
    # GPU: nothing set, nothing logged
    torch.set_num_threads(1)
    caplog.clear()
    assert configure_cpu_threads(_accelerator(device="meta")).num_threads is None
    assert torch.get_num_threads() == 1 and not caplog.records


def test_scripts_take_and_check_num_threads(capsys):
    import importlib.util

    for name in ("train_sr", "train_dcgan"):
        spec = importlib.util.spec_from_file_location(f"{name}_threads_test", ROOT / "examples" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert module.parse_args(["--num_threads", "3"]).num_threads == 3
        assert module.parse_args([]).num_threads is None
        with pytest.raises(SystemExit):
            module.parse_args(["--num_threads", "0"])
        assert "--num_threads must be >= 1" in capsys.readouterr().err
        if name == "train_sr":
            args = module.parse_args(["--num_threads", "3"])
            recipe, scale = module.load_recipe(args)
            assert module.training_arguments(args, recipe, scale).num_threads == 3


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hr")
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


# train_sr.py with a callback that prints the thread count torch runs the training steps with
_PROBE = """
import runpy, sys, torch
from hfmagic.training import sr
real = sr.train_sr
def patched(*args, **kwargs):
    probe = lambda step, logs: print(f"threads during training: {torch.get_num_threads()}", flush=True)
    return real(*args, callbacks=[probe], **kwargs)
sr.train_sr = patched
import hfmagic.training
hfmagic.training.train_sr = patched
runpy.run_path(%r, run_name="__main__")
"""


@pytest.mark.slow
def test_train_sr_under_accelerate_launch_uses_the_cores(image_dir, tmp_path):
    probe = tmp_path / "probe_train_sr.py"
    probe.write_text(_PROBE % str(ROOT / "examples" / "train_sr.py"))
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # as a user who set nothing
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", str(probe)]
    argv = ["--model_config_overrides", '{"mid_channels": 8, "num_blocks": 1}', "--scale", "2", "--train_data_dir",
            str(image_dir), "--gt_patch_size", "16", "--train_batch_size", "2", "--max_train_steps", "2",
            "--validation_steps", "0", "--checkpointing_steps", "0", "--dataloader_num_workers", "0", "--report_to", "none"]
    run = subprocess.run([*launch, *argv, "--output_dir", str(tmp_path / "auto")], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    text = run.stdout + run.stderr
    assert f"CPU threads: {CORES} per process (the launcher's default OMP_NUM_THREADS=1 replaced: {CORES} cores / 1 local process)" in text
    assert text.count("threads during training: ") == 2 and f"threads during training: {CORES}\n" in run.stdout
    # OMP_NUM_THREADS=1 given to the launcher by the user is kept
    run = subprocess.run([*launch, *argv, "--output_dir", str(tmp_path / "user")], env={**env, "OMP_NUM_THREADS": "1"},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "CPU threads: 1 per process (OMP_NUM_THREADS=1 given to the launcher)" in run.stdout + run.stderr
    assert run.stdout.count("threads during training: 1\n") == 2


def test_train_dcgan_passes_num_threads_to_the_loop(tmp_path, caplog, restore_threads):
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_dcgan_threads_test", ROOT / "examples" / "train_dcgan.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    torch.set_num_threads(2)
    caplog.set_level(logging.INFO, logger="hfmagic.training.cpu_threads")
    args = script.parse_args([
        "--resolution", "16", "--model_config_overrides", '{"generator_base_channels": 16, "discriminator_base_channels": 4}',
        "--train_batch_size", "4", "--max_train_steps", "1", "--checkpointing_steps", "0", "--save_images_steps", "0",
        "--num_sample_images", "4", "--report_to", "none", "--num_threads", "1", "--output_dir", str(tmp_path / "run"),
    ])
    script.main(args)
    assert torch.get_num_threads() == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "hfmagic.training.cpu_threads"]
    assert lines == ["CPU threads: 1 per process (set by num_threads (--num_threads))."]
