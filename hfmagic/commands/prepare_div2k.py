"""``hfmagic prepare-div2k``: a DIV2K folder or zip -> an HF dataset of HR sub-images (and the Hub)."""

from __future__ import annotations

import argparse
import sys

from ..errors import debug_enabled, error_message


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="Folder of HR images (e.g. DIV2K_train_HR) or a zip of them (DIV2K_train_HR.zip).")
    parser.add_argument("output", help="Folder to create with the dataset (load it with build_sr_dataset(OUTPUT, ...)).")
    parser.add_argument("--crop-size", type=int, default=480, help="Side of the square sub-images (default: 480, MMagic/BasicSR).")
    parser.add_argument("--step", type=int, default=240, help="Stride of the sliding window (default: 240).")
    parser.add_argument(
        "--thresh-size",
        type=int,
        default=0,
        help="Add a window aligned to the far border when more than this many pixels are left over (default: 0).",
    )
    parser.add_argument(
        "--scale",
        type=int,
        action="append",
        default=[],
        help="Also store LR sub-images (column lr_x{S}) made with MATLAB bicubic; repeat for several scales. "
        "Default: none (LR is made online while training).",
    )
    parser.add_argument("--num-proc", type=int, default=None, help="Worker processes (default: all CPUs).")
    parser.add_argument(
        "--format",
        dest="output_format",
        choices=("disk", "parquet"),
        default="disk",
        help="disk: save_to_disk (memory-mapped Arrow); parquet: data/train-*.parquet shards (default: disk).",
    )
    parser.add_argument("--compress-level", type=int, default=3, help="PNG compression 0-9 (default: 3, as BasicSR).")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", default=None, help="Also push the dataset to this Hub dataset repo.")
    parser.add_argument("--private", action="store_true", default=None, help="Create the Hub repo as private.")
    parser.add_argument("--overwrite", action="store_true", help="Replace OUTPUT if it exists and is not empty.")


def run(args: argparse.Namespace) -> int:
    from ..data.prepare import prepare_div2k

    try:
        dataset = prepare_div2k(
            args.source,
            args.output,
            crop_size=args.crop_size,
            step=args.step,
            thresh_size=args.thresh_size,
            scales=args.scale,
            num_proc=args.num_proc,
            output_format=args.output_format,
            compress_level=args.compress_level,
            push_to_hub=args.push_to_hub,
            private=args.private,
            overwrite=args.overwrite,
        )
    except (OSError, ValueError) as err:  # a missing source, a taken output, bad numbers: one line, exit 1
        if debug_enabled():  # --debug / HFMAGIC_DEBUG: the traceback
            raise
        print(f"hfmagic prepare-div2k: error: {error_message(err)}", file=sys.stderr)
        return 1
    images = len(set(dataset["source"]))
    print(f"Wrote {len(dataset)} sub-images of {images} images to {args.output}" + (f" and pushed them to {args.push_to_hub}" if args.push_to_hub else ""))
    return 0
