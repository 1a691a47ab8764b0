"""Tiled vs whole-image x4 upscaling with ``SuperResolutionPipeline.upscale_array``: time and peak memory.

Every measurement runs in a fresh subprocess, so its peak resident memory (``ru_maxrss``: the Python
process with torch, the model, the input, the uint8 output and every intermediate tensor) is its own.
Default cases (MSRResNet x4, exact tiling: the overlap is the model's receptive field, 35 LR pixels):

- output 1000x750: whole image, and tiled with each ``--tile-sizes``;
- output 4000x3000: tiled with each ``--tile-sizes`` (and whole with ``--whole-large``: ~10 GB).

``--quick`` uses a 2-block, 16-channel model on 64x48 and 192x160 outputs.

``time_ratio`` compares seconds per output megapixel of a tiled run with the whole-image run at the
largest size where the whole image was run (1000x750 by default).

    python benchmarks/bench_tiling.py --quick --json out.json
    python benchmarks/bench_tiling.py --tile-sizes 256 512 --whole-large
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from _common import add_common_arguments, emit, log, machine_info, setup


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--model", choices=("msrresnet", "edsr", "srcnn"), default="msrresnet")
    parser.add_argument("--tile-sizes", nargs="+", type=int, default=None, help="LR tile cores (default 128 256 512; --quick 16)")
    parser.add_argument("--whole-large", action="store_true", help="also run the large output whole (needs ~10 GB)")
    parser.add_argument("--memory-limit-gb", type=float, default=4.0, help="the peak memory target for tiled runs")
    parser.add_argument("--worker", nargs=3, type=int, metavar=("H", "W", "TILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.tile_sizes = args.tile_sizes or ([16] if args.quick else [128, 256, 512])
    return args


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def worker(args) -> None:
    """One measurement (in its own process): prints a JSON line."""
    import numpy as np
    import torch

    from bench_inference import build_model
    from hfmagic import SuperResolutionPipeline

    height, width, tile = args.worker
    device = setup(args)
    pipe = SuperResolutionPipeline(build_model(args.model, 4, tiny=args.quick), device=device)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    image = (127 + 60 * np.sin(yy[..., None] / 7 + xx[..., None] / 11 + np.arange(3)) + rng.normal(0, 20, (height, width, 3)))
    image = np.clip(image, 0, 255).astype(np.uint8)
    base_mb = _peak_rss_mb()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        out = pipe.upscale_array(image, tile_size=tile or None)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
        del out
    result = {"seconds": sorted(times)[len(times) // 2], "peak_rss_mb": _peak_rss_mb(), "baseline_rss_mb": base_mb}
    if device.type == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    print(json.dumps(result))


def run_case(args, height: int, width: int, tile: int | None, repeats: int) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--worker", str(height), str(width), str(tile or 0),
               "--model", args.model, "--device", args.device, "--repeats", str(repeats)] + (["--quick"] if args.quick else [])
    if args.threads:
        command += ["--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        return {"error": f"exit {done.returncode}: {' | '.join(tail)}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return {}
    device = setup(args)
    small, large = ((12, 16), (40, 48)) if args.quick else ((188, 250), (750, 1000))  # LR (H, W) of 1000x750 / 4000x3000 at x4
    cases = [(small, None)] + [(small, t) for t in args.tile_sizes]
    if args.whole_large:
        cases.append((large, None))
    cases += [(large, t) for t in args.tile_sizes]
    results = []
    for (h, w), tile in cases:
        label = f"{w * 4}x{h * 4} " + (f"tile {tile}" if tile else "whole")
        log(f"{label} ...")
        repeats = args.repeats if (h, w) == small else 1  # one run of the large image is several seconds
        row = {"output_wh": [w * 4, h * 4], "lr_hw": [h, w], "tile_size": tile, **run_case(args, h, w, tile, repeats)}
        if "seconds" in row:
            row["seconds_per_megapixel"] = row["seconds"] / (w * h * 16 / 1e6)
        results.append(row)
    whole = [r for r in results if r["tile_size"] is None and "seconds" in r]
    reference = max(whole, key=lambda r: r["output_wh"][0] * r["output_wh"][1]) if whole else None
    for row in results:
        if reference and "seconds" in row:
            row["time_ratio"] = row["seconds_per_megapixel"] / reference["seconds_per_megapixel"]
        if "peak_rss_mb" in row:
            row["within_memory_limit"] = row["peak_rss_mb"] <= args.memory_limit_gb * 1024
    table = [f"{'output':>10} {'tile':>6} {'s':>8} {'s/Mpx':>7} {'ratio':>6} {'peak MB':>8}"]
    for r in results:
        if "error" in r:
            table.append(f"{'x'.join(map(str, r['output_wh'])):>10} {r['tile_size'] or 'whole':>6} error: {r['error']}")
            continue
        table.append(f"{'x'.join(map(str, r['output_wh'])):>10} {r['tile_size'] or 'whole':>6} {r['seconds']:8.2f} "
                     f"{r['seconds_per_megapixel']:7.2f} {r.get('time_ratio', float('nan')):6.2f} {r['peak_rss_mb']:8.0f}")
    report = {"benchmark": "tiling", "machine": machine_info(device),
              "settings": {"quick": args.quick, "model": args.model, "repeats": args.repeats, "memory_limit_gb": args.memory_limit_gb},
              "results": results}
    emit(args, report, table)
    return report


if __name__ == "__main__":
    main()
