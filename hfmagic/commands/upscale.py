"""``hfmagic upscale``: run a super-resolution model over image files and folders, writing PNGs
(16-bit PNGs for 16-bit inputs: grayscale, gray + alpha, RGB and RGBA PNG/TIFF/PPM files)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import debug_enabled, error_message

# Kept here (not imported from hfmagic.pipelines) so that `hfmagic --help` does not import torch.
DTYPE_CHOICES = ("auto", "float32", "float16", "bfloat16")
# Files picked up from a folder (any file named explicitly is tried, whatever its extension).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm", ".tga")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="Image files and/or folders of images (not recursive).")
    parser.add_argument("--model", required=True, help="Hub id or local folder of a super-resolution model (config.json + weights): hfmagic's, or transformers' Swin2SR.")
    parser.add_argument("--output", required=True, metavar="DIR", help="Folder for the results, one PNG per input named after it (16-bit PNG for 16-bit inputs).")
    parser.add_argument("--tile", type=int, default=None, metavar="N", help="Process the image in N x N LR-pixel tiles (bounds memory; default: whole image, "
        "or automatic two-stage tiles for outputs above 512x512 pixels).")
    parser.add_argument(
        "--tile-overlap",
        type=int,
        default=None,
        metavar="N",
        help="LR pixels of context around each tile (default: the model's receptive field, so tiling does not change the result; "
        "models with a separate upsampling head then tile in two stages, trunk on large regions and only the head per tile). "
        "Giving it tiles the whole network in one stage.",
    )
    parser.add_argument("--batch-size", type=int, default=1, help="Tiles run through the model together (default 1).")
    parser.add_argument(
        "--exact",
        action="store_true",
        help="CPU only: tiled output bitwise equal to the whole-image output (native convolution, one tile per "
        "forward; 1.1-4x slower). Without it tiles agree up to a rare one-step flip of a uint8 value.",
    )
    parser.add_argument("--alpha", choices=("model", "bicubic"), default="model", help="How to upscale an alpha channel (default: with the model).")
    parser.add_argument("--device", default=None, help="Torch device, e.g. cuda, cuda:1, cpu (default: cuda when available).")
    parser.add_argument(
        "--dtype",
        choices=DTYPE_CHOICES,
        default="auto",
        help="Compute precision (default auto: bfloat16 where the device computes it natively, CPUs with AVX512-BF16 or "
        "AMX and CUDA GPUs from Ampere on, ~2x faster; float32 elsewhere and with --exact; the choice is printed).",
    )


def collect_images(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Expand files and folders into a list of image paths; returns (paths, error messages)."""
    paths, errors = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                errors.append(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            errors.append(f"{path}: no such file or folder")
    return paths, errors


def _output_name(path: Path, used: set[str]) -> str:
    """``<stem>.png``, with ``_2``, ``_3``... when two inputs share a stem."""
    name, n = f"{path.stem}.png", 1
    while name in used:
        n += 1
        name = f"{path.stem}_{n}.png"
    used.add(name)
    return name


def _looks_like_a_path(model: str) -> bool:
    """A local path rather than a Hub id ('org/name'): absolute, relative with ./ or ../, or 3+ parts."""
    return model.startswith(("/", "./", "../", "~")) or model.count("/") >= 2 or "\\" in model


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..data.image16 import save_image
    from ..logging_utils import is_terminal, log_to_stderr, progress_bar
    from ..pipelines import SuperResolutionPipeline

    def error(message: str) -> None:
        tqdm.write(f"hfmagic upscale: error: {message}", file=sys.stderr)

    for flag, value, least in (("--tile", args.tile, 1), ("--tile-overlap", args.tile_overlap, 0), ("--batch-size", args.batch_size, 1)):
        if value is not None and value < least:  # once, not once per image after loading the model
            error(f"{flag} must be >= {least}, got {value}")
            return 1
    if _looks_like_a_path(args.model) and not Path(args.model).exists():
        error(f"--model {args.model}: no such folder (a Hub id looks like 'org/name')")
        return 1
    paths, failures = collect_images(args.inputs)
    for message in failures:
        error(message)
    if not paths:
        error("nothing to upscale")
        return 1
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        error(f"--output {output} exists and is not a folder")
        return 1
    from ..pipelines import resolve_device

    try:
        resolve_device(args.device)
    except ValueError as err:
        error(f"--device: {err}")
        return 1
    # Say which precision --dtype auto chose (the pipeline logs it at INFO level).
    with log_to_stderr("hfmagic.pipelines", prefix="hfmagic upscale: "):
        try:
            device = args.device or ("cpu" if args.exact else None)  # exact mode is CPU-only
            pipeline = SuperResolutionPipeline.from_pretrained(args.model, device=device, dtype=args.dtype, exact=args.exact)
        except (OSError, ValueError) as err:
            if debug_enabled():  # --debug / HFMAGIC_DEBUG: the traceback
                raise
            error(f"cannot load --model {args.model}: {error_message(err)}")
            return 1
    output.mkdir(parents=True, exist_ok=True)

    used: set[str] = set()
    written = 0
    # tqdm on a terminal; off it a line every 30 s (HFMAGIC_PROGRESS_SECONDS), not a redraw per image
    for path in progress_bar(paths, desc="upscaling", unit="image"):
        try:
            image = pipeline(
                path,
                tile_size=args.tile,
                tile_overlap=args.tile_overlap,
                batch_size=args.batch_size,
                alpha_mode=args.alpha,
                progress=args.tile is not None and is_terminal(),  # the pipeline's tqdm: no redraws in logs
            )
            save_image(image, output / _output_name(path, used))  # a uint16 array for 16-bit inputs
        except (ValueError, FileNotFoundError, OSError) as err:
            # Name the file, skip it, go on with the others.
            failures.append(str(path))
            error(str(err) if str(path) in str(err) else f"{path}: {err}")
            continue
        written += 1
    print(f"hfmagic upscale: wrote {written} image(s) to {output}" + (f", {len(failures)} failed" if failures else ""), file=sys.stderr)
    return 1 if failures else 0
