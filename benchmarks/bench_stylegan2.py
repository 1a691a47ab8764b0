"""StyleGAN2 generator forward on CPU: hfmagic's vs MMagic's own module, same weights, same styles
and injected noise, same run (timed interleaved), fp32, eager.

MMagic's module is run from its source files (``_mmagic_stylegan2.py``: mmcv's ops replaced by
their pure-PyTorch reference definitions, which is what MMagic runs on CPU); ``--mmagic`` points
at the mmagic 1.2.0 wheel (default: $HFMAGIC_MMAGIC_SOURCE or an installed mmagic). Without it,
the reference is hfmagic's generator with ``upfirdn2d`` swapped for the literal reference
(zero insertion, padding, 2-D depthwise convolution, decimation), and the report says so.

Default: out_size 256, channel_multiplier 2 ("config-f"), batch 1; ``--quick``: out_size 8.
Reported: median seconds, speed-up (MMagic time / hfmagic time), max |difference| of the images.
"""

from __future__ import annotations

import argparse
import sys
from unittest import mock

import torch

from _common import add_common_arguments, emit, interleaved_medians, log, machine_info, setup
from _mmagic_stylegan2 import load_mmagic_stylegan2, mmagic_twins, reference_upfirdn2d


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--size", type=int, default=None, help="out_size (default 256, --quick 8)")
    parser.add_argument("--batch", type=int, default=1, help="images per forward (default 1)")
    parser.add_argument("--mmagic", default=None, help="mmagic wheel or folder (default: $HFMAGIC_MMAGIC_SOURCE / installed)")
    return parser.parse_args(argv)


def _reference_generator(generator):
    """hfmagic's generator whose ``upfirdn2d`` is the literal reference (the 2-D kernels)."""
    import hfmagic.models.stylegan2.ops_stylegan2 as ops

    def literal(x, f, up=1, down=1, padding=0):
        f2d = torch.outer(f, f) if f.dim() == 1 else f
        return reference_upfirdn2d(x, f2d.to(x.dtype), up=up, down=down, padding=padding)

    def run(*args, **kwargs):
        with mock.patch.object(ops, "upfirdn2d", literal):
            return generator(*args, **kwargs)

    return run


def main(argv=None) -> int:
    args = parse_args(argv)
    device = setup(args)
    from hfmagic import StyleGAN2Config, StyleGAN2Generator

    size = args.size or (8 if args.quick else 256)
    config = StyleGAN2Config(out_size=size, style_channels=512, channel_multiplier=2)
    torch.manual_seed(0)
    generator = StyleGAN2Generator(config).to(device).eval()
    with torch.no_grad():  # trained-like weights: non-zero noise strengths and biases
        for name, p in generator.named_parameters():
            if name.endswith(("noise_injector.weight", "activate.bias", "to_rgb1.bias")) or ".bias" in name and "to_rgbs" in name:
                p.normal_(0, 0.1)
    networks = load_mmagic_stylegan2(args.mmagic)
    if networks is not None:
        twin, _ = mmagic_twins(generator, None, networks)
        reference = f"MMagic's own module ({networks.source})"
    else:
        twin = _reference_generator(generator)
        reference = "hfmagic's layers with the literal upfirdn2d (MMagic's source not found)"
    log(f"reference: {reference}")
    z = torch.randn(args.batch, 512, device=device)
    noise = [n.to(device) for n in generator.make_injected_noise()]
    with torch.no_grad():
        ours, theirs = generator(z, injected_noise=noise), twin(z, injected_noise=noise)
        diff = (ours - theirs).abs().max().item()

        def run_ours():
            return generator(z, injected_noise=noise)

        def run_theirs():
            return twin(z, injected_noise=noise)

        times = interleaved_medians({"hfmagic": run_ours, "mmagic": run_theirs}, args.repeats, device)
    speedup = times["mmagic"] / times["hfmagic"]
    results = {
        "machine": machine_info(device),
        "settings": {"quick": args.quick, "out_size": size, "batch": args.batch, "repeats": args.repeats, "threads": torch.get_num_threads()},
        "mmagic_reference": reference,
        "results": [
            {"variant": "hfmagic", "seconds": times["hfmagic"], "speedup_vs_mmagic": speedup, "max_abs_diff": diff},
            {"variant": "mmagic", "seconds": times["mmagic"], "speedup_vs_mmagic": 1.0, "max_abs_diff": 0.0},
        ],
    }
    table = [
        f"StyleGAN2 generator {size}x{size}, batch {args.batch}, {device}, {torch.get_num_threads()} threads; reference: {reference}",
        f"  hfmagic {times['hfmagic'] * 1000:9.1f} ms   x{speedup:.2f} vs MMagic   max |diff| {diff:.2e}",
        f"  mmagic  {times['mmagic'] * 1000:9.1f} ms",
    ]
    emit(args, results, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
