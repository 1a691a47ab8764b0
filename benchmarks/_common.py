"""Helpers shared by the benchmark scripts: arguments, interleaved timing, FLOP counting, the machine
description, JSON output, and bare ``nn.Module`` copies of the SR networks.

Timing rule: the variants compared in one ratio are timed *interleaved* (A, B, C, A, B, C, ...) and
summarised by their medians, so a load spike from other processes hits every variant alike and the
ratio stays meaningful on a shared machine even when the absolute times are not.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing hfmagic
    sys.path.insert(0, str(ROOT))

__all__ = [
    "BareEDSR",
    "BareMSRResNet",
    "BareSRCNN",
    "add_common_arguments",
    "bare_copy",
    "conv_roofline",
    "count_flops",
    "emit",
    "interleaved_medians",
    "machine_info",
    "setup",
]


# --------------------------------------------------------------------------- arguments


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes (seconds): checks that the script runs",
    )
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        default=None,
        metavar="PATH",
        help="write the results as JSON to PATH ('-' or no value: stdout)",
    )
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's choice)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed runs per variant (default 5, --quick 3)",
    )


def setup(args: argparse.Namespace) -> torch.device:
    """Apply --threads, check --device, default --repeats; returns the device."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: CUDA is not available on this machine.")
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.repeats < 1:
        raise SystemExit("--repeats must be >= 1.")
    return device


def log(message: str) -> None:
    """Progress goes to stderr so that ``--json -`` keeps stdout clean."""
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- timing


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_medians(
    fns: dict[str, Callable[[], Any]],
    repeats: int,
    device: torch.device,
    warmup: int = 1,
) -> dict[str, float]:
    """Median seconds per call of each function, calling them round-robin ``repeats`` times after
    ``warmup`` untimed rounds."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
        synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call as ``torch.utils.flop_counter`` counts them (convolutions and matmuls;
    a multiply-add is 2 FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def conv_roofline(size: int, device: torch.device, repeats: int, channels: int = 64) -> dict[str, float]:
    """GFLOP/s of one Conv2d ``channels``->``channels`` 3x3 on a (1, channels, size, size) map, in the
    contiguous and channels_last layouts (the best of both is the roofline of these networks)."""
    conv = nn.Conv2d(channels, channels, 3, padding=1).to(device)
    x = torch.rand(1, channels, size, size, device=device)
    flops = 2 * channels * channels * 9 * size * size
    conv_cl = nn.Conv2d(channels, channels, 3, padding=1).to(device).to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        times = interleaved_medians(
            {"contiguous": lambda: conv(x), "channels_last": lambda: conv_cl(x_cl)},
            repeats,
            device,
        )
    return {name: flops / t / 1e9 for name, t in times.items()}


# --------------------------------------------------------------------------- reporting


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "benchmarks", "hfmagic"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> dict[str, Any]:
    info = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git_commit(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if hasattr(os, "getloadavg"):
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        # "fp32" convolutions and matmuls on CUDA run in TF32 when these are on (cuDNN's default)
        info["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
        info["matmul_allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
    return info


def save_partial(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Write the JSON measured so far (marked ``"partial": true``) to ``--json PATH``, so that a run
    killed by a time limit still leaves what it measured; :func:`emit` overwrites it at the end."""
    if args.json in (None, "-"):
        return
    Path(args.json).write_text(json.dumps({**results, "partial": True}, indent=2, default=float) + "\n")


def emit(args: argparse.Namespace, results: dict[str, Any], table: list[str]) -> None:
    """Print the human-readable table (stderr when the JSON goes to stdout) and write the JSON."""
    stream = sys.stderr if args.json == "-" else sys.stdout
    print("\n".join(table), file=stream, flush=True)
    if args.json is None:
        return
    text = json.dumps(results, indent=2, default=float)
    if args.json == "-":
        print(text, flush=True)
    else:
        Path(args.json).write_text(text + "\n")


# --------------------------------------------------------------------------- bare networks
# Plain nn.Module copies of hfmagic's SR networks: the same layers, state-dict keys and forward,
# without transformers' PreTrainedModel, input checks or output dataclass. They measure what the
# wrapper costs (inference and training) with identical weights.


class _BareResBlock(nn.Module):
    def __init__(self, mid: int, res_scale: float = 1.0):
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(mid, mid, 3, 1, 1)
        self.conv2 = nn.Conv2d(mid, mid, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.conv2(self.relu(self.conv1(x)))
        return x + (out * self.res_scale if self.res_scale != 1.0 else out)


class _BareShuffle(nn.Module):
    def __init__(self, channels: int, factor: int):
        super().__init__()
        self.factor = factor
        self.upsample_conv = nn.Conv2d(channels, channels * factor * factor, 3, 1, 1)

    def forward(self, x):
        return F.pixel_shuffle(self.upsample_conv(x), self.factor)


class BareSRCNN(nn.Module):
    def __init__(self, config):
        super().__init__()
        c, k = config.channels, config.kernel_sizes
        self.scale = config.upscale_factor
        self.conv1 = nn.Conv2d(c[0], c[1], k[0], padding=k[0] // 2)
        self.conv2 = nn.Conv2d(c[1], c[2], k[1], padding=k[1] // 2)
        self.conv3 = nn.Conv2d(c[2], c[3], k[2], padding=k[2] // 2)

    def forward(self, x):
        x = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return self.conv3(F.relu(self.conv2(F.relu(self.conv1(x), inplace=True)), inplace=True))  # as SRCNN


class BareMSRResNet(nn.Module):
    def __init__(self, config):
        super().__init__()
        mid, self.scale = config.mid_channels, config.upscale_factor
        self.upsample_lrelu = getattr(config, "upsample_lrelu", False)
        self.conv_first = nn.Conv2d(config.in_channels, mid, 3, 1, 1)
        self.trunk_net = nn.Sequential(*(_BareResBlock(mid) for _ in range(config.num_blocks)))
        if self.scale in (2, 3):
            self.upsample1 = _BareShuffle(mid, self.scale)
        else:
            self.upsample1, self.upsample2 = _BareShuffle(mid, 2), _BareShuffle(mid, 2)
        self.conv_hr = nn.Conv2d(mid, mid, 3, 1, 1)
        self.conv_last = nn.Conv2d(mid, config.out_channels, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x):
        feat = self.trunk_net(self.lrelu(self.conv_first(x)))
        for stage in [self.upsample1] + ([self.upsample2] if self.scale == 4 else []):
            feat = stage(feat)
            if self.upsample_lrelu:
                feat = self.lrelu(feat)
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        return out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)


class BareEDSR(nn.Module):
    def __init__(self, config):
        super().__init__()
        mid, scale = config.mid_channels, config.upscale_factor
        self.register_buffer("mean", torch.tensor(config.rgb_mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.rgb_std).view(1, -1, 1, 1), persistent=False)
        self.conv_first = nn.Conv2d(config.in_channels, mid, 3, 1, 1)
        self.body = nn.Sequential(*(_BareResBlock(mid, config.res_scale) for _ in range(config.num_blocks)))
        self.conv_after_body = nn.Conv2d(mid, mid, 3, 1, 1)
        factors = [2] * (scale.bit_length() - 1) if scale & (scale - 1) == 0 else [scale]
        self.upsample = nn.Sequential(*(_BareShuffle(mid, f) for f in factors))
        self.conv_last = nn.Conv2d(mid, config.out_channels, 3, 1, 1)

    def forward(self, x):
        x = self.conv_first((x - self.mean) / self.std)
        res = self.conv_after_body(self.body(x)) + x
        return self.conv_last(self.upsample(res)) * self.std + self.mean


def bare_copy(model: nn.Module) -> nn.Module:
    """A bare ``nn.Module`` twin of an hfmagic SR model with the same weights, device and dtype."""
    bare_cls = {"SRCNN": BareSRCNN, "MSRResNet": BareMSRResNet, "EDSR": BareEDSR}.get(type(model).__name__)
    if bare_cls is None:
        raise ValueError(f"No bare copy for {type(model).__name__}; known: SRCNN, MSRResNet, EDSR.")
    bare = bare_cls(model.config)
    bare.load_state_dict(model.state_dict())
    param = next(model.parameters())
    return bare.to(device=param.device, dtype=param.dtype).train(model.training)
