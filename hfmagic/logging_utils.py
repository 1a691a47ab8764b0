"""Logs that stay readable off a terminal (CI, ``nohup``, a cluster job).

- :func:`progress_bar`: tqdm on a terminal; elsewhere a :class:`LogProgress` that logs one line
  every ``HFMAGIC_PROGRESS_SECONDS`` (default 30) seconds or every ``HFMAGIC_PROGRESS_STEPS``
  steps, instead of a redraw per step (~110 bytes a step: ~180 MB for a 1M-step run).
- :func:`progress_callback`: send every hfmagic progress bar of a block to a function instead
  (the demo's page shows the tiles of an upscale so).
- :func:`setup_logging`: the one log format of the scripts and the quieting of library output
  that tells the user nothing (transformers' "Loading weights" / "Writing model shards" bars,
  datasets' and the Hub's bars off a terminal).
- :func:`quiet_loggers`: raise loggers (e.g. accelerate's per-file checkpoint lines) for a block.
- :func:`format_metrics`: ``{"Set5": {"psnr": 30.123456789, ...}}`` -> ``"Set5: PSNR 30.1235 ..."``.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any, TextIO

LOG_FORMAT = "%(asctime)s - %(levelname)s - %(name)s - %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
PROGRESS_SECONDS_ENV = "HFMAGIC_PROGRESS_SECONDS"
PROGRESS_STEPS_ENV = "HFMAGIC_PROGRESS_STEPS"
DEFAULT_PROGRESS_SECONDS = 30.0

progress_logger = logging.getLogger("hfmagic.progress")
# (done, total or None, desc) -> None; set by progress_callback for the current thread / task only
_progress_callback: ContextVar[Callable[[int, int | None, str], None] | None] = ContextVar(
    "hfmagic_progress_callback", default=None
)


def is_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default ``sys.stderr``) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _env_number(name: str, default: float | None) -> float | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number: give seconds/steps, e.g. {name}=30 (0 turns it off).") from None
    if number < 0:
        raise ValueError(f"{name}={value!r} must be >= 0 (0 turns it off).")
    return number or None


class LogProgress:
    """A progress "bar" for logs: one line every ``every_seconds`` seconds or ``every_steps`` steps.

    It has the part of tqdm's API the loops use (``update``, ``set_postfix``, ``close``, iteration,
    ``with``), so it replaces a tqdm bar off a terminal. Lines look like
    ``Steps 41/60 (68%), 13.1 it/s, elapsed 0:00:04, left 0:00:01, loss=0.2225 lr=4.56e-05``.

    Args:
        iterable: items to yield (counted one step each), or None to call ``update`` yourself.
        total: number of steps (``len(iterable)`` when None); None: no percentage nor time left.
        desc: the line's first word(s).
        initial: steps already done (a resumed run); rates count from here.
        unit: what a step is (``it``, ``image``...).
        every_seconds: at most one line per this many seconds (None: no time rule).
        every_steps: also a line whenever the count crosses a multiple of this (None: no step rule).
        leave: log a last line on ``close`` (unless the last update was just logged); False for
            inner bars (tiles of one image), which then only log when they take long.
        logger: where lines go; with no handler anywhere (logging not set up) they are written to
            ``sys.stderr`` with a timestamp instead, so a library user still sees progress.
        clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(
        self,
        iterable: Iterable | None = None,
        total: int | None = None,
        desc: str | None = None,
        initial: int = 0,
        unit: str = "it",
        every_seconds: float | None = DEFAULT_PROGRESS_SECONDS,
        every_steps: int | None = None,
        leave: bool = True,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if every_seconds is not None and every_seconds <= 0:
            raise ValueError(f"every_seconds={every_seconds} must be > 0 (None: no time rule).")
        if every_steps is not None and every_steps < 1:
            raise ValueError(f"every_steps={every_steps} must be >= 1 (None: no step rule).")
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc or "", unit
        self.n = self.initial = self._logged_n = initial
        self.every_seconds, self.every_steps, self.leave = every_seconds, every_steps, leave
        self.logger, self.clock = logger or progress_logger, clock
        self.start = self._last_time = clock()
        self.postfix: dict[str, Any] = {}
        self.closed = False

    # -- tqdm's API
    def update(self, n: int = 1) -> None:
        """Count ``n`` more steps; log a line when one is due."""
        before, self.n = self.n, self.n + n
        now = self.clock()
        due_time = self.every_seconds is not None and now - self._last_time >= self.every_seconds
        due_steps = self.every_steps is not None and self.n // self.every_steps > before // self.every_steps
        if due_time or due_steps:
            self._log(now)

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs: Any) -> None:
        """Values shown at the end of the next line (``refresh`` is ignored: lines follow the clock)."""
        self.postfix = {**(ordered_dict or {}), **kwargs}

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def close(self) -> None:
        """Log the last line (``leave``) unless it was just logged; idempotent."""
        if self.closed:
            return
        self.closed = True
        if self.leave and self.n != self._logged_n:
            self._log(self.clock())

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("LogProgress was built without an iterable: call update() instead.")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the line
    def format_line(self, now: float) -> str:
        elapsed = max(now - self.start, 0.0)
        done = self.n - self.initial
        parts = [f"{self.desc} {self.n}/{self.total}" if self.total else f"{self.desc} {self.n}"]
        if self.total:
            parts[0] += f" ({100 * self.n / self.total:.0f}%)"
        rate = done / elapsed if elapsed > 0 and done > 0 else None
        if rate is not None:
            parts.append(f"{rate:.3g} {self.unit}/s" if rate >= 1 else f"{1 / rate:.3g} s/{self.unit}")
        parts.append(f"elapsed {_duration(elapsed)}")
        if rate is not None and self.total and self.n < self.total:
            parts.append(f"left {_duration((self.total - self.n) / rate)}")
        line = ", ".join(parts).strip()
        if self.postfix:
            line += ", " + " ".join(f"{key}={value}" for key, value in self.postfix.items())
        return line

    def _log(self, now: float) -> None:
        self._last_time, self._logged_n = now, self.n
        line = self.format_line(now)
        if self.logger.hasHandlers():
            self.logger.info(line)
        else:  # logging is not set up (a library user): the line still reaches the user, timestamped
            print(f"{time.strftime(DATE_FORMAT)} - {line}", file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    return str(timedelta(seconds=int(seconds))) if math.isfinite(seconds) else "?"


def progress_bar(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    initial: int = 0,
    unit: str = "it",
    disable: bool = False,
    leave: bool = True,
    every_seconds: float | None = None,
    every_steps: int | None = None,
    file: TextIO | None = None,
    logger: logging.Logger | None = None,
):
    """tqdm on a terminal, a :class:`LogProgress` elsewhere (both: ``update``, ``set_postfix``, ``close``).

    Off a terminal, ``every_seconds`` / ``every_steps`` default to the environment variables
    ``HFMAGIC_PROGRESS_SECONDS`` (30; 0: no time rule) and ``HFMAGIC_PROGRESS_STEPS`` (unset: none).
    ``file``: the stream tqdm would draw on (default ``sys.stderr``), whose TTY-ness decides.
    """
    from tqdm.auto import tqdm

    callback = _progress_callback.get()
    if callback is not None and not disable:
        return CallbackProgress(iterable, callback, total=total, desc=desc, initial=initial, unit=unit, leave=leave)
    if disable or is_terminal(file):
        return tqdm(iterable, total=total, desc=desc, initial=initial, unit=unit, disable=disable, leave=leave, file=file)
    if every_seconds is None:
        every_seconds = _env_number(PROGRESS_SECONDS_ENV, DEFAULT_PROGRESS_SECONDS)
    if every_steps is None:
        steps = _env_number(PROGRESS_STEPS_ENV, None)
        every_steps = int(steps) if steps else None
    return LogProgress(
        iterable, total=total, desc=desc, initial=initial, unit=unit, every_seconds=every_seconds,
        every_steps=every_steps, leave=leave, logger=logger,
    )


class CallbackProgress(LogProgress):
    """A progress "bar" that calls ``callback(done, total, desc)`` on every update (and once when
    built) instead of drawing or logging; what :func:`progress_bar` returns inside
    :func:`progress_callback`."""

    def __init__(self, iterable: Iterable | None, callback: Callable[[int, int | None, str], None], **kwargs: Any):
        super().__init__(iterable, every_seconds=None, **kwargs)
        self.callback = callback
        callback(self.n, self.total, self.desc)

    def update(self, n: int = 1) -> None:
        self.n += n
        self.callback(self.n, self.total, self.desc)

    def _log(self, now: float) -> None:  # nothing to log: the callback has seen every step
        self._logged_n = self.n


def has_progress_callback() -> bool:
    """Whether a :func:`progress_callback` is active here (code with bars of its own, such as the
    diffusers pipelines' tqdm, then uses :func:`progress_bar` so that the callback sees them)."""
    return _progress_callback.get() is not None


@contextmanager
def progress_callback(callback: Callable[[int, int | None, str], None]) -> Iterator[None]:
    """Inside the block, every enabled hfmagic progress bar (the pipelines' tiles, GAN sampling)
    calls ``callback(done, total, desc)`` when it advances instead of drawing; ``total`` may be
    None. Context-local: other threads and asyncio tasks keep their bars.

    ```python
    >>> with progress_callback(lambda done, total, desc: print(f"{desc} {done}/{total}")):
    ...     pipe(image, tile_size=64, progress=True)
    ```
    """
    token = _progress_callback.set(callback)
    try:
        yield
    finally:
        _progress_callback.reset(token)


@contextmanager
def quiet_loggers(*names: str, level: int = logging.WARNING) -> Iterator[None]:
    """Raise the named loggers to at least ``level`` for the block, then restore them.

    E.g. accelerate's 4-8 INFO lines per checkpoint, which name the hidden ``.checkpoint-N.tmp``.
    """
    loggers = [logging.getLogger(name) for name in names]
    previous = [log.level for log in loggers]
    for log in loggers:
        if log.getEffectiveLevel() < level:
            log.setLevel(level)
    try:
        yield
    finally:
        for log, old in zip(loggers, previous):
            log.setLevel(old)


@contextmanager
def log_to_stderr(name: str, prefix: str = "", level: int = logging.INFO) -> Iterator[None]:
    """Show logger ``name``'s records of at least ``level`` on stderr for the block (a command's notes,
    e.g. what ``hfmagic convert`` skipped), each line prefixed; the logger is restored after."""
    log = logging.getLogger(name)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{prefix}%(message)s"))
    previous = log.level
    log.addHandler(handler)
    log.setLevel(level)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(previous)


class MainProcessLogger(logging.LoggerAdapter):
    """A logger that logs on the main process only, like ``accelerate.logging.get_logger``, without its
    ``[RANK 0]`` prefix (the lines then look like every other hfmagic line)."""

    def __init__(self, logger: logging.Logger, is_main_process: bool):
        super().__init__(logger, {})
        self.is_main_process = is_main_process

    def isEnabledFor(self, level: int) -> bool:
        return self.is_main_process and self.logger.isEnabledFor(level)


# accelerate's loggers that report each file of save_state / load_state
ACCELERATE_CHECKPOINT_LOGGERS = ("accelerate.checkpointing", "accelerate.accelerator")


def quiet_library_output(stream: TextIO | None = None) -> None:
    """Turn off library output that tells the user nothing, for a script or the CLI.

    transformers' own bars ("Loading weights", "Writing model shards": a few MB models load in
    milliseconds) always; off a terminal also the Hub's and datasets' bars (they redraw per chunk
    into the log). ``HF_HUB_DISABLE_PROGRESS_BARS`` / ``HF_DATASETS_DISABLE_PROGRESS_BARS`` still apply.
    """
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from transformers.utils import logging as transformers_logging

    hub_was_on = not are_progress_bars_disabled()
    terminal = is_terminal(stream)
    with warnings.catch_warnings():  # HF_HUB_DISABLE_PROGRESS_BARS set by the user wins, without a warning
        warnings.simplefilter("ignore")
        transformers_logging.disable_progress_bar()  # also turns off the Hub's bars
        if hub_was_on and terminal:
            enable_progress_bars()  # downloads keep their bar on a terminal
        elif not terminal:
            disable_progress_bars()
    if not terminal:
        if "datasets" in sys.modules:
            import datasets

            datasets.disable_progress_bars()
        else:  # read when datasets is imported; cheaper than importing it here
            os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")


def setup_logging(main_process: bool = True, level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """The scripts' logging: one format (``2026-01-31 12:00:00 - INFO - name - message``), INFO on the
    main process and errors only on the others, library noise off (:func:`quiet_library_output`).

    Like ``logging.basicConfig``, it leaves an already configured root logger's handlers alone.
    """
    logging.basicConfig(format=LOG_FORMAT, datefmt=DATE_FORMAT, level=level)
    if not main_process:
        logging.getLogger().setLevel(logging.ERROR)
    quiet_library_output(stream)


def format_number(value: float, decimals: int | None = None) -> str:
    """``decimals`` places, or 4 significant digits when None (losses: 0.0001234 -> ``0.0001234``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or (float(value).is_integer() and decimals is None and abs(value) < 1e15):
        return str(int(value))
    if decimals is not None:
        return f"{value:.{decimals}f}"
    return f"{value:.4g}"


# metric -> (label, decimals); others get 4 significant digits
_METRIC_STYLE = {
    "psnr": ("PSNR", 4), "ssim": ("SSIM", 4), "bicubic_psnr": ("bicubic PSNR", 4), "bicubic_ssim": ("bicubic SSIM", 4),
    "ms_ssim": ("MS-SSIM", 4), "num_images": ("images", 0),
}


def format_metrics(metrics: dict[str, Any]) -> str:
    """One readable line: ``{"Set5": {"psnr": 30.123456, "ssim": 0.87654321, "num_images": 5.0}}`` ->
    ``"Set5: PSNR 30.1235, SSIM 0.8765, images 5"``; a flat dict gives ``"PSNR 30.1235, ..."``;
    datasets are separated by ``"; "``. PSNR/SSIM to 4 decimals, other values to 4 significant digits."""

    def flat(values: dict[str, Any]) -> str:
        items = []
        for key, value in values.items():
            if isinstance(value, dict):
                items.append(f"{key} {{{flat(value)}}}")
                continue
            label, decimals = _METRIC_STYLE.get(key, (key, None))
            items.append(f"{label} {format_number(value, decimals) if decimals != 0 else format_number(int(round(value)))}")
        return ", ".join(items)

    if metrics and all(isinstance(v, dict) for v in metrics.values()):
        return "; ".join(f"{name}: {flat(values)}" for name, values in metrics.items())
    return flat(metrics)
