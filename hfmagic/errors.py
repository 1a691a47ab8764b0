"""User mistakes end in one line, not a traceback: the shared handling of the ``hfmagic`` commands and
the example scripts.

A mistake (a wrong flag, a missing file, data or a model that does not fit, a Hub id offline) raises
one of ``USER_ERRORS`` with a message that says what is wrong and what to do; :func:`report_errors`
prints it as ``<prog>: error: <message>`` and exits with 1. Anything else is a bug and keeps its
traceback, and so does everything with ``--debug`` or ``HFMAGIC_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

DEBUG_ENV = "HFMAGIC_DEBUG"
# ValueError: bad values (flags, configs, data); OSError: missing/unreadable files and everything the
# Hub and datasets raise for an unknown id or an offline machine (FileNotFoundError, ConnectionError,
# huggingface_hub's LocalEntryNotFoundError and HfHubHTTPError, datasets' DatasetNotFoundError).
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)
# Files that hold weights but no config: what `hfmagic convert` takes.
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".safetensors", ".pkl", ".tar")

_debug = False


def set_debug(enabled: bool) -> None:
    """Show tracebacks of user errors too (``--debug``)."""
    global _debug
    _debug = bool(enabled)


def debug_enabled() -> bool:
    """``--debug`` was given or ``HFMAGIC_DEBUG`` is set to anything but ``""``/``0``."""
    return _debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def error_message(err: BaseException) -> str:
    """The message of ``err`` without the tracebacks some layers put into it: a DataLoader worker's
    error ("Caught ValueError in DataLoader worker process 0. Original Traceback ...") becomes the
    worker's own last line."""
    text = str(err).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        prefix = f"{type(err).__name__}: "
        text = last[len(prefix):] if last.startswith(prefix) else last
    if "OfflineModeIsEnabled" in text or (isinstance(err, ConnectionError) and "Hub" in text and "local" not in text):
        text += "; the Hub cannot be reached from here: pass a local folder or file instead, or connect and retry"
    return text or type(err).__name__


@contextmanager
def report_errors(prog: str, errors: tuple[type[BaseException], ...] = USER_ERRORS) -> Iterator[None]:
    """Turn ``errors`` raised in the block into ``<prog>: error: <message>`` on stderr and
    ``SystemExit(1)``; with :func:`debug_enabled` they propagate with their traceback."""
    try:
        yield
    except errors as err:
        if debug_enabled():
            raise
        print(f"{prog}: error: {error_message(err)}", file=sys.stderr)
        raise SystemExit(1) from None


def check_model_source(model_id_or_path: str | os.PathLike, flag: str | None = None) -> None:
    """Refuse, with the fix, a local path that cannot be a ``from_pretrained`` model: an MMagic/BasicSR
    checkpoint file (convert it first), another file, or a folder without ``config.json``. Hub ids
    and missing paths are left to ``from_pretrained``."""
    path = Path(model_id_or_path)
    name = f"{flag} {path}" if flag else str(path)
    if path.is_file():
        if path.suffix.lower() in CHECKPOINT_SUFFIXES:
            raise ValueError(
                f"{name} is a checkpoint file, not a model folder: convert it first with "
                f"`hfmagic convert {path} {path.stem}/` and pass that folder."
            )
        raise ValueError(f"{name} is a file; give a model folder (config.json + weights) or a Hub id (org/name).")
    if path.is_dir() and not (path / "config.json").is_file():
        checkpoints = sorted(p.name for p in path.iterdir() if p.suffix.lower() in CHECKPOINT_SUFFIXES)
        hint = (
            f"for an MMagic/BasicSR checkpoint, convert it first: `hfmagic convert {path / checkpoints[0]} out/`"
            if checkpoints and not (path / "model.safetensors").exists()
            else "give the folder that model.save_pretrained() or `hfmagic convert` wrote"
        )
        raise ValueError(f"{name} has no config.json, so it is not a saved model folder; {hint}.")


def short_usage_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Make ``parser.error`` print the message and a pointer to ``--help`` (two lines, exit code 2)
    instead of argparse's full usage first (38 lines for examples/train_sr.py, burying the message)."""

    def error(message: str) -> NoReturn:
        parser.exit(2, f"{parser.prog}: error: {message}\n(`{parser.prog} --help` lists the flags)\n")

    parser.error = error  # type: ignore[method-assign]
    return parser
