"""``hfmagic sample``: draw images from a GAN generator and write them as PNGs (and a grid)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ..errors import debug_enabled, error_message

from .upscale import DTYPE_CHOICES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="Hub id or local folder of a GAN repo (the generator at its root).")
    parser.add_argument("--num-images", type=int, default=16, metavar="N", help="How many images to draw (default 16).")
    parser.add_argument("--output", required=True, metavar="DIR", help="Folder for sample_00000.png, sample_00001.png, ...")
    parser.add_argument("--seed", type=int, default=None, help="Seed of the noise (drawn on CPU, so the same seed gives the same noise on any device).")
    parser.add_argument("--grid", action="store_true", help="Also write grid.png with all images.")
    parser.add_argument("--nrow", type=int, default=None, help="Images per grid row (default: about the square root of N).")
    parser.add_argument("--batch-size", type=int, default=64, help="Images generated per forward pass (default 64).")
    parser.add_argument("--device", default=None, help="Torch device, e.g. cuda, cpu (default: cuda when available).")
    parser.add_argument("--dtype", choices=DTYPE_CHOICES, default="float32", help="Compute precision (default float32).")
    parser.add_argument(
        "--truncation",
        type=float,
        default=None,
        metavar="T",
        help="Truncation in [0, 1] for style-based generators (e.g. 0.7: more typical, less varied images; default: none).",
    )


def run(args: argparse.Namespace) -> int:
    from ..pipelines import GANPipeline, make_grid

    def error(message: str) -> int:
        print(f"hfmagic sample: error: {message}", file=sys.stderr)
        return 1

    if args.num_images < 1:
        return error(f"--num-images must be >= 1, got {args.num_images}")
    if args.batch_size < 1:
        return error(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.nrow is not None and args.nrow < 1:
        return error(f"--nrow must be >= 1, got {args.nrow}")
    if args.seed is not None and not -(2**63) <= args.seed < 2**64:  # what torch.Generator.manual_seed takes
        return error(f"--seed must be in [-2**63, 2**64), got {args.seed}")
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        return error(f"--output {output} exists and is not a folder")
    from ..pipelines import resolve_device

    try:
        resolve_device(args.device)
    except ValueError as err:
        return error(f"--device: {err}")
    try:
        pipeline = GANPipeline.from_pretrained(args.model, device=args.device, dtype=args.dtype)
    except (OSError, ValueError, TypeError) as err:
        if debug_enabled():  # --debug / HFMAGIC_DEBUG: the traceback
            raise
        return error(f"cannot load --model {args.model}: {error_message(err)}")
    from ..logging_utils import is_terminal

    # the pipeline's bar is diffusers' tqdm: on a terminal only (no redraws in logs)
    try:
        images = pipeline(
            num_images=args.num_images, seed=args.seed, batch_size=args.batch_size, progress=is_terminal(), truncation=args.truncation
        )
    except ValueError as err:
        return error(f"--truncation: {err}" if args.truncation is not None and "truncation" in str(err) else str(err))
    output.mkdir(parents=True, exist_ok=True)
    digits = max(5, len(str(args.num_images - 1)))
    for i, image in enumerate(images):
        image.save(output / f"sample_{i:0{digits}d}.png")
    if args.grid:
        nrow = args.nrow or math.ceil(math.sqrt(len(images)))
        make_grid(images, nrow=nrow).save(output / "grid.png")
    print(f"hfmagic sample: wrote {len(images)} image(s){' and grid.png' if args.grid else ''} to {output}", file=sys.stderr)
    return 0
