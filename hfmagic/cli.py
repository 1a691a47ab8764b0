"""The ``hfmagic`` command. Sub-commands live in ``hfmagic/commands/<name>.py``; each module defines
``add_arguments(parser)`` and ``run(args) -> int`` and imports heavy modules (torch, transformers)
only inside ``run``, so ``hfmagic --help`` is instant."""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "upscale": ("hfmagic.commands.upscale", "Upscale images or folders of images with a super-resolution model."),
    "sample": ("hfmagic.commands.sample", "Draw images from a GAN generator (DCGAN)."),
    "convert": ("hfmagic.commands.convert", "Convert an MMagic or BasicSR checkpoint into a from_pretrained folder."),
    "prepare-div2k": ("hfmagic.commands.prepare_div2k", "Cut DIV2K (folder or zip) into HR sub-images as an HF dataset."),
    "evaluate": ("hfmagic.commands.evaluate", "PSNR/SSIM of a super-resolution model on Set5/Set14/... next to bicubic."),
    "evaluate-gan": ("hfmagic.commands.evaluate_gan", "SWD and MS-SSIM (and FID with local Inception weights) of a GAN generator."),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hfmagic", description="MMagic's SR and GAN models, Hugging Face-native.")
    parser.add_argument("--version", action="version", version=f"hfmagic {importlib.import_module('hfmagic').__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    return int(args._module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
