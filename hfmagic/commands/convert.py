"""``hfmagic convert``: an MMagic or BasicSR checkpoint -> a ``from_pretrained`` folder (and the Hub)."""

from __future__ import annotations

import argparse
import sys

from ..errors import debug_enabled, error_message

# Kept here (not imported from hfmagic.convert) so that `hfmagic --help` does not import torch.
SOURCES = ("auto", "mmagic", "basicsr")
ACT_TYPES = ("prelu", "relu", "leakyrelu")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint",
        help="MMagic (.pth with 'state_dict') or BasicSR (.pth with 'params'/'params_ema') checkpoint, or a bare "
        "state dict (.pth or .safetensors).",
    )
    parser.add_argument(
        "output_dir", help="Folder to write: config.json, model.safetensors, README.md (a GAN: discriminator/ too)."
    )
    parser.add_argument(
        "--arch",
        default=None,
        help="Architecture of the checkpoint: a registered architecture's model_type (an unknown one lists them). "
        "Default: recognised from the checkpoint's keys; given, it is checked against them.",
    )
    parser.add_argument(
        "--scale",
        type=int,
        default=None,
        help="Upscale factor. Read from the weights when they hold it (then only checked); required for networks "
        "whose weights do not hold it.",
    )
    parser.add_argument(
        "--source",
        choices=SOURCES,
        default="auto",
        help="Which codebase wrote the checkpoint (default: from its layout and key names).",
    )
    parser.add_argument(
        "--ema",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="--ema: convert the EMA generator (MMagic generator_ema, BasicSR params_ema); --no-ema: the raw one. "
        "Default: the EMA generator when the checkpoint holds one (what MMagic tests with).",
    )
    parser.add_argument(
        "--no-bgr-to-rgb",
        dest="bgr_to_rgb",
        action="store_false",
        help="GANs: keep the channel order (for GANs trained on RGB; MMagic's DCGANs were trained on BGR and are "
        "reversed by default).",
    )
    parser.add_argument(
        "--res-scale",
        type=float,
        default=None,
        help="Residual scale, for networks whose weights do not hold it (the error names them; default: the "
        "original's, e.g. 1.0, or 0.1 for the large 256-feature, 32-block models).",
    )
    parser.add_argument(
        "--act-type",
        choices=ACT_TYPES,
        default=None,
        help="Activation, for networks whose weights do not say it: Real-ESRGAN's compact networks without PReLU "
        "slopes used relu or leakyrelu (the error names them; PReLU is read from the weights).",
    )
    parser.add_argument(
        "--license",
        default=None,
        help='Hub license id the card declares (e.g. bsd-3-clause for Real-ESRGAN\'s RRDBNet files; "none": none; '
        "default: the architecture's published weights': apache-2.0, bsd-3-clause for Real-ESRGAN's compact nets).",
    )
    parser.add_argument(
        "--push-to-hub", metavar="REPO_ID", default=None, help="Also upload the folder to this Hub repo."
    )
    parser.add_argument("--private", action="store_true", default=None, help="Create the Hub repo as private.")
    parser.add_argument("--token", default=None, help="Hub token (default: the logged-in one or HF_TOKEN).")


def run(args: argparse.Namespace) -> int:
    from ..convert import convert_checkpoint
    from ..logging_utils import log_to_stderr

    # Show the converter's notes (what was skipped, what was read from the shapes) on stderr.
    with log_to_stderr("hfmagic.convert"):
        try:
            convert_checkpoint(
                args.checkpoint,
                args.output_dir,
                arch=args.arch,
                scale=args.scale,
                source=args.source,
                ema=args.ema,
                bgr_to_rgb=args.bgr_to_rgb,
                res_scale=args.res_scale,
                act_type=args.act_type,
                license=args.license,
                push_to_hub=args.push_to_hub,
                private=args.private,
                token=args.token,
            )
        except (ValueError, FileNotFoundError) as err:
            if debug_enabled():  # --debug / HFMAGIC_DEBUG: the traceback
                raise
            print(f"hfmagic convert: error: {error_message(err)}", file=sys.stderr)
            return 1
    return 0
