"""``hfmagic evaluate``: PSNR/SSIM of a super-resolution model on evaluation sets, next to bicubic."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import debug_enabled, error_message


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", required=True, metavar="ID_OR_PATH", help="Hub id or local folder of an hfmagic SR model."
    )
    parser.add_argument(
        "--dataset",
        required=True,
        action="append",
        metavar="NAME_OR_PATH",
        help="Set5, Set14, BSD100, Urban100 (Hub tarballs), a DIV2K validation folder or a folder of HR images; repeat for several.",
    )
    parser.add_argument(
        "--y-channel",
        action="store_true",
        help="Evaluate on the Y channel of YCbCr (papers) instead of RGB (MMagic's zoo).",
    )
    parser.add_argument(
        "--crop-border",
        type=int,
        default=None,
        metavar="N",
        help="Pixels ignored at each side (default: the scale, as MMagic).",
    )
    parser.add_argument(
        "--channel-order",
        choices=("rgb", "bgr"),
        default="rgb",
        help="Channel order assumed by the Y conversion (default rgb).",
    )
    parser.add_argument(
        "--float-output",
        action="store_true",
        help="Score the clamped float output as MMagic 1.x's evaluator does, instead of the output rounded to uint8 "
        "(MMEditing 0.x / BasicSR tensor2img, the saved image; default).",
    )
    parser.add_argument(
        "--tile",
        type=int,
        default=None,
        metavar="N",
        help="Tiled inference with N x N LR tiles (exact; for large images).",
    )
    parser.add_argument("--device", default=None, help="Torch device, e.g. cuda, cpu (default: cuda when available).")
    parser.add_argument("--per-image", action="store_true", help="Also print each image's PSNR/SSIM.")
    parser.add_argument(
        "--write-card",
        action="store_true",
        help="Write PSNR/SSIM into the model-index of the model folder's README.md (local --model only).",
    )


def format_table(results: dict[str, dict]) -> str:
    """Results of ``evaluate_sr`` as an aligned text table, one row per dataset."""
    header = ("dataset", "images", "PSNR", "SSIM", "bicubic PSNR", "bicubic SSIM")
    rows = [header]
    for dataset, r in results.items():
        rows.append(
            (
                dataset,
                str(r["num_images"]),
                f"{r['psnr']:.4f}",
                f"{r['ssim']:.4f}",
                f"{r['bicubic_psnr']:.4f}" if "bicubic_psnr" in r else "-",
                f"{r['bicubic_ssim']:.4f}" if "bicubic_ssim" in r else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    def error(message: str) -> int:
        print(f"hfmagic evaluate: error: {message}", file=sys.stderr)
        return 1

    if args.crop_border is not None and args.crop_border < 0:
        return error(f"--crop-border must be >= 0, got {args.crop_border}")
    if args.tile is not None and args.tile < 1:
        return error(f"--tile must be >= 1, got {args.tile}")
    if args.write_card and not Path(args.model).is_dir():
        return error(
            f"--write-card needs a local model folder, but {args.model!r} is not a folder (download or save the model first)"
        )

    from ..evaluation import evaluate_sr, metrics_for_card
    from ..pipelines import SuperResolutionPipeline

    try:
        # float32 whatever the device: the figures are compared with MMagic's published (fp32) tables
        model = SuperResolutionPipeline.from_pretrained(args.model, device=args.device, dtype="float32").model
    except (OSError, ValueError, TypeError) as err:
        if debug_enabled():  # --debug / HFMAGIC_DEBUG: the traceback
            raise
        return error(f"cannot load --model {args.model}: {error_message(err)}")
    scale = model.config.upscale_factor
    crop = scale if args.crop_border is None else args.crop_border
    try:
        results = evaluate_sr(
            model,
            args.dataset,
            crop_border=crop,
            y_channel=args.y_channel,
            tile_size=args.tile,
            channel_order=args.channel_order,
            quantize=not args.float_output,
            per_image=args.per_image,
            progress=True,
        )
    except (OSError, ValueError) as err:
        if debug_enabled():  # --debug / HFMAGIC_DEBUG: the traceback
            raise
        return error(error_message(err))

    print(f"{type(model).__name__} x{scale}, {'Y' if args.y_channel else 'RGB'}, crop_border={crop}")
    print(format_table(results))
    if args.per_image:
        for dataset, r in results.items():
            print(f"\n{dataset}")
            for row in r["images"]:
                print(f"  {row['name']}: PSNR {row['psnr']:.4f}  SSIM {row['ssim']:.4f}")
    if args.write_card:
        from ..hub import add_metrics_to_card

        add_metrics_to_card(args.model, metrics_for_card(results, args.y_channel, crop))
        print(f"hfmagic evaluate: wrote the results into {Path(args.model) / 'README.md'}", file=sys.stderr)
    return 0
