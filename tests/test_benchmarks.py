"""The benchmark scripts run (``--quick``) and report sane, complete JSON. Timings are never asserted:
only keys, shapes of the report, positivity, and the numerical checks the scripts make."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def _run(script: str, tmp_path, *extra: str) -> dict:
    out = tmp_path / f"{script}.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, str(BENCH / script), "--quick", "--json", str(out), "--threads", "1", *extra]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    machine = report["machine"]
    assert machine["torch"] and machine["cpu_count"] >= 1 and machine["device"] == "cpu"
    assert report["settings"]["quick"] is True
    return report


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_bench_inference_quick(tmp_path):
    from hfmagic.pipelines.device import _cpu_has_native_bf16  # what "auto" sees in the script's process

    report = _run("bench_inference.py", tmp_path)
    rows = report["results"]
    assert {(r["model"], r["mode"]) for r in rows} == {
        (m, mode) for m in ("srcnn", "msrresnet", "edsr") for mode in ("eager", "channels_last", "pipeline", "pipeline_fp32", "mmagic")
    }
    for r in rows:
        assert r["scale"] == 4 and r["size"] == 24
        for key in (
            "seconds",
            "gflop",
            "gflop_per_s",
            "megapixels_per_s",
            "roofline_gflop_per_s",
            "roofline_ratio",
        ):
            assert _positive(r[key]), (key, r)
        # FLOPs are counted, not timed: MSRResNet x4 is ~84 GFLOP at 128x128, so ~2.9 at 24x24
        if r["model"] == "msrresnet":
            assert 2.5 < r["gflop"] < 3.3
        assert r["gflop_per_s"] == pytest.approx(r["gflop"] / r["seconds"])
        # every float32 fast path computes the same image as the plain model; the default pipeline
        # is bfloat16 on CPUs that compute it natively (dtype="auto"): its 8 significant bits
        assert r["dtype"] == ("bfloat16" if r["mode"] == "pipeline" and _cpu_has_native_bf16() else "float32"), r
        assert r["max_abs_diff"] <= (1e-4 if r["dtype"] == "float32" else 5e-2), r
        # the MMagic reference (its own module, or the bare copy without MMagic's source): same weights
        assert _positive(r["speedup_vs_mmagic"]) and r["mmagic_reference"]
        if r["mode"] == "mmagic":
            assert r["max_abs_diff"] <= 1e-5 and r["speedup_vs_mmagic"] == 1.0
        if r["mode"] in ("eager", "channels_last"):
            assert r["bare_max_abs_diff"] <= 1e-5 and r["wrapper_overhead"] > -1
            assert abs(r["wrapper_fixed_cost_seconds"]) < r["seconds"]


@pytest.mark.slow
def test_bench_tiling_quick(tmp_path):
    report = _run("bench_tiling.py", tmp_path)
    rows = report["results"]
    assert [(r["output_wh"], r["tile_size"], r["method"]) for r in rows] == [
        ([64, 48], None, "whole"),
        ([64, 48], 8, "two_stage"),
        ([192, 160], 16, "two_stage"),
        ([192, 160], 16, "single_stage"),
    ]
    assert rows[1]["max_uint8_diff_vs_whole"] <= 1  # two-stage tiling is exact tiling too
    assert rows[3]["work_ratio"] > rows[2]["work_ratio"] >= 1.0
    for r in rows:
        assert "error" not in r, r
        assert _positive(r["seconds"]) and _positive(r["time_ratio"])
        assert r["peak_rss_mb"] >= r["baseline_rss_mb"] > 50  # a process with torch loaded
        assert r["within_memory_limit"]
    assert rows[0]["time_ratio"] == 1.0
    same = report["same_run"]
    assert "error" not in same, same
    for key in ("whole_seconds", "single_stage_time_ratio", "two_stage_time_ratio", "single_stage_work_ratio", "two_stage_work_ratio"):
        assert _positive(same[key]), key
    assert same["single_stage_work_ratio"] > same["two_stage_work_ratio"] >= 1.0  # less context to recompute


@pytest.mark.slow
def test_bench_train_quick(tmp_path):
    report = _run("bench_train.py", tmp_path, "--workers", "1")
    sr, gan, data = report["sr"], report["gan"], report["data"]
    assert sr["batch_size"] == 4 and sr["steps_timed"] >= 2 and _positive(sr["channels_last_speedup"])
    for part in (sr, gan):
        for key in (
            "hfmagic_step_seconds",
            "bare_step_seconds",
            "hfmagic_samples_per_s",
            "bare_samples_per_s",
        ):
            assert _positive(part[key]), (key, part)
        assert part["loop_overhead"] > -1
    assert gan["batch_size"] == 8 and gan["image_size"] == 16 and gan["steps_timed"] >= 2
    # decoding a whole 4x larger PNG is slower than decoding a sub-image: ratio sane, never timed as a target
    assert _positive(data["subimage_speedup"]) and data["full_png_bytes"] > data["subimage_png_bytes"]
    for key in (
        "full_pairs_per_s_per_worker",
        "subimage_pairs_per_s_per_worker",
        "device_pairs_per_s",
        "train_samples_per_s_from_subimages",
        "loader_cpu_share",
        "device_loader_vs_consumption",
        "train_samples_per_s_device_data",
    ):
        assert _positive(data[key]), key
    assert data["train_workers"] == 1
    # train_sr.py with python and under accelerate launch: --threads becomes the scripts' --num_threads
    launch = report["launch"]
    for key in ("bare_samples_per_s", "python_samples_per_s", "launcher_samples_per_s", "python_ratio", "launcher_ratio"):
        assert _positive(launch[key]), key
    assert launch["launcher_ratio"] == pytest.approx(launch["launcher_samples_per_s"] / launch["bare_samples_per_s"])  # one round
    assert launch["python_threads"] == launch["launcher_threads"] == launch["bare_threads"] == 1
    assert "--num_threads" in launch["launcher_threads_reason"] and launch["batch_size"] == 4


@pytest.mark.slow
def test_bench_realesrganer_quick(tmp_path):
    from hfmagic.pipelines.device import _cpu_has_native_bf16  # what "auto" sees in the workers

    report = _run("bench_realesrganer.py", tmp_path)
    settings, summary, eq = report["settings"], report["summary"], report["equality"]
    assert settings["input_wh"] == [48, 36] and settings["output_wh"] == [192, 144]
    assert settings["realesrganer"] == {"tile": 16, "tile_pad": 10, "pre_pad": 0, "half": False, "dtype": "float32"}
    # interleaved rounds, one process per call: A, B then B, A
    assert [r["variant"] for r in report["rounds"]] == ["realesrganer", "hfmagic", "hfmagic", "realesrganer"]
    for r in report["rounds"]:
        assert _positive(r["seconds"]) and r["peak_rss_mb"] >= r["baseline_rss_mb"] > 50
    assert summary["hfmagic_dtype"] == ("bfloat16" if _cpu_has_native_bf16() else "float32")
    assert summary["speedup"] == pytest.approx(summary["realesrganer_seconds"] / summary["hfmagic_seconds"])
    # 3x3 tiles of 16 with up to 10 px of context, clamped at the border: x 26 + 36 + 26, y 26 + 30 + 14
    assert summary["realesrganer_work_ratio"] == pytest.approx((26 + 36 + 26) * (26 + 30 + 14) / (48 * 36))
    assert eq["bare_vs_hfmagic_module_max_abs"] <= 1e-5  # BasicSR's module and hfmagic's: same weights, same output
    assert 0.3 < eq["whole_image_fp32_output_mean"] < 0.7 and eq["whole_image_fp32_output_std"] > 0.1  # image-like
    # the float32 pipeline is the whole-image forward up to float rounding; the tiler's seams lie along its tile borders
    assert eq["hfmagic_fp32_pipeline_vs_whole_float"]["max"] <= 1e-4
    assert eq["hfmagic_fp32_pipeline_vs_whole_uint8"]["max"] <= 1
    seams = eq["realesrganer_vs_whole_float"]
    assert seams["max"] > 1e-6 and seams["max_distance_to_tile_border_px"] < eq["border_band_hr_px"]
    assert seams["mean_near_borders"] > seams["mean_elsewhere"]
    assert eq["hfmagic_default_vs_whole_uint8"]["max"] <= (10 if summary["hfmagic_dtype"] == "bfloat16" else 1)


def test_bench_train_data_part_without_datasets_and_partial_json(tmp_path):
    # the GPU machine has no `datasets`: the device path is still measured, and the JSON written
    out = tmp_path / "data.json"
    code = (
        "import sys, runpy; sys.modules['datasets'] = None; "
        f"sys.argv = ['bench_train.py', '--quick', '--parts', 'data', '--threads', '1', '--json', {str(out)!r}]; "
        f"runpy.run_path({str(BENCH / 'bench_train.py')!r}, run_name='__main__')"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(BENCH)])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(out.read_text())["data"]
    assert data["png_pipeline_skipped"] == "datasets is not installed" and _positive(data["device_pairs_per_s"])
    assert "PNG pipeline skipped" in done.stdout


def test_save_partial_writes_what_was_measured(tmp_path):
    sys.path.insert(0, str(BENCH))
    try:
        from _common import save_partial
    finally:
        sys.path.remove(str(BENCH))
    args = type("Args", (), {"json": str(tmp_path / "p.json")})()
    save_partial(args, {"results": [1]})
    assert json.loads((tmp_path / "p.json").read_text()) == {"results": [1], "partial": True}
    args.json = "-"
    save_partial(args, {"results": [2]})  # stdout JSON: only the final one is printed


def test_gpu_script_is_prepared():
    script = (BENCH / "gpu_all.sh").read_text()
    for name in (
        "bench_inference.py",
        "bench_tiling.py",
        "bench_train.py",
        "test_gpu_pipeline.py",
    ):
        assert name in script
    assert 'DEVICE="${DEVICE:-cuda}"' in script and script.count('--device "$DEVICE"') == 4 and "bf16" in script
    assert os.access(BENCH / "gpu_all.sh", os.X_OK)
    # every step has its own limit, and together they fit in one 10-minute device command
    import re

    limits = [int(n) for n in re.findall(r"^step (\d+) ", script, flags=re.M)]
    assert len(limits) == 5 and sum(limits) <= 580, limits
    # python3 (the GPU image's interpreter with PyTorch), one log file (few files come back)
    assert 'PY="${PYTHON:-$(command -v python3' in script and "2>> \"$OUT/logs.txt\"" in script
    assert not re.search(r"^step \d+ \w+ python ", script, flags=re.M)


# --------------------------------------------------------------------------------------------
# performance defaults of the library (fast tests)
# --------------------------------------------------------------------------------------------


def _tiny(kind: str, scale: int):
    import torch

    from hfmagic import EDSR, SRCNN, EDSRConfig, MSRResNet, MSRResNetConfig, SRCNNConfig

    torch.manual_seed(0)
    if kind == "srcnn":
        return SRCNN(SRCNNConfig(upscale_factor=scale, channels=(3, 8, 4, 3)))
    if kind == "msrresnet":
        return MSRResNet(MSRResNetConfig(upscale_factor=scale, mid_channels=8, num_blocks=2))
    return EDSR(EDSRConfig(upscale_factor=scale, mid_channels=8, num_blocks=2))


@pytest.mark.parametrize("kind", ["srcnn", "msrresnet", "edsr"])
def test_pipeline_runs_channels_last_by_default_with_equal_outputs(kind):
    import torch

    from hfmagic import SuperResolutionPipeline

    x = torch.rand(1, 3, 13, 11, generator=torch.Generator().manual_seed(1))
    fast = SuperResolutionPipeline(_tiny(kind, 4), device="cpu")
    plain = SuperResolutionPipeline(_tiny(kind, 4), device="cpu", channels_last=False)
    seen = []
    fast.model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["pixel_values"]),
        with_kwargs=True,
    )
    out_fast, out_plain = fast.upscale_tensor(x), plain.upscale_tensor(x)
    assert seen[0].is_contiguous(memory_format=torch.channels_last) and not seen[0].is_contiguous()
    conv = next(m for m in fast.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not next(m for m in plain.model.modules() if isinstance(m, torch.nn.Conv2d)).weight.is_contiguous(
        memory_format=torch.channels_last
    )
    torch.testing.assert_close(out_fast, out_plain, rtol=0, atol=1e-5)
    torch.testing.assert_close(fast.upscale_tensor(x, tile_size=5), out_plain, rtol=0, atol=1e-5)


def test_pipeline_keeps_nchw_for_the_native_cpu_convolution():
    # With oneDNN off, PyTorch's native convolution is only shape-invariant (exact tiling) in NCHW.
    import torch

    from hfmagic import SuperResolutionPipeline

    pipe = SuperResolutionPipeline(_tiny("edsr", 2), device="cpu")
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    pipe.upscale_tensor(x)
    with torch.backends.mkldnn.flags(enabled=False):
        whole = pipe.upscale_tensor(x)
        conv = pipe.model.conv_first
        assert conv.weight.is_contiguous()
        assert torch.equal(pipe.upscale_tensor(x, tile_size=4), whole)


def test_bf16_quality_core_scores_both_dtypes_on_a_tiny_model(tmp_path):
    import numpy as np
    import torch

    from hfmagic.convert import convert_checkpoint
    from hfmagic.data import imresize
    from hfmagic.evaluation import upscale_image
    from hfmagic.metrics import psnr

    sys.path.insert(0, str(BENCH))
    try:
        from bench_bf16_quality import compare_dtypes, mmagic_checkpoint_of
    finally:
        sys.path.remove(str(BENCH))
    model = _tiny("msrresnet", 2).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    yy, xx = np.mgrid[0:24, 0:20]
    hr = np.stack([128 + 100 * np.sin(xx / (3 + c)) * np.cos(yy / (4 + c)) for c in range(3)], axis=-1).astype(np.uint8)
    triples = [("a", imresize(hr, 1 / 2, round_uint8=True), hr), ("b", imresize(hr[::-1].copy(), 1 / 2, round_uint8=True), hr[::-1].copy())]
    result = compare_dtypes(model, {"toy": triples})
    assert result["num_images"] == 2 and [r["name"] for r in result["images"]] == ["a", "b"]
    # float32: the plain model's output, scored independently (Y, crop = scale); a rare rounding flip aside
    for row, (_, lr, truth) in zip(result["images"], triples):
        assert row["psnr_float32"] == pytest.approx(psnr(truth, upscale_image(model, lr), 2, y_channel=True), abs=0.02)
        assert row["delta_db"] == pytest.approx(row["psnr_bfloat16"] - row["psnr_float32"])
    assert result["psnr_bfloat16"] == pytest.approx(np.mean([r["psnr_bfloat16"] for r in result["images"]]))
    assert result["delta_db"] == pytest.approx(result["psnr_bfloat16"] - result["psnr_float32"])
    assert 1 <= result["max_level_diff"] <= 10  # really computed in bf16, and close
    assert result["holds"] is (result["max_abs_image_delta_db"] <= 0.05)
    assert compare_dtypes(model, {"toy": triples[:1]}, tolerance_db=-1.0)["holds"] is False
    # the model is left as it was (each dtype runs on a copy)
    assert all(torch.equal(v, before[k]) and v.dtype == torch.float32 for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="does not match the x2 output"):
        compare_dtypes(model, {"toy": [("c", triples[0][1], hr[:10])]})
    # the MMagic checkpoint it writes converts back to the same weights
    converted = convert_checkpoint(mmagic_checkpoint_of(model, tmp_path / "m.pth"), arch="msrresnet", scale=2)
    assert all(torch.equal(v, before[k]) for k, v in converted.state_dict().items())


@pytest.mark.slow
def test_bench_stylegan2_quick(tmp_path):
    report = _run("bench_stylegan2.py", tmp_path)
    rows = {r["variant"]: r for r in report["results"]}
    assert set(rows) == {"hfmagic", "mmagic"} and report["settings"]["out_size"] == 8 and report["mmagic_reference"]
    assert _positive(rows["hfmagic"]["seconds"]) and _positive(rows["hfmagic"]["speedup_vs_mmagic"])
    assert rows["hfmagic"]["max_abs_diff"] <= 1e-5  # the same images as MMagic's module (or the literal reference)
