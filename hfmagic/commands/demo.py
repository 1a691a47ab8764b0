"""``hfmagic demo``: a local Gradio app to upscale images and draw GAN samples in the browser
(gradio is optional: ``pip install "hfmagic[demo]"``)."""

from __future__ import annotations

import argparse
import sys

from .upscale import DTYPE_CHOICES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", action="append", default=[], metavar="ID_OR_DIR",
        help="Super-resolution model offered in the Upscale tab (Hub id or local folder; repeatable). Others can be typed in the page.",
    )
    parser.add_argument(
        "--gan-model", action="append", default=[], metavar="ID_OR_DIR",
        help="GAN repo (generator at its root) offered in the GAN tab (Hub id or local folder; repeatable).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="Address to serve on (default 127.0.0.1; 0.0.0.0 to reach it from other machines).")
    parser.add_argument("--port", type=int, default=7860, metavar="N", help="Port to serve on (default 7860).")
    parser.add_argument("--share", action="store_true", help="Also open a temporary public gradio.live link (needs the internet).")
    parser.add_argument("--device", default=None, help="Torch device, e.g. cuda, cpu (default: cuda when available).")
    parser.add_argument("--dtype", choices=DTYPE_CHOICES, default=None, help="Compute precision (default: auto for SR models, float32 for GANs).")
    parser.add_argument(
        "--max-pixels", type=int, default=None, metavar="N",
        help="Refuse uploads with more than N pixels (a public demo's guard; default: no limit).",
    )


def run(args: argparse.Namespace) -> int:
    def error(message: str) -> int:
        print(f"hfmagic demo: error: {message}", file=sys.stderr)
        return 1

    if not 0 < args.port < 65536:
        return error(f"--port must be in 1..65535, got {args.port}")
    if args.max_pixels is not None and args.max_pixels < 1:
        return error(f"--max-pixels must be >= 1, got {args.max_pixels}")
    from ..demo import require_gradio

    try:
        require_gradio()
    except ImportError as err:
        return error(str(err))
    from ..demo import build_demo
    from ..pipelines import resolve_device

    try:
        resolve_device(args.device)
    except ValueError as err:
        return error(f"--device: {err}")
    demo = build_demo(
        models=args.model, gan_models=args.gan_model, device=args.device, dtype=args.dtype, max_input_pixels=args.max_pixels
    )
    print(f"hfmagic demo: serving on http://{args.host}:{args.port} (Ctrl+C stops it)", file=sys.stderr)
    demo.queue().launch(server_name=args.host, server_port=args.port, share=args.share, show_error=False)
    return 0
