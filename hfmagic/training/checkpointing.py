"""Crash-safe training checkpoints on top of ``accelerator.save_state`` / ``load_state``.

A checkpoint is written to ``<output_dir>/.checkpoint-<step>.tmp`` by every rank, then the main
process renames it to ``checkpoint-<step>`` (an atomic rename on one file system). So a run killed
while saving never leaves a folder named ``checkpoint-*`` that resume would pick; stale ``.tmp``
folders are removed on the next save.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import torch

from ..logging_utils import ACCELERATE_CHECKPOINT_LOGGERS, quiet_loggers

__all__ = [
    "CHECKPOINT_STATE_FILE",
    "CheckpointableGenerator",
    "TrainingDivergedError",
    "check_finite",
    "list_checkpoints",
    "read_checkpoint_state",
    "resolve_resume_checkpoint",
    "save_checkpoint",
    "update_checkpoint_state",
    "recover_folder",
    "write_folder_atomically",
]

CHECKPOINT_STATE_FILE = "hfmagic_state.json"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
_ASIDE_RE = re.compile(r"^\.checkpoint-(\d+)\.aside$")  # see save_checkpoint


class TrainingDivergedError(RuntimeError):
    """Raised when a loss becomes NaN or infinite."""


def check_finite(losses: dict[str, torch.Tensor | float], step: int, last_checkpoint: str | None) -> None:
    """Stop the run with a clear message when any loss is NaN/inf.

    Args:
        losses: name -> scalar loss (tensor or float).
        step: the optimisation step the losses belong to.
        last_checkpoint: path of the last good checkpoint (or None), named in the message.
    """
    bad = {name: float(v) for name, v in losses.items() if not math.isfinite(float(v))}
    if bad:
        where = (
            f"The last good checkpoint is {last_checkpoint}; resume from it with "
            f"--resume_from_checkpoint {last_checkpoint} (e.g. with a lower --learning_rate)."
            if last_checkpoint
            else "No checkpoint was written yet; lower --learning_rate or set --checkpointing_steps."
        )
        raise TrainingDivergedError(f"Training diverged at step {step}: non-finite loss {bad}. {where}")


class CheckpointableGenerator:
    """A ``torch.Generator`` whose state is saved with ``accelerator.register_for_checkpointing``,
    so noise drawn from it continues exactly after a resume.

    Accelerate saves registered objects from the main process only: a generator that differs per
    rank (e.g. seeded with ``seed + process_index``) must gather every rank's state into what it
    saves, as ``hfmagic.training.gan`` does, or all ranks resume with rank 0's state."""

    def __init__(self, seed: int, device: str | torch.device = "cpu"):
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def state_dict(self) -> dict:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["state"])


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints ``checkpoint-<step>`` (with their state file) in ``output_dir``, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = {int(m.group(1)): p for p in root.iterdir() if (m := _CHECKPOINT_RE.match(p.name)) and (p / CHECKPOINT_STATE_FILE).is_file()}
    # a checkpoint moved aside to be replaced, when the run died before its replacement was renamed in
    for p in root.iterdir():
        m = _ASIDE_RE.match(p.name)
        if m and int(m.group(1)) not in found and (p / CHECKPOINT_STATE_FILE).is_file():
            found[int(m.group(1))] = p
    return [found[step] for step in sorted(found)]


def save_checkpoint(
    accelerator,
    output_dir: str | os.PathLike,
    step: int,
    total_limit: int | None = None,
    extra_state: dict | None = None,
    model: torch.nn.Module | None = None,
) -> Path:
    """Save the accelerator state atomically as ``output_dir/checkpoint-<step>``; call on EVERY rank.

    Args:
        accelerator: the run's ``accelerate.Accelerator``.
        output_dir: the run's output folder.
        step: global optimisation step (also recorded in ``hfmagic_state.json``).
        total_limit: keep at most this many checkpoints (oldest removed first).
        extra_state: JSON-serialisable values stored next to the state (e.g. the epoch).
        model: the first prepared model (unwrapped); its config is written as ``config.json``
            (``architectures`` naming its class) so that ``<Model>.from_pretrained(checkpoint)`` and
            the pipelines load its weights (``model.safetensors``), e.g. to look at a run in progress.
    Returns:
        The final checkpoint path.
    """
    root = Path(output_dir)
    final = root / f"checkpoint-{step}"
    tmp = root / f".checkpoint-{step}.tmp"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(".checkpoint-*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    # accelerate logs a line per file, naming the hidden .tmp folder: the loops say "Saved checkpoint-N"
    with quiet_loggers(*ACCELERATE_CHECKPOINT_LOGGERS):
        accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _write_state(tmp, {"step": step, **(extra_state or {})})
        config = getattr(model, "config", None)
        if config is not None and hasattr(config, "save_pretrained"):
            config = copy.deepcopy(config)
            config.architectures = [type(model).__name__]
            config.save_pretrained(tmp)
        _fsync_tree(tmp)  # the weights on disk before the name says "complete"
        aside = root / f".checkpoint-{step}.aside"
        if final.exists():
            # re-saving a step (a run resumed from an older checkpoint): move the old one aside first,
            # so that a crash in between leaves the old one, which list_checkpoints still finds
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(final, aside)
        os.replace(tmp, final)
        shutil.rmtree(aside, ignore_errors=True)
        _fsync_dir(root)
        if total_limit is not None and total_limit > 0:
            for old in list_checkpoints(root)[:-total_limit]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def _write_state(folder: Path, state: dict) -> None:
    """Write ``hfmagic_state.json`` atomically (temporary file, fsync, rename)."""
    tmp = folder / f".{CHECKPOINT_STATE_FILE}.tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(state, indent=2))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / CHECKPOINT_STATE_FILE)


def _fsync_tree(folder: Path) -> None:
    """fsync every file below ``folder``."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


def _siblings(folder: Path) -> tuple[Path, Path]:
    """The ``.<name>.tmp`` and ``.<name>.aside`` folders of :func:`write_folder_atomically`."""
    return folder.with_name(f".{folder.name}.tmp"), folder.with_name(f".{folder.name}.aside")


def _fsync_dir(folder: Path) -> None:
    """Make renames in ``folder`` durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def update_checkpoint_state(path: str | os.PathLike, **values) -> None:
    """Add or change values of a checkpoint's ``hfmagic_state.json`` (atomically; main process)."""
    folder = Path(path)
    _write_state(folder, {**read_checkpoint_state(folder), **values})


def resolve_resume_checkpoint(resume_from: str | None, output_dir: str | os.PathLike) -> Path | None:
    """Turn ``--resume_from_checkpoint`` (``latest``, a path, or a ``checkpoint-N`` name) into a path.

    ``latest`` with no checkpoint yet returns None (a fresh start). A named checkpoint that does
    not exist, or lacks its state file, raises ``FileNotFoundError`` listing what exists.
    """
    if not resume_from:
        return None
    if resume_from == "latest":
        found = list_checkpoints(output_dir)
        return found[-1] if found else None
    path = Path(resume_from)
    if not path.exists() and (Path(output_dir) / resume_from).exists():
        path = Path(output_dir) / resume_from
    if not path.is_dir() or not (path / CHECKPOINT_STATE_FILE).is_file():
        existing = [p.name for p in list_checkpoints(output_dir)]
        raise FileNotFoundError(
            f"Cannot resume from {resume_from!r}: not a complete hfmagic checkpoint folder. "
            f"Checkpoints in {output_dir}: {existing or 'none'}; use --resume_from_checkpoint latest."
        )
    return path


def read_checkpoint_state(path: str | os.PathLike) -> dict:
    """The ``hfmagic_state.json`` of a checkpoint (at least ``{"step": N}``)."""
    return json.loads((Path(path) / CHECKPOINT_STATE_FILE).read_text())


def recover_folder(folder: str | os.PathLike) -> None:
    """Finish what a kill left of :func:`write_folder_atomically`: put the old folder back from
    ``.<name>.aside`` when the new one never got its name, and remove a half-written ``.<name>.tmp``.
    The training loops call it on start for ``best/`` and ``final/``. Main process only."""
    folder = Path(folder)
    tmp, aside = _siblings(folder)
    if aside.exists():
        if folder.exists():  # the new folder is complete: the old one was about to be removed
            shutil.rmtree(aside)
        else:  # killed between the two renames: the old folder is the complete one
            os.replace(aside, folder)
    shutil.rmtree(tmp, ignore_errors=True)


def write_folder_atomically(folder: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Replace a model folder (``best/``, ``final/``) so that a kill at any moment leaves a complete one.

    ``write(tmp)`` fills the sibling ``.<name>.tmp``; its files are fsynced, then the old folder is
    renamed to ``.<name>.aside``, the new one into place, and the old one removed. A kill between
    those two renames leaves the old folder complete under ``.<name>.aside``, which
    :func:`recover_folder` (run first here, and when training starts) puts back. The folder is
    rewritten whole, its model card included. Main process only.
    """
    folder = Path(folder)
    tmp, aside = _siblings(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(folder)
    tmp.mkdir()
    try:
        write(tmp)
        _fsync_tree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if folder.exists():
        os.replace(folder, aside)
    os.replace(tmp, folder)
    shutil.rmtree(aside, ignore_errors=True)
    _fsync_dir(folder.parent)
    return folder
