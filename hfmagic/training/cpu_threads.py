"""How many torch threads a CPU training process runs with, under ``accelerate launch`` or not.

``accelerate launch`` puts ``OMP_NUM_THREADS`` in the environment of every process it starts: the
value the user gave (``OMP_NUM_THREADS`` in the launcher's environment, or
``--num_cpu_threads_per_process``), else ``1`` (accelerate 1.16, ``commands/launch.py``;
``torchrun`` does the same for more than one process). With ``1`` torch runs one thread per process
however many cores there are: half the throughput of plain ``python`` on 2 cores. Nothing in the
child's environment says whether that ``1`` was asked for, so the launching process's own
environment and command line (``/proc/<parent>/``) are read to tell; where they cannot be read a
launcher's ``1`` counts as its default (``num_threads=1`` / ``--num_threads 1`` keeps one thread).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["CPUThreadChoice", "choose_cpu_threads", "configure_cpu_threads"]

logger = logging.getLogger(__name__)

# Set by the launchers in every process they start: accelerate launch (all its launchers) and
# torchrun (also what accelerate uses for several processes).
LAUNCHER_MARKERS = ("ACCELERATE_DYNAMO_BACKEND", "TORCHELASTIC_RUN_ID")
# Processes per machine, as torchrun and the MPI launchers name it (accelerate reads the same).
LOCAL_SIZE_VARIABLES = ("LOCAL_WORLD_SIZE", "MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "MV2_COMM_WORLD_LOCAL_SIZE")


@dataclass(frozen=True)
class CPUThreadChoice:
    """What :func:`choose_cpu_threads` decided.

    Attributes:
        num_threads: torch intra-op threads for this process; None: leave torch as it is (GPU).
        reason: one phrase saying why, for the log.
    """

    num_threads: int | None
    reason: str


def _positive_int(value: str | None) -> int | None:
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if number >= 1 else None


def choose_cpu_threads(
    *,
    device_type: str,
    environ: Mapping[str, str],
    available_cores: int,
    local_processes: int,
    num_threads: int | None = None,
    launcher_had_setting: bool | None = None,
    current_threads: int | None = None,
) -> CPUThreadChoice:
    """Decide this process's torch thread count (pure: no I/O, nothing set).

    Order: GPU -> untouched; ``num_threads`` given -> it; ``OMP_NUM_THREADS`` from the user -> it;
    ``OMP_NUM_THREADS=1`` made up by a launcher -> ``available_cores // local_processes`` (at least 1);
    unset -> the same when several processes share the machine, else torch's own default.

    Args:
        device_type: the training device's type (``"cpu"``, ``"cuda"``, ...).
        environ: this process's environment (``os.environ``).
        available_cores: cores this process may run on (``len(os.sched_getaffinity(0))``).
        local_processes: training processes on this machine (>= 1).
        num_threads: the user's explicit count (``--num_threads``); None: choose.
        launcher_had_setting: whether the launching process had ``OMP_NUM_THREADS`` or
            ``--num_cpu_threads_per_process`` itself (None: unknown).
        current_threads: ``torch.get_num_threads()``, kept when nothing needs changing.
    Returns:
        A :class:`CPUThreadChoice`.
    Raises:
        ValueError: ``num_threads`` < 1.
    """
    if num_threads is not None and (isinstance(num_threads, bool) or int(num_threads) < 1):
        raise ValueError(f"num_threads must be >= 1 (None: one share of the cores per process), got {num_threads!r}.")
    if device_type != "cpu":
        return CPUThreadChoice(None, f"training on {device_type}: CPU threads left as they are")
    if num_threads is not None:
        return CPUThreadChoice(int(num_threads), "set by num_threads (--num_threads)")
    share = max(1, available_cores // max(1, local_processes))
    plural = "es" if local_processes != 1 else ""
    split = f"{available_cores} cores / {local_processes} local process{plural}"
    omp = _positive_int(environ.get("OMP_NUM_THREADS"))
    if omp is not None:
        launched = any(name in environ for name in LAUNCHER_MARKERS)
        if not launched:
            return CPUThreadChoice(omp, f"OMP_NUM_THREADS={omp} from the environment")
        if omp != 1:  # launchers only ever make up 1: any other value was passed through from the user
            return CPUThreadChoice(omp, f"OMP_NUM_THREADS={omp} given to the launcher")
        if launcher_had_setting:
            return CPUThreadChoice(1, "OMP_NUM_THREADS=1 given to the launcher")
        return CPUThreadChoice(share, f"the launcher's default OMP_NUM_THREADS=1 replaced: {split}")
    if local_processes > 1 or current_threads is None:
        return CPUThreadChoice(share, split)
    return CPUThreadChoice(current_threads, "torch's default for one process")


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _local_processes(environ: Mapping[str, str], num_processes: int) -> int:
    for name in LOCAL_SIZE_VARIABLES:
        size = _positive_int(environ.get(name))
        if size is not None:
            return size
    return max(1, num_processes)  # one machine: all processes are local


def launcher_had_thread_setting(pid: int | None = None) -> bool | None:
    """Whether process ``pid`` (default: the parent, i.e. the launcher) was started with
    ``OMP_NUM_THREADS`` in its environment or ``--num_cpu_threads_per_process`` on its command line
    (``/proc/<pid>/environ`` and ``cmdline`` hold what it was started with); None where they cannot
    be read (not Linux, another user's process)."""
    pid = os.getppid() if pid is None else pid
    try:
        with open(f"/proc/{pid}/environ", "rb") as file:
            environ = file.read().split(b"\0")
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            cmdline = file.read().split(b"\0")
    except OSError:
        return None
    # argparse accepts unambiguous prefixes of --num_cpu_threads_per_process too
    return any(entry.startswith(b"OMP_NUM_THREADS=") for entry in environ) or any(
        arg.startswith(b"--num_cpu_threads") for arg in cmdline
    )


def configure_cpu_threads(accelerator: Any, num_threads: int | None = None) -> CPUThreadChoice:
    """Give this training process its share of the CPU cores (see :func:`choose_cpu_threads`) with
    ``torch.set_num_threads`` and log the choice once (INFO, main process). Does nothing on a GPU.

    Args:
        accelerator: the run's ``accelerate.Accelerator`` (its ``device``, ``num_processes`` and
            ``is_main_process`` are read).
        num_threads: the user's explicit count; None: choose.
    Returns:
        The :class:`CPUThreadChoice` applied.
    """
    environ = os.environ
    device_type = accelerator.device.type
    needs_launcher = (
        device_type == "cpu"
        and num_threads is None
        and environ.get("OMP_NUM_THREADS", "").strip() == "1"
        and any(name in environ for name in LAUNCHER_MARKERS)
    )
    choice = choose_cpu_threads(
        device_type=device_type,
        environ=environ,
        available_cores=_available_cores(),
        local_processes=_local_processes(environ, accelerator.num_processes),
        num_threads=num_threads,
        launcher_had_setting=launcher_had_thread_setting() if needs_launcher else None,
        current_threads=torch.get_num_threads(),
    )
    if choice.num_threads is None:
        return choice
    if choice.num_threads != torch.get_num_threads():
        torch.set_num_threads(choice.num_threads)
    if accelerator.is_main_process:
        logger.info("CPU threads: %d per process (%s).", choice.num_threads, choice.reason)
    return choice
