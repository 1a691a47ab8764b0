"""Peak memory and time of the default ``SuperResolutionPipeline`` with a default-size RRDBNet x4
(ESRGAN / RealESRGAN_x4plus: 64 channels, 23 blocks; seeded random weights) on a 1000x750 image
(4000x3000 output), on CPU with the default settings (``pipe(image)``: no tile size given, so the
pipeline's automatic two-stage tiling applies). Runs in its own process, so ``ru_maxrss`` (the
Python process with torch, the model, the input, the uint8 output and every intermediate tensor)
is this run's peak. The issue's limit: < 4 GB.

    python benchmarks/bench_rrdbnet_memory.py --json out.json          # ~1.7 TFLOP: minutes on 2 cores
    python benchmarks/bench_rrdbnet_memory.py --quick                  # tiny model, 64x48 input
"""

from __future__ import annotations

import argparse
import resource
import time

from _common import add_common_arguments, emit, log, machine_info, setup


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--size", nargs=2, type=int, default=None, metavar=("W", "H"), help="input size (default 1000 750)")
    parser.add_argument("--whole", action="store_true", help="switch automatic tiling off (the whole image at once)")
    parser.add_argument("--memory-limit-gb", type=float, default=4.0, help="the peak memory target")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = setup(args)
    import numpy as np
    import torch

    from hfmagic import RRDBNet, RRDBNetConfig, SuperResolutionPipeline

    width, height = args.size or ((64, 48) if args.quick else (1000, 750))
    torch.manual_seed(0)
    sizes = {"mid_channels": 16, "num_blocks": 2, "growth_channels": 8} if args.quick else {}
    model = RRDBNet(RRDBNetConfig(upscale_factor=4, **sizes)).eval()
    pipe = SuperResolutionPipeline(model, device=device)
    if args.whole:
        pipe.auto_tile_pixels = None
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log(f"RRDBNet x4 {width}x{height} -> {4 * width}x{4 * height}, dtype {pipe.dtype} ...")
    start = time.perf_counter()
    out = pipe(image)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert out.size == (4 * width, 4 * height)
    result = {
        "input_wh": [width, height],
        "output_wh": [4 * width, 4 * height],
        "dtype": str(pipe.dtype).removeprefix("torch."),
        "automatic_tiling": not args.whole,
        "seconds": seconds,
        "peak_rss_mb": peak_mb,
        "baseline_rss_mb": base_mb,
        "within_memory_limit": peak_mb <= args.memory_limit_gb * 1024,
    }
    log(f"{seconds:.1f} s, peak RSS {peak_mb:.0f} MB (before the call: {base_mb:.0f} MB)")
    report = {
        "benchmark": "rrdbnet_memory",
        "machine": machine_info(device),
        "settings": {"quick": args.quick, "model": "rrdbnet", **sizes},
        "results": [result],
    }
    table = [
        f"RRDBNet x4 {width}x{height} -> {4 * width}x{4 * height} ({result['dtype']}, "
        f"{'automatic tiling' if not args.whole else 'whole image'}): {seconds:.1f} s, peak RSS {peak_mb:.0f} MB"
    ]
    emit(args, report, table)
    return report


if __name__ == "__main__":
    main()
