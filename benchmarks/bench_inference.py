"""SR inference speed: SRCNN / MSRResNet / EDSR at x2 and x4, against a bare nn.Module copy of the same
network (wrapper overhead) and against the conv roofline, all timed interleaved in the same run.

For every (model, scale, LR size) case one group of variants is timed round-robin (median of
``--repeats`` calls after a warm-up):

- ``eager``: the hfmagic model, fp32, contiguous (NCHW) tensors, ``torch.inference_mode``;
- ``channels_last``: the same model and input in channels_last (NHWC) memory;
- ``pipeline``: ``SuperResolutionPipeline.upscale_tensor``, the library's default inference path
  (``dtype="auto"``: bfloat16 on CPUs with AVX512-BF16/AMX and Ampere+ GPUs, else float32);
- ``pipeline_fp32``: the same with ``dtype="float32"``;
- ``mmagic``: MMagic's own module (``MSRResNet`` / ``EDSRNet`` run from MMagic's source, see
  ``_mmagic_reference.py``; ``--mmagic`` points at a wheel) with the same weights, fp32, eager NCHW,
  as MMagic runs it; without MMagic's source, the bare copy below stands in (reported as such).
  Every row gets ``speedup_vs_mmagic`` = MMagic's time / its time;
- ``compile``: ``torch.compile`` (inductor, with freezing so that convolutions are prepacked and
  fused with their activations) of the channels_last model, where a compiler works;
- ``bf16`` / ``fp16``: autocast, on CUDA only;
- bare twins of ``eager`` and ``channels_last`` (same weights, plain ``nn.Module``);
- the roofline: one Conv2d 64->64 3x3 on a (1, 64, size, size) map, contiguous and channels_last.

Reported per variant: seconds, GFLOP/s (FLOPs counted by ``torch.utils.flop_counter``), output
megapixels/s, ``roofline_ratio`` = GFLOP/s / the faster roofline layout, ``wrapper_overhead`` =
hfmagic time / bare time - 1, and ``max_abs_diff`` against the ``eager`` output.

    python benchmarks/bench_inference.py --quick --json out.json
    python benchmarks/bench_inference.py --models msrresnet edsr --scales 4 --sizes 128
    python benchmarks/bench_inference.py --models msrresnet edsr --scales 4 --sizes 128 \
        --modes mmagic pipeline pipeline_fp32 --mmagic mmagic-1.2.0-py2.py3-none-any.whl
"""

from __future__ import annotations

import argparse
import time

import torch
from _mmagic_reference import load_mmagic_networks, mmagic_twin
from _common import (
    add_common_arguments,
    bare_copy,
    count_flops,
    emit,
    interleaved_medians,
    log,
    machine_info,
    save_partial,
    setup,
)

MODELS = ("srcnn", "msrresnet", "edsr")


def build_model(name: str, scale: int, tiny: bool = False) -> torch.nn.Module:
    """The model with its default (MMagic) architecture (``tiny``: 16 channels, 2 blocks), seeded
    random weights, eval mode."""
    from hfmagic import EDSR, SRCNN, EDSRConfig, MSRResNet, MSRResNetConfig, SRCNNConfig

    torch.manual_seed(0)
    classes = {
        "srcnn": (SRCNN, SRCNNConfig),
        "msrresnet": (MSRResNet, MSRResNetConfig),
        "edsr": (EDSR, EDSRConfig),
    }
    model_cls, config_cls = classes[name]
    small = {
        "srcnn": {"channels": (3, 16, 8, 3)},
        "msrresnet": {"mid_channels": 16, "num_blocks": 2},
        "edsr": {"mid_channels": 16, "num_blocks": 2},
    }
    return model_cls(config_cls(upscale_factor=scale, **(small[name] if tiny else {}))).eval()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument(
        "--models",
        nargs="+",
        choices=MODELS,
        default=None,
        help="models to time (default: all)",
    )
    parser.add_argument(
        "--scales",
        nargs="+",
        type=int,
        default=None,
        help="upscale factors (default 2 4; --quick: 4)",
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=int,
        default=None,
        help="LR input sizes (default 128 256; --quick: 24)",
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        default=None,
        choices=("eager", "channels_last", "pipeline", "pipeline_fp32", "mmagic", "compile", "bf16", "fp16"),
        help="variants (default: all that apply; --quick leaves compile out, it takes ~1 min per model on 2 cores)",
    )
    parser.add_argument(
        "--mmagic",
        default=None,
        metavar="WHEEL_OR_DIR",
        help="MMagic's source for the 'mmagic' reference: a wheel (pip download --no-deps mmagic==1.2.0) or a folder "
        "holding mmagic/ (default: $HFMAGIC_MMAGIC_SOURCE or an installed mmagic; else the bare copy stands in)",
    )
    args = parser.parse_args(argv)
    args.models = args.models or list(MODELS)
    args.scales = args.scales or ([4] if args.quick else [2, 4])
    args.sizes = args.sizes or ([24] if args.quick else [128, 256])
    return args


def compile_model(model: torch.nn.Module, example: torch.Tensor):
    """``torch.compile`` with inductor freezing; returns (compiled callable, seconds) or raises."""
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True  # constant-fold weights: prepacked oneDNN convs fused with ReLU/add
    compiled = torch.compile(model)
    start = time.perf_counter()
    with torch.inference_mode():
        compiled(pixel_values=example)
    return compiled, time.perf_counter() - start


def wrapper_fixed_cost(name: str, scale: int, device: torch.device, repeats: int = 300) -> float:
    """Seconds the hfmagic wrapper (input checks, output dataclass, PreTrainedModel hooks) adds per call,
    measured where it is visible: a tiny copy of the network on a 4x4 input, hfmagic vs bare,
    interleaved, difference of the medians (can be slightly negative: it is below the noise)."""
    model = build_model(name, scale, tiny=True).to(device)
    bare = bare_copy(model)
    x = torch.rand(1, 3, 4, 4, device=device)
    with torch.inference_mode():
        times = interleaved_medians(
            {"hf": lambda: model(pixel_values=x), "bare": lambda: bare(x)},
            repeats,
            device,
            warmup=20,
        )
    return times["hf"] - times["bare"]


def run_case(name: str, scale: int, size: int, args, device: torch.device, modes: list[str], networks=None) -> list[dict]:
    from hfmagic import SuperResolutionPipeline

    model = build_model(name, scale).to(device)
    bare = bare_copy(model)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1)).to(device)
    model_cl = build_model(name, scale).to(device).to(memory_format=torch.channels_last)
    bare_cl = bare_copy(model_cl).to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(device)
    conv_cl = torch.nn.Conv2d(64, 64, 3, padding=1).to(device).to(memory_format=torch.channels_last)
    feat = torch.rand(1, 64, size, size, device=device)
    feat_cl = feat.contiguous(memory_format=torch.channels_last)

    conv_flops = 2 * 64 * 64 * 9 * size * size
    # the roofline conv runs as many times per call as the model has conv FLOPs, so that both take
    # about as long and a load spike on a shared machine hits them alike
    with torch.inference_mode():
        flops = count_flops(lambda: build_model(name, scale).to(device)(pixel_values=x))
    reps = max(1, min(64, round(flops / conv_flops)))

    def repeat(fn):
        return lambda: [fn() for _ in range(reps)]

    fns = {"conv": repeat(lambda: conv(feat)), "conv_channels_last": repeat(lambda: conv_cl(feat_cl))}
    outputs = {}
    if "eager" in modes:
        fns["eager"] = lambda: model(pixel_values=x).reconstruction
        fns["eager/bare"] = lambda: bare(x)
    if "channels_last" in modes:
        fns["channels_last"] = lambda: model_cl(pixel_values=x_cl).reconstruction
        fns["channels_last/bare"] = lambda: bare_cl(x_cl)
    dtypes = {}
    if "pipeline" in modes:
        pipe = SuperResolutionPipeline(build_model(name, scale), device=device)  # the default: dtype="auto"
        fns["pipeline"] = lambda: pipe.upscale_tensor(x)
        dtypes["pipeline"] = str(pipe.dtype).removeprefix("torch.")
    if "pipeline_fp32" in modes:
        pipe_fp32 = SuperResolutionPipeline(build_model(name, scale), device=device, dtype="float32")
        fns["pipeline_fp32"] = lambda: pipe_fp32.upscale_tensor(x)
    reference_label = None
    if "mmagic" in modes:
        mmagic, reference_label = mmagic_twin(model, networks)
        fns["mmagic"] = lambda: mmagic(x)
    compile_info = {}
    if "compile" in modes:
        try:
            compiled, seconds = compile_model(model_cl, x_cl)
            fns["compile"] = lambda: compiled(pixel_values=x_cl).reconstruction
            compile_info = {"compile_seconds": round(seconds, 2)}
        except Exception as err:  # noqa: BLE001  (no compiler / unsupported backend: report and go on
            compile_info = {
                "compile_skipped": f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
            }
            log(f"  compile skipped: {compile_info['compile_skipped']}")
    for dtype_name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        if dtype_name in modes and device.type == "cuda":

            def run_autocast(dtype=dtype):
                with torch.autocast("cuda", dtype=dtype):
                    return model_cl(pixel_values=x_cl).reconstruction

            fns[dtype_name] = run_autocast

    with torch.inference_mode():
        reference = model(pixel_values=x).reconstruction.float()
        for key, fn in fns.items():
            if not key.startswith("conv"):
                outputs[key] = (fn().float().to(device) - reference).abs().max().item()
        times = interleaved_medians(fns, args.repeats, device)

    fixed_cost = wrapper_fixed_cost(name, scale, device, repeats=50 if args.quick else 300)
    roof = {k: reps * conv_flops / times[k] / 1e9 for k in ("conv", "conv_channels_last")}
    roofline = max(roof.values())
    out_megapixels = (size * scale) ** 2 / 1e6
    rows = []
    for mode in [m for m in fns if not m.startswith("conv") and "/bare" not in m]:
        seconds = times[mode]
        row = {
            "model": name,
            "scale": scale,
            "size": size,
            "mode": mode,
            "seconds": seconds,
            "gflop": flops / 1e9,
            "gflop_per_s": flops / seconds / 1e9,
            "megapixels_per_s": out_megapixels / seconds,
            "roofline_gflop_per_s": roofline,
            "roofline_contiguous_gflop_per_s": roof["conv"],
            "roofline_channels_last_gflop_per_s": roof["conv_channels_last"],
            "roofline_ratio": flops / seconds / 1e9 / roofline,
            "max_abs_diff": outputs[mode],
            "dtype": dtypes.get(mode, "float32"),
        }
        if "mmagic" in times:
            row["speedup_vs_mmagic"] = times["mmagic"] / seconds
            row["mmagic_reference"] = reference_label
        if f"{mode}/bare" in times:
            row["bare_seconds"] = times[f"{mode}/bare"]
            row["wrapper_overhead"] = seconds / times[f"{mode}/bare"] - 1.0
            row["bare_max_abs_diff"] = outputs[f"{mode}/bare"]
            # the same overhead from the wrapper's fixed cost per call (robust to load noise)
            row["wrapper_fixed_cost_seconds"] = fixed_cost
            row["wrapper_overhead_from_fixed_cost"] = fixed_cost / seconds
        if mode == "compile":
            row.update(compile_info)
        rows.append(row)
    if "compile" in modes and "compile" not in fns:
        rows.append(
            {
                "model": name,
                "scale": scale,
                "size": size,
                "mode": "compile",
                **compile_info,
            }
        )
    return rows


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = setup(args)
    modes = args.modes or ["eager", "channels_last", "pipeline", "pipeline_fp32", "mmagic"] + ([] if args.quick else ["compile"]) + (
        ["bf16", "fp16"] if device.type == "cuda" else []
    )
    if device.type != "cuda" and {"bf16", "fp16"} & set(modes):
        log("bf16/fp16 autocast modes run on CUDA only: left out on this device.")
        modes = [m for m in modes if m not in ("bf16", "fp16")]
    networks = load_mmagic_networks(args.mmagic) if "mmagic" in modes else None
    if "mmagic" in modes:
        log(f"MMagic reference: {'MMagic source ' + networks.source if networks else 'bare copy (no MMagic source found, see --mmagic)'}")
    results = []
    settings = {"quick": args.quick, "repeats": args.repeats, "modes": modes, "sizes": args.sizes, "scales": args.scales}
    for name in args.models:
        for scale in args.scales:
            for size in args.sizes:
                log(f"{name} x{scale} LR {size}x{size} ...")
                results.extend(run_case(name, scale, size, args, device, modes, networks))
                save_partial(args, {"benchmark": "inference", "settings": settings, "results": results})

    table = [
        f"{'model':10} {'x':>2} {'LR':>4} {'mode':14} {'dtype':8} {'ms':>9} {'GFLOP/s':>8} {'roof%':>6} {'wrap%':>6} {'fix%':>6} {'Mpx/s':>7} {'maxdiff':>8} {'vsMMagic':>8}"
    ]
    for r in results:
        if "seconds" not in r:
            table.append(
                f"{r['model']:10} {r['scale']:>2} {r['size']:>4} {r['mode']:14} skipped: {r.get('compile_skipped')}"
            )
            continue
        wrap = f"{100 * r['wrapper_overhead']:6.1f}" if "wrapper_overhead" in r else "     -"
        wrap += f" {100 * r['wrapper_overhead_from_fixed_cost']:6.3f}" if "wrapper_overhead" in r else "      -"
        versus = f"{r['speedup_vs_mmagic']:7.2f}x" if "speedup_vs_mmagic" in r else "       -"
        table.append(
            f"{r['model']:10} {r['scale']:>2} {r['size']:>4} {r['mode']:14} {r['dtype']:8} {1000 * r['seconds']:9.1f} {r['gflop_per_s']:8.1f} "
            f"{100 * r['roofline_ratio']:6.1f} {wrap} {r['megapixels_per_s']:7.3f} {r['max_abs_diff']:8.1e} {versus}"
        )
    for r in results:  # the target: the default pipeline >= 2x MMagic's module for MSRResNet/EDSR x4
        if r["mode"] == "pipeline" and "speedup_vs_mmagic" in r:
            table.append(
                f"default pipeline ({r['dtype']}) vs {r['mmagic_reference'].split(' (')[0]}, fp32 eager: {r['model']} x{r['scale']} "
                f"LR {r['size']}: {r['speedup_vs_mmagic']:.2f}x"
                + (" (target >= 2x)" if r["scale"] == 4 and r["model"] in ("msrresnet", "edsr") else "")
            )
    report = {
        "benchmark": "inference",
        "machine": machine_info(device),
        "settings": settings,
        "results": results,
    }
    emit(args, report, table)
    return report


if __name__ == "__main__":
    main()
