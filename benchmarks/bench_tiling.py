"""Tiled vs whole-image x4 upscaling with ``SuperResolutionPipeline.upscale_array``: time and peak memory.

Every measurement runs in a fresh subprocess, so its peak resident memory (``ru_maxrss``: the Python
process with torch, the model, the input, the uint8 output and every intermediate tensor) is its own.
Default cases (MSRResNet x4, tiles with the exact context):

- output 1000x750: whole image, and tiled with each ``--tile-sizes`` smaller than the image;
- output 4000x3000: tiled with each ``--tile-sizes`` (and whole with ``--whole-large``: ~7 GB);

each tiled case with the pipeline's two methods (``--methods``): ``two_stage`` (the default for
MSRResNet/EDSR: ``forward_features`` on large regions, ``forward_head`` on the tiles) and
``single_stage`` (``split_tiling=False``: the whole network per tile, with the receptive field as
overlap). SRCNN has only the single stage. ``--quick`` uses a 2-block, 16-channel model on 64x48 and
192x160 outputs.

``time_ratio`` compares seconds per output megapixel of a tiled run with the whole-image run at the
largest size where the whole image was run (1000x750 by default); the script ends with the same
ratios measured interleaved in one process at 2000x1500 (whole, single-stage, two-stage).

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

from _common import add_common_arguments, emit, log, machine_info, save_partial, setup

METHODS = ("two_stage", "single_stage")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--model", choices=("msrresnet", "edsr", "srcnn"), default="msrresnet")
    parser.add_argument(
        "--tile-sizes",
        nargs="+",
        type=int,
        default=None,
        help="LR tile cores (default 128 256 512; --quick 16)",
    )
    parser.add_argument(
        "--whole-large",
        action="store_true",
        help="also run the large output whole (needs ~10 GB)",
    )
    parser.add_argument(
        "--memory-limit-gb",
        type=float,
        default=4.0,
        help="the peak memory target for tiled runs",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        default=list(METHODS),
        help="tiling methods to measure (default both)",
    )
    parser.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--same-run", nargs=3, type=int, metavar=("H", "W", "TILE"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--worker",
        nargs=3,
        type=int,
        metavar=("H", "W", "TILE"),
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--worker-method", choices=METHODS, default="two_stage", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.tile_sizes = args.tile_sizes or ([16] if args.quick else [128, 256, 512])
    if args.model == "srcnn":  # no forward_features / forward_head split
        args.methods = ["single_stage"]
    return args


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _area(region) -> int:
    y0, y1, x0, x1 = region
    return (y1 - y0) * (x1 - x0)


def _context_area(height: int, width: int, tile: int, halo: int) -> int:
    """LR pixels fed to the network when the pipeline's cores of ``tile`` get ``halo`` pixels of context."""
    from hfmagic.pipelines.tiling import _cores, _grow

    return sum(_area(_grow(core, halo, height, width)) for core in _cores(height, width, tile))


def _two_stage_areas(height: int, width: int, tile: int, region: int, feature_halo: int, head_halo: int) -> tuple[int, int]:
    """LR pixels that forward_features and forward_head see, cut as the pipeline cuts them."""
    from hfmagic.pipelines.tiling import _cores, _grow

    features = head = 0
    for y0, y1, x0, x1 in _cores(height, width, region):
        features += _area(_grow(_grow((y0, y1, x0, x1), head_halo, height, width), feature_halo, height, width))
        for ty0, ty1, tx0, tx1 in _cores(y1 - y0, x1 - x0, tile):
            head += _area(_grow((y0 + ty0, y0 + ty1, x0 + tx0, x0 + tx1), head_halo, height, width))
    return features, head


def work_ratio(pipe, height: int, width: int, tile: int | None, method: str) -> float:
    """Network work of a run relative to the whole image, from the tile geometry (load-independent):
    the LR area each stage sees over the image area, weighted by the stage's FLOP share."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from hfmagic.pipelines import feature_region_size

    if tile is None:
        return 1.0
    area = height * width
    if method == "single_stage" or pipe.split_receptive_fields is None:
        return _context_area(height, width, tile, pipe.receptive_field) / area
    model = pipe.model
    param = next(model.parameters())
    x = torch.rand(1, model.config.in_channels, 16, 16, device=param.device, dtype=param.dtype)
    with torch.inference_mode(), FlopCounterMode(display=False) as total:
        model(x)
    with torch.inference_mode(), FlopCounterMode(display=False) as features:
        model.forward_features(x)
    share = features.get_total_flops() / total.get_total_flops()
    region = feature_region_size(pipe.scale, tile, pipe.split_receptive_fields[0])
    features, head = _two_stage_areas(height, width, tile, region, *pipe.split_receptive_fields)
    return share * features / area + (1 - share) * head / area


def _pipeline(args, device, method: str):
    from bench_inference import build_model

    from hfmagic import SuperResolutionPipeline

    model = build_model(args.model, 4, tiny=args.quick)
    return SuperResolutionPipeline(model, device=device, split_tiling=method == "two_stage")


def same_run_worker(args) -> None:
    """Whole image, single-stage and two-stage tiling timed interleaved in one process (so the ratios
    do not depend on the machine's load drifting between processes): prints a JSON line."""
    import numpy as np
    from _common import interleaved_medians

    height, width, tile = args.same_run
    device = setup(args)
    pipe = _pipeline(args, device, "two_stage")
    single = _pipeline(args, device, "single_stage")
    single.model = pipe.model  # one model, two tiling methods
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    fns = {"whole": lambda: pipe.upscale_array(image), "single_stage": lambda: single.upscale_array(image, tile_size=tile)}
    if pipe.split_receptive_fields is not None:
        fns["two_stage"] = lambda: pipe.upscale_array(image, tile_size=tile)
    times = interleaved_medians(fns, args.repeats, device)
    result = {f"{k}_seconds": v for k, v in times.items()}
    result.update({f"{k}_time_ratio": v / times["whole"] for k, v in times.items() if k != "whole"})
    for method in fns.keys() - {"whole"}:
        result[f"{method}_work_ratio"] = work_ratio(pipe, height, width, tile, method)
    print(json.dumps(result))


def worker(args) -> None:
    """One measurement (in its own process): prints a JSON line."""
    import numpy as np
    import torch

    height, width, tile = args.worker
    tile = tile or None
    method = args.worker_method
    device = setup(args)
    pipe = _pipeline(args, device, method)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    image = (
        127 + 60 * np.sin(yy[..., None] / 7 + xx[..., None] / 11 + np.arange(3)) + rng.normal(0, 20, (height, width, 3))
    )
    image = np.clip(image, 0, 255).astype(np.uint8)
    base_mb = _peak_rss_mb()

    def run():
        return pipe.upscale_array(image, tile_size=tile)

    times = []
    # warm-up (oneDNN primitives for each tile shape; cuDNN/cuBLAS start-up and the caching allocator on
    # CUDA, where it is cheap); large single runs on CPU are not warmed
    if args.repeats > 1 or device.type == "cuda":
        run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(args.repeats):
        start = time.perf_counter()
        out = run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
        del out
    result = {
        "seconds": sorted(times)[len(times) // 2],
        "peak_rss_mb": _peak_rss_mb(),
        "baseline_rss_mb": base_mb,
        "work_ratio": work_ratio(pipe, height, width, tile, method),
    }
    if device.type == "cuda":  # the timed runs' own peak (before the whole-image check below)
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        result["peak_cuda_reserved_mb"] = torch.cuda.max_memory_reserved(device) / 2**20
    if args.check:  # uint8 difference against the whole-image pipeline (small images only)
        out = run()
        result["max_uint8_diff_vs_whole"] = int(np.abs(out.astype(int) - pipe.upscale_array(image)).max())
    print(json.dumps(result))


def run_case(args, height: int, width: int, tile: int | None, method: str, repeats: int, check: bool = False) -> dict:
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        str(height),
        str(width),
        str(tile or 0),
        "--worker-method",
        method,
        *(["--check"] if check else []),
        "--model",
        args.model,
        "--device",
        args.device,
        "--repeats",
        str(repeats),
    ] + (["--quick"] if args.quick else [])
    if args.threads:
        command += ["--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        return {"error": f"exit {done.returncode}: {' | '.join(tail)}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return {}
    if args.same_run:
        same_run_worker(args)
        return {}
    device = setup(args)
    small, large = (
        ((12, 16), (40, 48)) if args.quick else ((188, 250), (750, 1000))
    )  # LR (H, W) of 1000x750 / 4000x3000 at x4
    # --quick: single-stage tiling of the small image is checked against the whole image in tests/test_pipelines.py
    small_methods = ["two_stage"] if args.quick else args.methods
    cases = [(small, None, "whole")]
    # a tile at least as large as the small image is one tile: the whole-image run again
    small_tiles = [t for t in (args.tile_sizes if not args.quick else [8]) if t < max(small)]
    cases += [(small, t, m) for t in small_tiles for m in small_methods if m in args.methods]
    if args.whole_large:
        cases.append((large, None, "whole"))
    cases += [(large, t, m) for t in args.tile_sizes for m in args.methods]
    results = []
    for (h, w), tile, method in cases:
        label = f"{w * 4}x{h * 4} " + (f"{method} tile {tile}" if tile else "whole")
        log(f"{label} ...")
        repeats = args.repeats if (h, w) == small else 1  # one run of the large image is several seconds
        check = (h, w) == small and tile is not None
        row = {
            "output_wh": [w * 4, h * 4],
            "lr_hw": [h, w],
            "tile_size": tile,
            "method": method,
            **run_case(args, h, w, tile, "two_stage" if tile is None else method, repeats, check),
        }
        if "seconds" in row:
            row["seconds_per_megapixel"] = row["seconds"] / (w * h * 16 / 1e6)
        results.append(row)
        save_partial(args, {"benchmark": "tiling", "results": results})
    whole = [r for r in results if r["tile_size"] is None and "seconds" in r]
    reference = max(whole, key=lambda r: r["output_wh"][0] * r["output_wh"][1]) if whole else None
    for row in results:
        if reference and "seconds" in row:
            row["time_ratio"] = row["seconds_per_megapixel"] / reference["seconds_per_megapixel"]
        peak = row.get("peak_cuda_mb", row.get("peak_rss_mb"))  # the accelerator's memory where there is one
        if peak is not None:
            row["within_memory_limit"] = peak <= args.memory_limit_gb * 1024
    peak_name = "GPU MB" if device.type == "cuda" else "peak MB"
    table = [f"{'output':>10} {'method':>12} {'tile':>6} {'s':>8} {'s/Mpx':>7} {'ratio':>6} {'work':>6} {peak_name:>8}"]
    for r in results:
        if "error" in r:
            table.append(
                f"{'x'.join(map(str, r['output_wh'])):>10} {r['method']:>12} {r['tile_size'] or 'whole':>6} error: {r['error']}"
            )
            continue
        table.append(
            f"{'x'.join(map(str, r['output_wh'])):>10} {r['method']:>12} {r['tile_size'] or 'whole':>6} {r['seconds']:8.2f} "
            f"{r['seconds_per_megapixel']:7.2f} {r.get('time_ratio', float('nan')):6.2f} {r['work_ratio']:6.3f} "
            f"{r.get('peak_cuda_mb', r['peak_rss_mb']):8.0f}"
        )
    # the time ratios again, whole vs tiled interleaved in one process, at the largest output the
    # whole image handles well within 4 GB (2000x1500: 2.1 GB peak)
    h, w, t = (12, 16, 8) if args.quick else (375, 500, 256)
    log(f"{w * 4}x{h * 4}: whole / single-stage {t} / two-stage {t}, interleaved in one process ...")
    command = [sys.executable, os.path.abspath(__file__), "--same-run", str(h), str(w), str(t), "--model", args.model]
    command += ["--device", args.device, "--repeats", str(args.repeats)] + (["--quick"] if args.quick else [])
    command += ["--threads", str(args.threads)] if args.threads else []
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    same_run = {"output_wh": [w * 4, h * 4], "tile_size": t}
    if done.returncode == 0:
        same_run.update(json.loads(done.stdout.strip().splitlines()[-1]))
    else:
        same_run["error"] = " | ".join(done.stderr.strip().splitlines()[-3:])
    table.append(
        f"same process, {w * 4}x{h * 4}, tile {t}: "
        + ", ".join(f"{k} {v:.3f}" for k, v in same_run.items() if "ratio" in k)
    )
    report = {
        "benchmark": "tiling",
        "machine": machine_info(device),
        "settings": {
            "quick": args.quick,
            "model": args.model,
            "repeats": args.repeats,
            "memory_limit_gb": args.memory_limit_gb,
            "methods": args.methods,
        },
        "results": results,
        "same_run": same_run,
    }
    emit(args, report, table)
    return report


if __name__ == "__main__":
    main()
