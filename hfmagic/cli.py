"""The ``hfmagic`` command. Sub-commands live in ``hfmagic/commands/<name>.py``; each module defines
``add_arguments(parser)`` and ``run(args) -> int`` and imports heavy modules (torch, transformers)
only inside ``run``, so ``hfmagic --help`` is instant."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from pathlib import Path

# sub-command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "upscale": ("hfmagic.commands.upscale", "Upscale images or folders of images with a super-resolution model."),
    "sample": ("hfmagic.commands.sample", "Draw images from a GAN generator (DCGAN, StyleGAN2)."),
    "convert": ("hfmagic.commands.convert", "Convert an MMagic, BasicSR, Real-ESRGAN or ESRGAN checkpoint into a from_pretrained folder."),
    "prepare-div2k": ("hfmagic.commands.prepare_div2k", "Cut DIV2K (folder or zip) into HR sub-images as an HF dataset."),
    "evaluate": ("hfmagic.commands.evaluate", "PSNR/SSIM of a super-resolution model on Set5/Set14/... next to bicubic."),
    "evaluate-gan": ("hfmagic.commands.evaluate_gan", "SWD and MS-SSIM (and FID with local Inception weights) of a GAN generator."),
    "demo": ("hfmagic.commands.demo", "Serve a Gradio page to upscale images and draw GAN samples in the browser."),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hfmagic", description="MMagic's SR and GAN models, Hugging Face-native.")
    parser.add_argument("--version", action="version", version=f"hfmagic {importlib.import_module('hfmagic').__version__}")
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="Import a module or .py file first (repeatable), e.g. one that defines your own model and calls "
        "hfmagic.register_model, so that the commands can load it: hfmagic --import my_models upscale ...",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="Show the full traceback of an error (also HFMAGIC_DEBUG=1); by default a mistake prints one line.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        # also after the command (hfmagic upscale ... --debug); SUPPRESS keeps a --debug given before it
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="Show the full traceback of an error.")
        sub.set_defaults(_module=module)
    return parser


def import_user_module(name_or_path: str) -> None:
    """Import a module by name (the current folder is searched too) or a ``.py`` file by path."""
    path = Path(name_or_path)
    if path.suffix == ".py":
        if not path.is_file():
            raise FileNotFoundError(f"--import {name_or_path}: no such file.")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        return
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        importlib.import_module(name_or_path)
    except ModuleNotFoundError as err:
        if err.name != name_or_path.split(".")[0]:
            raise
        raise ModuleNotFoundError(
            f"--import {name_or_path}: no module of that name in the current folder or on PYTHONPATH; "
            "pass a module name (my_models) or a file path (path/to/my_models.py)."
        ) from err


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from .logging_utils import quiet_library_output

    quiet_library_output()  # no "Loading weights" / "Writing model shards" bars; no Hub/datasets bars off a terminal
    from .errors import report_errors, set_debug

    set_debug(args.debug)
    for name in args.imports:
        try:
            import_user_module(name)
        except (FileNotFoundError, ModuleNotFoundError) as err:
            if args.debug:
                raise
            print(f"hfmagic: error: {err}", file=sys.stderr)
            return 2
    # a user mistake (ValueError, OSError) that the command did not word itself: one line, exit 1
    try:
        with report_errors(f"hfmagic {args.command}"):
            return int(args._module.run(args) or 0)
    except SystemExit as exit_:
        return int(exit_.code or 0)


if __name__ == "__main__":
    sys.exit(main())
