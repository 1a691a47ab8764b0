"""``hfmagic evaluate-gan``: SWD, MS-SSIM (and FID, IS) of a GAN generator against an image dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import debug_enabled, error_message


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        metavar="ID_OR_PATH",
        help="Hub id or local folder of a GAN repo (generator at its root).",
    )
    parser.add_argument(
        "--dataset",
        required=True,
        metavar="NAME_OR_PATH",
        help="Real images: a Hub dataset id with an image column (e.g. pcuenq/lsun-bedrooms), an image folder, "
        "a parquet file or a save_to_disk folder. Resized (bilinear) and center-cropped to the generator's size.",
    )
    parser.add_argument("--split", default="train", help="Dataset split (default train).")
    parser.add_argument("--image-column", default="image", help="Column holding the images (default image).")
    parser.add_argument("--streaming", action="store_true", help="Stream the dataset (the first N images are used).")
    parser.add_argument(
        "--num-images",
        type=int,
        default=2048,
        metavar="N",
        help="Real and generated images compared (even; default 2048; MMagic: 16384 for SWD, 10000 for MS-SSIM).",
    )
    parser.add_argument(
        "--ms-ssim-images",
        type=int,
        default=None,
        metavar="M",
        help="MS-SSIM on the first M generated images only (even, <= N; default N). MMagic's protocol in one run: "
        "--num-images 16384 --ms-ssim-images 10000.",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="Images per batch (default 64).")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="Seed of the noise, the real subset and SWD's random projections (default 0).",
    )
    parser.add_argument(
        "--inception",
        default=None,
        metavar="PATH",
        help="Local TorchScript Inception (e.g. inception-2015-12-05.pt) to also compute FID and the Inception "
        "Score (Pillow bicubic resize to 299, as MMagic).",
    )
    parser.add_argument(
        "--inception-score-splits",
        type=int,
        default=10,
        metavar="K",
        help="With --inception: the Inception Score's number of parts (default 10, MMagic's; 0: FID only).",
    )
    parser.add_argument("--device", default=None, help="Torch device, e.g. cuda, cpu (default: cuda when available).")
    parser.add_argument(
        "--write-card",
        action="store_true",
        help="Write the results into the model-index of the model folder's README.md (local --model only).",
    )


def format_results(results: dict) -> str:
    """Results of ``evaluate_gan`` as text lines."""
    levels = "  ".join(f"{key}: {value:.4f}" for key, value in results["swd"].items() if key != "avg")
    lines = [
        f"SWD x1e3   {levels}  avg: {results['swd']['avg']:.4f}",
        f"MS-SSIM    {results['ms_ssim']:.4f}",
    ]
    if results.get("fid") is not None:
        lines.append(f"FID        {results['fid']:.4f}")
    if results.get("inception_score") is not None:
        mean, std = results["inception_score"]
        lines.append(f"IS         {mean:.4f} +- {std:.4f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    def error(message: str) -> int:
        print(f"hfmagic evaluate-gan: error: {message}", file=sys.stderr)
        return 1

    if args.num_images < 2 or args.num_images % 2:
        return error(f"--num-images must be an even number >= 2 (MS-SSIM compares pairs), got {args.num_images}")
    if args.ms_ssim_images is not None and not (2 <= args.ms_ssim_images <= args.num_images and args.ms_ssim_images % 2 == 0):
        return error(f"--ms-ssim-images must be an even number between 2 and --num-images ({args.num_images}), got {args.ms_ssim_images}")
    if args.batch_size < 2:
        return error(f"--batch-size must be >= 2, got {args.batch_size}")
    if args.write_card and not Path(args.model).is_dir():
        return error(f"--write-card needs a local model folder, but {args.model!r} is not a folder")
    if args.inception is not None and not Path(args.inception).is_file():
        from ..metrics.fid import INCEPTION_URL

        return error(
            f"--inception {args.inception} does not exist; download inception-2015-12-05.pt ({INCEPTION_URL}) and pass its path"
        )
    if args.inception_score_splits < 0:
        return error(f"--inception-score-splits must be >= 0 (0: no Inception Score), got {args.inception_score_splits}")

    from ..data import build_gan_dataset
    from ..evaluation import evaluate_gan, gan_metrics_for_card
    from ..pipelines import GANPipeline

    try:
        generator = GANPipeline.from_pretrained(args.model, device=args.device).model
    except (OSError, ValueError, TypeError) as err:
        if debug_enabled():  # --debug / HFMAGIC_DEBUG: the traceback
            raise
        return error(f"cannot load --model {args.model}: {error_message(err)}")
    config = generator.config
    try:
        real = build_gan_dataset(
            args.dataset,
            resolution=config.image_size,
            num_channels=config.num_channels,
            image_column=args.image_column,
            split=args.split,
            streaming=args.streaming,
        )
        results = evaluate_gan(
            generator,
            real,
            args.num_images,
            batch_size=args.batch_size,
            seed=args.seed,
            inception_path=args.inception,
            progress=True,
            ms_ssim_images=args.ms_ssim_images,
            inception_score_splits=args.inception_score_splits or None,
        )
    except (OSError, ValueError) as err:
        if debug_enabled():  # --debug / HFMAGIC_DEBUG: the traceback
            raise
        return error(error_message(err))

    size = config.image_size
    ms_note = "" if results["ms_ssim_images"] == results["num_images"] else f" (MS-SSIM on {results['ms_ssim_images']})"
    print(
        f"{type(generator).__name__} {size}x{size}, {results['num_images']} real and generated images{ms_note}, seed {args.seed}"
    )
    print(format_results(results))
    if args.write_card:
        from ..hub import add_metrics_to_card

        dataset = Path(args.dataset).name if Path(args.dataset).exists() else args.dataset
        add_metrics_to_card(args.model, gan_metrics_for_card(results, dataset, split=args.split))
        print(f"hfmagic evaluate-gan: wrote the results into {Path(args.model) / 'README.md'}", file=sys.stderr)
    return 0
