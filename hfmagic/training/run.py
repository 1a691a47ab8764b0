"""Run management shared by the SR and GAN loops: the output folder, the Hub repo created before
training, ``best/`` and ``final/`` written atomically, learning rates asked for on resume, and the
final push. The loops call these in the same order (diffusers' ``train_unconditional.py`` order):
``start_run`` -> ``create_hub_repo`` -> ... ``restore_learning_rates`` after ``load_state`` ...
``save_best`` during the loop -> ``save_final`` -> ``push_final``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .checkpointing import recover_folder, write_folder_atomically
from .schedulers import set_base_learning_rate

__all__ = [
    "BEST_DIR",
    "FINAL_DIR",
    "create_hub_repo",
    "init_trackers",
    "log_images",
    "push_final",
    "read_best",
    "resolve_report_to",
    "restore_learning_rates",
    "save_best",
    "save_final",
    "start_run",
]

logger = logging.getLogger(__name__)

BEST_DIR, FINAL_DIR = "best", "final"
BEST_SUMMARY = "best_step.json"


def resolve_report_to(report_to: str | None) -> str | None:
    """The tracker a run logs to ``logs/`` with, checked before training starts.

    ``None``, ``"none"`` or ``""``: no tracker. ``"auto"``: ``"tensorboard"`` when the
    ``tensorboard`` package is installed, else no tracker, with a warning saying how to get
    ``logs/`` (hfmagic does not depend on tensorboard: it is the ``dev`` extra or
    ``pip install tensorboard``). A tracker named explicitly must be installed: accelerate would
    otherwise drop it without a word and write no logs. ``"trackio"`` logs locally (a SQLite file
    per project in ``TRACKIO_DIR``, default ``$HF_HOME/trackio``): ``pip install trackio``.
    """
    if report_to in (None, "", "none"):
        return None
    from accelerate.tracking import get_available_trackers
    from accelerate.utils import LoggerType

    available = {str(getattr(t, "value", t)) for t in get_available_trackers()}
    if report_to == "auto":
        if "tensorboard" in available:
            return "tensorboard"
        logger.warning(
            "report_to='auto': tensorboard is not installed, so the run writes no logs/ (the loss and learning "
            "rate are still printed). pip install tensorboard to get them, or pass report_to='none' to silence this."
        )
        return None
    known = {t.value for t in LoggerType}
    if report_to in known and report_to != "all" and report_to not in available:
        raise ValueError(
            f"report_to={report_to!r}, but the {report_to} package is not installed (accelerate would silently log "
            f"nothing): pip install {report_to.replace('_', '-')}, or pass 'auto' (tensorboard when installed) or 'none'."
        )
    return report_to


def init_trackers(accelerator, project_name: str, config: Mapping) -> None:
    """``accelerator.init_trackers`` (main process) with hfmagic's tracker settings: trackio never
    embeds a dashboard in a notebook (no local server is started, nothing is shared); it logs to its
    local folder only, unless the user's own ``TRACKIO_SPACE_ID`` / ``TRACKIO_SERVER_URL`` say otherwise."""
    accelerator.init_trackers(project_name, config=dict(config), init_kwargs={"trackio": {"embed": False}})


def log_images(accelerator, images: Mapping[str, Image.Image], step: int, caption: str | None = None) -> None:
    """Log PIL images (RGB) to the run's trackers that take images: tensorboard, wandb and trackio
    (``trackio.Image``, a PNG under ``TRACKIO_DIR/media``); the others are skipped. Main process."""
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            arrays = {key: np.asarray(image.convert("RGB"))[None] for key, image in images.items()}
            tracker.log_images(arrays, step=step, dataformats="NHWC")
        elif tracker.name == "wandb":
            tracker.log_images({key: [image] for key, image in images.items()}, step=step)
        elif tracker.name == "trackio":
            import trackio

            tracker.log({key: trackio.Image(image.convert("RGB"), caption=caption) for key, image in images.items()}, step=step)


def start_run(accelerator, output_dir: str | os.PathLike, training_args: Mapping | None = None) -> Path:
    """Create ``output_dir`` (main process), write ``training_args.json`` when given, and finish a
    swap of ``best/`` or ``final/`` that a kill interrupted. Returns the folder as a ``Path``."""
    output_dir = Path(output_dir)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        if training_args is not None:
            (output_dir / "training_args.json").write_text(json.dumps(dict(training_args), indent=2))
        for name in (BEST_DIR, FINAL_DIR):  # a kill while one of them was being replaced
            recover_folder(output_dir / name)
    return output_dir


def create_hub_repo(accelerator, repo_id: str, token: str | None = None, private: bool | None = None) -> str:
    """Create the Hub repo now (main process), as diffusers does, so that a bad token, repo id or
    network fails before hours of training; returns the full repo id (``user/name``)."""
    if not accelerator.is_main_process:
        return repo_id
    from huggingface_hub import HfApi

    from ..hub import explain_network_errors

    with explain_network_errors(f"create the Hub repo {repo_id!r}", "Check the network or HF_ENDPOINT, or drop --push_to_hub."):
        return HfApi(token=token).create_repo(repo_id, exist_ok=True, private=private).repo_id


def save_best(output_dir: Path, write_model: Callable[[Path], None], summary: Mapping) -> Path:
    """Replace ``output_dir/best`` atomically (a kill never loses the old best) with what
    ``write_model(folder)`` saves plus ``best_step.json`` holding ``summary`` (its ``step`` and scores)."""

    def write(folder: Path) -> None:
        write_model(folder)
        (folder / BEST_SUMMARY).write_text(json.dumps(dict(summary), indent=2))

    return write_folder_atomically(output_dir / BEST_DIR, write)


def read_best(output_dir: Path) -> dict | None:
    """``best/best_step.json`` of a run, or None when it has no best yet."""
    path = Path(output_dir) / BEST_DIR / BEST_SUMMARY
    return json.loads(path.read_text()) if path.is_file() else None


def save_final(output_dir: Path, write_model: Callable[[Path], None]) -> Path:
    """Replace ``output_dir/final`` atomically with what ``write_model(folder)`` saves."""
    return write_folder_atomically(Path(output_dir) / FINAL_DIR, write_model)


def push_final(final_dir: Path, repo_id: str, token: str | None, private: bool | None, commit_message: str) -> str:
    """Upload ``final_dir`` to ``repo_id``; a network error says how to upload it later."""
    from ..hub import explain_network_errors, push_folder_to_hub

    later = f"The model is saved in {final_dir}; upload it later with hfmagic.hub.push_folder_to_hub({str(final_dir)!r}, {repo_id!r})."
    with explain_network_errors(f"push {final_dir} to {repo_id!r}", later):
        url = push_folder_to_hub(final_dir, repo_id, private=private, token=token, commit_message=commit_message)
    logger.info("Pushed %s to %s", final_dir, url)
    return url


def _rates(rates: list[float]) -> str:
    return f"{rates[0]:g}" if len(rates) == 1 else str(rates)


def restore_learning_rates(
    optimizers: Mapping[str, torch.optim.Optimizer],
    requested: Mapping[str, list[float]],
    step: int,
    schedulers: Mapping[str, object] | None = None,
    foreign_schedulers: bool = False,
    main_process: bool = True,
) -> None:
    """After ``accelerator.load_state``: the learning rates asked for now win over the checkpoint's
    (a diverged run is resumed with lower ones); Adam's moments and the step stay the checkpoint's.

    Args:
        optimizers: the run's optimizers by name.
        requested: each optimizer's per-group rates as built for this run (read before loading).
        step: the step resumed at (for the log line).
        schedulers: the run's own LR schedulers by optimizer name: the new rate becomes the
            schedule's peak at the same position (``set_base_learning_rate``).
        foreign_schedulers: schedulers the loop does not know were registered with accelerate;
            they own the rates, which are then left to them (with a warning).
        main_process: log (on one process only).
    """
    schedulers = schedulers or {}
    for name, optimizer in optimizers.items():
        scheduler = schedulers.get(name)
        saved = list(scheduler.base_lrs) if scheduler is not None else [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]
        wanted = list(requested[name])
        if all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(saved, wanted)):
            continue
        what = f"{name} learning rate {_rates(wanted)}"
        if foreign_schedulers and scheduler is None:
            if main_process:
                logger.warning(
                    "%s differs from the checkpoint's %s, but an LR scheduler is registered and keeps the checkpoint's "
                    "rates.", what, _rates(saved),
                )
            continue
        if scheduler is not None:
            set_base_learning_rate(scheduler, wanted[0])
        else:
            for group, lr in zip(optimizer.param_groups, wanted):
                group["lr"] = lr
        if main_process:
            logger.warning(
                "%s replaces the checkpoint's %s from step %d%s.", what, _rates(saved), step,
                " (same schedule, new peak)" if scheduler is not None else "",
            )
