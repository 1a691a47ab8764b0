"""bf16 vs fp32 quality of ``SuperResolutionPipeline`` with trained weights: Y-PSNR against ground truth.

Decides whether ``dtype="auto"`` may pick bfloat16: for every model, each HR photo is cropped to a
multiple of the scale and degraded with hfmagic's MATLAB bicubic (``load_eval_set`` on a folder),
upscaled by the pipeline in float32 and in bfloat16 (same weights, default kernels, uint8 output as
``pipe(image)`` returns it), and scored on the Y channel with ``crop_border = scale`` (the papers'
convention). Printed per model: both mean Y-PSNRs, their difference, the largest per-image
difference and the largest pixel difference between the two outputs; the check holds when every
per-image difference is within ``--tolerance`` (0.05 dB).

    python benchmarks/bench_bf16_quality.py --model runs/quick-x4/final
    python benchmarks/bench_bf16_quality.py --model runs/a/final --model runs/b/final --as-mmagic
    python benchmarks/bench_bf16_quality.py --mmagic-checkpoint msrresnet path/to/mmagic.pth
    python benchmarks/bench_bf16_quality.py --quick     # a tiny random model: checks the script runs

``--as-mmagic`` also writes each ``--model`` as an MMagic checkpoint (``state_dict`` with
``generator.`` keys, ``meta``), converts it back with ``hfmagic.convert.convert_checkpoint`` and
measures the converted model: the conversion path, not MMagic-trained weights.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from _common import emit, log, machine_info

DEFAULT_TOLERANCE_DB = 0.05


def compare_dtypes(
    model: torch.nn.Module,
    eval_sets: Mapping[str, Iterable[tuple[str, np.ndarray, np.ndarray]]],
    device: str = "cpu",
    low_precision: str = "bfloat16",
    crop_border: int | None = None,
    tolerance_db: float = DEFAULT_TOLERANCE_DB,
) -> dict:
    """Y-PSNR of ``SuperResolutionPipeline(model)`` in float32 and in ``low_precision``.

    Args:
        model: an hfmagic SR model (left as it is: each dtype runs on a copy).
        eval_sets: ``{set name: iterable of (image name, LR uint8 HWC RGB, HR uint8 HWC RGB)}``,
            e.g. ``{"photos": load_eval_set(folder, scale)}``.
        device: where both pipelines run.
        low_precision: the dtype compared with float32.
        crop_border: pixels left out at each side; default the scale.
        tolerance_db: the largest per-image |difference| for which ``holds`` is true.
    Returns:
        ``{"psnr_float32", "psnr_<low>", "delta_db"`` (mean low - mean float32),
        ``"max_abs_image_delta_db", "max_level_diff"`` (uint8 levels between the two outputs),
        ``"num_images", "holds", "images": [{"set", "name", "psnr_float32", "psnr_<low>", "delta_db",
        "max_level_diff"}]}``.
    """
    from hfmagic import SuperResolutionPipeline
    from hfmagic.metrics import psnr

    scale = int(model.config.upscale_factor)
    crop = scale if crop_border is None else crop_border
    pipes = {
        name: SuperResolutionPipeline(copy.deepcopy(model), device=device, dtype=name)
        for name in ("float32", low_precision)
    }
    rows = []
    for set_name, triples in eval_sets.items():
        for name, lr, hr in triples:
            outputs = {key: pipe.upscale_array(lr) for key, pipe in pipes.items()}
            height, width = outputs["float32"].shape[:2]
            if not (height <= hr.shape[0] < height + scale and width <= hr.shape[1] < width + scale):
                raise ValueError(f"{set_name}/{name}: HR {hr.shape} does not match the x{scale} output {outputs['float32'].shape}.")
            truth = hr[:height, :width]
            row = {"set": set_name, "name": name}
            for key, out in outputs.items():
                row[f"psnr_{key}"] = float(psnr(truth, out, crop, y_channel=True))
            row["delta_db"] = row[f"psnr_{low_precision}"] - row["psnr_float32"]
            row["max_level_diff"] = int(np.abs(outputs["float32"].astype(np.int16) - outputs[low_precision]).max())
            rows.append(row)
    if not rows:
        raise ValueError("No images to evaluate.")
    result = {key: float(np.mean([r[key] for r in rows])) for key in ("psnr_float32", f"psnr_{low_precision}")}
    result["delta_db"] = result[f"psnr_{low_precision}"] - result["psnr_float32"]
    result["max_abs_image_delta_db"] = max(abs(r["delta_db"]) for r in rows)
    result["max_level_diff"] = max(r["max_level_diff"] for r in rows)
    result["num_images"] = len(rows)
    result["holds"] = bool(result["max_abs_image_delta_db"] <= tolerance_db)
    result["images"] = rows
    return result


def mmagic_checkpoint_of(model: torch.nn.Module, path: Path) -> Path:
    """Write ``model``'s weights as an MMagic/MMEngine checkpoint (``generator.`` keys under
    ``state_dict``, plus ``meta``): MMagic's names are hfmagic's, see ``hfmagic.convert``."""
    state = {f"generator.{k}": v.detach().clone() for k, v in model.state_dict().items()}
    torch.save({"meta": {"mmagic_version": "1.2.0", "note": "written by bench_bf16_quality.py"}, "state_dict": state}, path)
    return path


def _tiny_model():
    from hfmagic import MSRResNet, MSRResNetConfig

    torch.manual_seed(0)
    return MSRResNet(MSRResNetConfig(upscale_factor=4, mid_channels=16, num_blocks=2)).eval()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", default=[], metavar="FOLDER", help="from_pretrained folder of a trained SR model (repeatable)")
    parser.add_argument(
        "--mmagic-checkpoint",
        nargs=2,
        action="append",
        default=[],
        metavar=("ARCH", "PATH"),
        help="an MMagic checkpoint to convert with hfmagic.convert and measure, e.g. msrresnet ckpt.pth (repeatable)",
    )
    parser.add_argument("--as-mmagic", action="store_true", help="also measure each --model after a round trip through an MMagic checkpoint and hfmagic.convert")
    parser.add_argument("--images", nargs="+", default=None, metavar="DIR", help="folders of HR photos (default: hfmagic's embedded train and validation photos)")
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16"), help="the precision compared with float32 (default bfloat16)")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE_DB, help="largest per-image Y-PSNR difference in dB (default 0.05)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--quick", action="store_true", help="a tiny random MSRResNet x4 on the validation photo (seconds)")
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH", help="write the results as JSON to PATH ('-': stdout)")
    args = parser.parse_args(argv)
    if not (args.quick or args.model or args.mmagic_checkpoint):
        parser.error("give --model FOLDER and/or --mmagic-checkpoint ARCH PATH (or --quick)")
    return args


def _load(folder: str | Path) -> torch.nn.Module:
    from hfmagic import SuperResolutionPipeline

    return SuperResolutionPipeline.from_pretrained(folder, device="cpu", dtype="float32").model


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from hfmagic.convert import convert_checkpoint
    from hfmagic.data import load_eval_set
    from hfmagic.data.embedded import embedded_sr_train_dir, embedded_sr_validation_dir
    from hfmagic.pipelines import native_bf16

    models: list[tuple[str, torch.nn.Module]] = []
    work = tempfile.TemporaryDirectory(prefix="bf16-quality-")
    if args.quick:
        models.append(("tiny random MSRResNet x4 (--quick)", _tiny_model()))
    for folder in args.model:
        model = _load(folder)
        models.append((str(folder), model))
        if args.as_mmagic:
            checkpoint = mmagic_checkpoint_of(model, Path(work.name) / f"{len(models)}.pth")
            arch = type(model).__name__.lower()
            converted = convert_checkpoint(checkpoint, arch=arch, scale=model.config.upscale_factor)
            models.append((f"{folder} -> MMagic checkpoint -> hfmagic.convert", converted.eval()))
    for arch, path in args.mmagic_checkpoint:
        models.append((f"{path} (MMagic, converted)", convert_checkpoint(path, arch=arch).eval()))

    folders = args.images or ([embedded_sr_validation_dir()] if args.quick else [embedded_sr_train_dir(), embedded_sr_validation_dir()])
    results = []
    for label, model in models:
        scale = int(model.config.upscale_factor)
        sets = {Path(folder).name: load_eval_set(folder, scale) for folder in folders}
        log(f"{label}: float32 vs {args.dtype} on {sum(len(s) for s in sets.values())} photos ...")
        result = compare_dtypes(model, sets, device=args.device, low_precision=args.dtype, tolerance_db=args.tolerance)
        results.append({"model": label, "arch": type(model).__name__, "scale": scale, **result})

    low = args.dtype
    table = [f"{'model':60} {'Y-PSNR fp32':>11} {'Y-PSNR ' + low:>16} {'delta dB':>9} {'max |img delta|':>15} {'max levels':>10} {'holds':>5}"]
    for r in results:
        table.append(
            f"{r['model'][-60:]:60} {r['psnr_float32']:11.4f} {r['psnr_' + low]:16.4f} {r['delta_db']:+9.4f} "
            f"{r['max_abs_image_delta_db']:15.4f} {r['max_level_diff']:10d} {'yes' if r['holds'] else 'NO':>5}"
        )
    device = torch.device(args.device)
    table.append(f"tolerance {args.tolerance} dB per image; native bf16 on {device}: {native_bf16(device)}")
    report = {
        "benchmark": "bf16_quality",
        "machine": {**machine_info(device), "native_bf16": native_bf16(device)},
        "settings": {"quick": args.quick, "dtype": low, "tolerance_db": args.tolerance, "images": [str(f) for f in folders]},
        "results": results,
        "holds": all(r["holds"] for r in results),
    }
    emit(args, report, table)
    work.cleanup()
    return report


if __name__ == "__main__":
    main()
