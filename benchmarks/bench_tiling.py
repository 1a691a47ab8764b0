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
        "--split-tile-sizes",
        nargs="*",
        type=int,
        default=None,
        help="tail tiles of the two-stage prototype (MSRResNet, CPU; default 128 256; --quick 16)",
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
    args = parser.parse_args(argv)
    args.tile_sizes = args.tile_sizes or ([16] if args.quick else [128, 256, 512])
    if args.split_tile_sizes is None:
        args.split_tile_sizes = [16] if args.quick else [128, 256]
    if args.model != "msrresnet" or args.device != "cpu":
        args.split_tile_sizes = []
    return args


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _cores(length: int, tile: int) -> list[tuple[int, int]]:
    return [(start, min(start + tile, length)) for start in range(0, length, tile)]


def _halos(model) -> tuple[int, int]:
    """LR context that MSRResNet's trunk (conv_first + 2 convs per block) and its upsampling tail
    (with the bilinear skip) need, from the pipeline's receptive-field walk."""
    from hfmagic.pipelines import _chain_halo, _conv, _resize, _shuffle

    s = model.config.upscale_factor
    stages = [2, 2] if s == 4 else [s]
    tail_ops = [op for f in stages for op in (_conv(1), _shuffle(f))] + [
        _conv(1),
        _conv(1),
    ]
    return 1 + 2 * model.config.num_blocks, _chain_halo(s, tail_ops, [_resize(s, 0, 1)])


def split_upscale(model, image, tile_size: int, trunk_tile: int):
    """PROTOTYPE of two-stage tiling for MSRResNet (not in the library yet): the trunk (33 convs at LR
    resolution, receptive field 1 + 2B pixels) runs in large LR tiles, whose feature maps are small;
    only the upsampling tail (receptive field 3 LR pixels, but all the HR-sized tensors) runs in
    ``tile_size`` tiles. Exact like the pipeline's tiling (each kept pixel sees its whole receptive
    field), with ~2% redundant work instead of ``((tile + 70) / tile)^2``. Returns uint8 (sH, sW, 3)."""
    import numpy as np
    import torch
    from torch.nn import functional as F

    from hfmagic.pipelines import _to_uint8

    s, cfg = model.config.upscale_factor, model.config
    trunk_halo, tail_halo = _halos(model)
    cl = torch.channels_last
    height, width = image.shape[:2]
    x = (
        torch.from_numpy(np.ascontiguousarray(image))
        .permute(2, 0, 1)[None]
        .float()
        .div(255.0)
        .contiguous(memory_format=cl)
    )
    feat = torch.empty(1, cfg.mid_channels, height, width).contiguous(memory_format=cl)
    out = np.empty((height * s, width * s, 3), dtype=np.uint8)
    with torch.inference_mode():
        for y0, y1 in _cores(height, trunk_tile):
            for x0, x1 in _cores(width, trunk_tile):
                cy0, cy1, cx0, cx1 = (
                    max(y0 - trunk_halo, 0),
                    min(y1 + trunk_halo, height),
                    max(x0 - trunk_halo, 0),
                    min(x1 + trunk_halo, width),
                )
                f = model.trunk_net(model.lrelu(model.conv_first(x[:, :, cy0:cy1, cx0:cx1])))
                feat[:, :, y0:y1, x0:x1] = f[:, :, y0 - cy0 : y1 - cy0, x0 - cx0 : x1 - cx0]
        for y0, y1 in _cores(height, tile_size):
            for x0, x1 in _cores(width, tile_size):
                cy0, cy1, cx0, cx1 = (
                    max(y0 - tail_halo, 0),
                    min(y1 + tail_halo, height),
                    max(x0 - tail_halo, 0),
                    min(x1 + tail_halo, width),
                )
                hr = model.conv_last(model.lrelu(model.conv_hr(model._upsample(feat[:, :, cy0:cy1, cx0:cx1]))))
                hr = hr + F.interpolate(
                    x[:, :, cy0:cy1, cx0:cx1],
                    scale_factor=s,
                    mode="bilinear",
                    align_corners=False,
                )
                crop = hr[
                    0,
                    :,
                    (y0 - cy0) * s : (y1 - cy0) * s,
                    (x0 - cx0) * s : (x1 - cx0) * s,
                ]
                out[y0 * s : y1 * s, x0 * s : x1 * s] = _to_uint8(crop)
    return out


def _context_area(height: int, width: int, tile: int, halo: int) -> int:
    """LR pixels fed to the network when cores of ``tile`` get ``halo`` pixels of context (clipped)."""

    def extent(length):
        return sum(min(b + halo, length) - max(a - halo, 0) for a, b in _cores(length, tile))

    return extent(height) * extent(width)


def work_ratio(pipe, height: int, width: int, tile: int, trunk_tile: int) -> float:
    """Network work of a run relative to the whole image, from the tile geometry (load-independent):
    context area / image area, weighted by the FLOP share of each stage for the two-stage prototype."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    area = height * width
    if tile == 0:
        return 1.0
    if tile > 0:
        return _context_area(height, width, tile, pipe.receptive_field) / area
    model = pipe.model
    x = torch.rand(1, 3, 16, 16)
    with torch.inference_mode(), FlopCounterMode(display=False) as total:
        model(x)
    with torch.inference_mode(), FlopCounterMode(display=False) as trunk:
        model.trunk_net(model.lrelu(model.conv_first(x)))
    trunk_share = trunk.get_total_flops() / total.get_total_flops()
    trunk_halo, tail_halo = _halos(model)
    trunk_ratio = _context_area(height, width, trunk_tile, trunk_halo) / area
    tail_ratio = _context_area(height, width, -tile, tail_halo) / area
    return trunk_share * trunk_ratio + (1 - trunk_share) * tail_ratio


def same_run_worker(args) -> None:
    """Whole image, pipeline tiling and the two-stage prototype timed interleaved in one process (so
    the ratios do not depend on the machine's load drifting between processes): prints a JSON line."""
    import numpy as np
    from _common import interleaved_medians
    from bench_inference import build_model

    from hfmagic import SuperResolutionPipeline

    height, width, tile = args.same_run
    device = setup(args)
    pipe = SuperResolutionPipeline(build_model(args.model, 4, tiny=args.quick), device=device)
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    fns = {"whole": lambda: pipe.upscale_array(image), "tiled": lambda: pipe.upscale_array(image, tile_size=tile)}
    if args.model == "msrresnet" and device.type == "cpu":
        fns["two_stage"] = lambda: split_upscale(pipe.model, image, tile, max(1024, tile))
    times = interleaved_medians(fns, args.repeats, device)
    result = {f"{k}_seconds": v for k, v in times.items()}
    result.update({f"{k}_time_ratio": v / times["whole"] for k, v in times.items() if k != "whole"})
    result["tiled_work_ratio"] = work_ratio(pipe, height, width, tile, 0)
    if "two_stage" in fns:
        result["two_stage_work_ratio"] = work_ratio(pipe, height, width, -tile, max(1024, tile))
    print(json.dumps(result))


def worker(args) -> None:
    """One measurement (in its own process): prints a JSON line."""
    import numpy as np
    import torch
    from bench_inference import build_model

    from hfmagic import SuperResolutionPipeline

    height, width, tile = args.worker
    device = setup(args)
    pipe = SuperResolutionPipeline(build_model(args.model, 4, tiny=args.quick), device=device)
    split = tile < 0  # negative tile: the two-stage prototype with tail tiles of -tile
    if split and (args.model != "msrresnet" or device.type != "cpu"):
        raise SystemExit("the two-stage tiling prototype covers MSRResNet on CPU only")
    # the trunk's feature maps are LR-sized (64 channels: 256 bytes per LR pixel): 1024x1024 LR tiles
    # keep them under ~0.3 GB each, and a 1000x750 LR image (4000x3000 output) runs its trunk whole
    trunk_tile = max(1024, abs(tile))
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    image = (
        127 + 60 * np.sin(yy[..., None] / 7 + xx[..., None] / 11 + np.arange(3)) + rng.normal(0, 20, (height, width, 3))
    )
    image = np.clip(image, 0, 255).astype(np.uint8)
    base_mb = _peak_rss_mb()

    def run():
        if split:
            return split_upscale(
                pipe.model.to(memory_format=torch.channels_last),
                image,
                -tile,
                trunk_tile,
            )
        return pipe.upscale_array(image, tile_size=tile or None)

    times = []
    if args.repeats > 1:  # warm-up (oneDNN primitives for each tile shape); large single runs are not warmed
        run()
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
        "work_ratio": work_ratio(pipe, height, width, tile, trunk_tile),
    }
    if args.check:  # uint8 difference against the whole-image pipeline (small images only)
        whole = pipe.upscale_array(image)
        out = (
            split_upscale(pipe.model, image, -tile, trunk_tile)
            if split
            else pipe.upscale_array(image, tile_size=tile or None)
        )
        result["max_uint8_diff_vs_whole"] = int(np.abs(out.astype(int) - whole).max())
    if device.type == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    print(json.dumps(result))


def run_case(args, height: int, width: int, tile: int | None, repeats: int, check: bool = False) -> dict:
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        str(height),
        str(width),
        str(tile or 0),
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
    # a negative tile size stands for the two-stage prototype with tail tiles of that size
    splits = [-t for t in args.split_tile_sizes]
    # --quick: the pipeline's own tiling is checked against the whole image in tests/test_pipelines.py
    cases = [(small, None)] + [(small, t) for t in ([] if args.quick else args.tile_sizes) + splits]
    if args.whole_large:
        cases.append((large, None))
    cases += [(large, t) for t in args.tile_sizes + splits]
    results = []
    for (h, w), tile in cases:
        label = f"{w * 4}x{h * 4} " + (
            f"two-stage tail tile {-tile}" if tile and tile < 0 else f"tile {tile}" if tile else "whole"
        )
        log(f"{label} ...")
        repeats = args.repeats if (h, w) == small else 1  # one run of the large image is several seconds
        check = (h, w) == small and tile is not None
        row = {
            "output_wh": [w * 4, h * 4],
            "lr_hw": [h, w],
            "tile_size": abs(tile) if tile else None,
            "method": "two_stage_prototype" if tile and tile < 0 else "pipeline",
            **run_case(args, h, w, tile, repeats, check),
        }
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
    table = [f"{'output':>10} {'method':>20} {'tile':>6} {'s':>8} {'s/Mpx':>7} {'ratio':>6} {'work':>6} {'peak MB':>8}"]
    for r in results:
        if "error" in r:
            table.append(
                f"{'x'.join(map(str, r['output_wh'])):>10} {r['method']:>20} {r['tile_size'] or 'whole':>6} error: {r['error']}"
            )
            continue
        table.append(
            f"{'x'.join(map(str, r['output_wh'])):>10} {r['method']:>20} {r['tile_size'] or 'whole':>6} {r['seconds']:8.2f} "
            f"{r['seconds_per_megapixel']:7.2f} {r.get('time_ratio', float('nan')):6.2f} {r['work_ratio']:6.3f} {r['peak_rss_mb']:8.0f}"
        )
    # the time ratios again, whole vs tiled interleaved in one process, at the largest output the
    # whole image handles well within 4 GB (2000x1500: 2.1 GB peak)
    h, w, t = (12, 16, 8) if args.quick else (375, 500, 256)
    log(f"{w * 4}x{h * 4}: whole / tiled {t} / two-stage {t}, interleaved in one process ...")
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
        },
        "results": results,
        "same_run": same_run,
    }
    emit(args, report, table)
    return report


if __name__ == "__main__":
    main()
