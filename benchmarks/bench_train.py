"""Training throughput: hfmagic's loops against a bare PyTorch loop in the same run, and the SR data
pipeline's pairs/s.

- ``sr``: MSRResNet x4, batch 16, gt 128, Adam, L1. ``hfmagic.training.train_sr`` runs with a
  callback that, after every hfmagic step, runs one step of a bare loop (a plain ``nn.Module`` copy
  with the same weights, its own Adam, batches from memory). The hfmagic step time is the interval
  between callbacks minus the bare step run inside it, so the two alternate step by step.
- ``gan``: DCGAN 64x64, batch 128, Adam (0.5, 0.999). ``train_gan_loop`` with a ``GAN`` whose
  ``train_step`` also runs one bare step (copies of G and D, same losses and schedule) right after it.
- ``data``: pairs/s of ``build_sr_dataset`` in one process (= per DataLoader worker) from whole
  2040x1356 PNGs vs prepared 480x480 sub-image PNGs (synthetic textured images), timed interleaved;
  then ``train_sr`` fed by 2 workers from the sub-images against the in-memory run above (is the
  loader the bottleneck?), and the device-resident path (``DeviceSRData``) pairs/s.
- ``launch``: samples/s of ``examples/train_sr.py`` (MSRResNet x2, batch 16, gt 64, constant lr) run
  with plain ``python`` and under ``accelerate launch --num_processes 1`` (which sets
  ``OMP_NUM_THREADS=1``), against a bare forward/backward/Adam step timed in this process between the
  runs (CPU only; target: the launcher >= 0.85x the bare step).

    python benchmarks/bench_train.py --quick --json out.json
    python benchmarks/bench_train.py --parts sr data --steps 6
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import statistics
import tempfile
import time

import numpy as np
import torch
from _common import (
    add_common_arguments,
    bare_copy,
    emit,
    interleaved_medians,
    log,
    machine_info,
    save_partial,
    setup,
    synchronize,
)
from torch.nn import functional as F

PARTS = ("sr", "gan", "data", "launch")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to measure")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed training steps per loop (default: --repeats)",
    )
    parser.add_argument(
        "--mixed-precision",
        choices=("no", "bf16", "fp16"),
        default="no",
        help="autocast for both loops (GPU)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="DataLoader workers of the loader-bottleneck check",
    )
    args = parser.parse_args(argv)
    return args


def _autocast(device: torch.device, mixed_precision: str):
    if mixed_precision == "no":
        return contextlib.nullcontext()
    return torch.autocast(
        device.type,
        dtype=torch.bfloat16 if mixed_precision == "bf16" else torch.float16,
    )


def _accelerator(device: torch.device, mixed_precision: str, **kwargs):
    from accelerate import Accelerator

    return Accelerator(cpu=device.type == "cpu", mixed_precision=mixed_precision, **kwargs)


# --------------------------------------------------------------------------- SR


def bench_sr(args, device: torch.device, train_data=None, num_workers: int = 0) -> dict:
    """hfmagic train_sr steps vs bare steps (alternating); ``train_data`` (a dataset read by
    ``num_workers`` workers, or a ``DeviceSRData``) replaces the in-memory tensors (then no bare loop
    runs: only train_sr's own samples/s is reported)."""
    from hfmagic import MSRResNet, MSRResNetConfig
    from hfmagic.training import SRTrainingArguments, train_sr

    batch, gt = (4, 32) if args.quick else (16, 128)
    config = MSRResNetConfig(
        upscale_factor=4,
        **({"mid_channels": 16, "num_blocks": 2} if args.quick else {}),
    )
    torch.manual_seed(0)
    model = MSRResNet(config)
    lq = gt // 4
    steps = args.steps or args.repeats
    memory = [{"pixel_values": torch.rand(3, lq, lq), "labels": torch.rand(3, gt, gt)} for _ in range(2 * batch)]
    train_data = memory if train_data is None else train_data
    # with workers or batches made on the device the loop is compared with the in-memory run instead
    with_bare = train_data is memory and num_workers == 0
    bare = bare_copy(model).to(device).train()
    bare_opt = torch.optim.Adam(bare.parameters(), lr=2e-4, betas=(0.9, 0.999))
    first = memory[:batch]
    x = torch.stack([item["pixel_values"] for item in first]).to(device)
    y = torch.stack([item["labels"] for item in first]).to(device)

    # the bare loop again in channels_last memory: what channels_last would bring to training
    bare_cl = bare_copy(model).to(device).train().to(memory_format=torch.channels_last)
    bare_cl_opt = torch.optim.Adam(bare_cl.parameters(), lr=2e-4, betas=(0.9, 0.999))
    x_cl, y_cl = (
        x.contiguous(memory_format=torch.channels_last),
        y.contiguous(memory_format=torch.channels_last),
    )

    def bare_step(net=bare, opt=bare_opt, inputs=x, targets=y):
        with _autocast(device, args.mixed_precision):
            loss = F.l1_loss(net(inputs), targets)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    hf_times, bare_times, bare_cl_times, last = [], [], [], [None]

    def callback(step, logs):
        synchronize(device)
        now = time.perf_counter()
        if last[0] is not None:
            hf_times.append(now - last[0])
        if with_bare:
            # the two bare steps swap order every step, so that each of the three loops follows a
            # step in the same memory format about as often as the others (oneDNN's primitive
            # cache and the allocator's free blocks favour a step that repeats the previous one)
            bare_runs = [(bare_times, ()), (bare_cl_times, (bare_cl, bare_cl_opt, x_cl, y_cl))]
            for times, step_args in bare_runs[:: 1 if step % 2 else -1]:
                start = time.perf_counter()
                bare_step(*step_args)
                synchronize(device)
                times.append(time.perf_counter() - start)
        last[0] = time.perf_counter()

    with tempfile.TemporaryDirectory() as out:
        settings = SRTrainingArguments(
            output_dir=out,
            train_batch_size=batch,
            max_train_steps=steps + 1,  # the first step (start-up) is not timed
            validation_steps=0,
            checkpointing_steps=0,
            dataloader_num_workers=num_workers,
            mixed_precision=args.mixed_precision,
        )
        accelerator = _accelerator(device, args.mixed_precision)
        train_sr(model, train_data, settings, accelerator=accelerator, callbacks=[callback])
    hf = statistics.median(hf_times)
    result = {
        "batch_size": batch,
        "gt_patch_size": gt,
        "steps_timed": len(hf_times),
        "num_workers": num_workers,
        "hfmagic_step_seconds": hf,
        "hfmagic_samples_per_s": batch / hf,
    }
    if with_bare:
        bare_s = statistics.median(bare_times[1:] or bare_times)  # the first bare step warms up
        bare_cl_s = statistics.median(bare_cl_times[1:] or bare_cl_times)
        result.update(
            bare_step_seconds=bare_s,
            bare_samples_per_s=batch / bare_s,
            loop_overhead=hf / bare_s - 1.0,
            bare_channels_last_step_seconds=bare_cl_s,
            channels_last_speedup=bare_s / bare_cl_s,
        )
    return result


# --------------------------------------------------------------------------- GAN


def bench_gan(args, device: torch.device) -> dict:
    from accelerate.utils import DataLoaderConfiguration

    from hfmagic import DCGANConfig, DCGANDiscriminator, DCGANGenerator
    from hfmagic.training.gan import GAN, train_gan_loop

    batch = 8 if args.quick else 128
    overrides = (
        {
            "image_size": 16,
            "generator_base_channels": 32,
            "discriminator_base_channels": 8,
        }
        if args.quick
        else {}
    )
    config = DCGANConfig(**overrides)
    torch.manual_seed(0)
    generator, discriminator = DCGANGenerator(config), DCGANDiscriminator(config)
    g2, d2 = (
        copy.deepcopy(generator).to(device),
        copy.deepcopy(discriminator).to(device),
    )
    opt_g2 = torch.optim.Adam(g2.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d2 = torch.optim.Adam(d2.parameters(), lr=2e-4, betas=(0.5, 0.999))
    size = config.image_size
    real = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    noise_rng = torch.Generator().manual_seed(1)

    def bare_step():
        bce = F.binary_cross_entropy_with_logits
        with _autocast(device, args.mixed_precision):
            with torch.no_grad():
                fake = g2(torch.randn(batch, config.noise_size, generator=noise_rng).to(device))
            fake_logits, real_logits = d2(fake), d2(real)
            d_loss = bce(fake_logits, torch.zeros_like(fake_logits)) + bce(real_logits, torch.ones_like(real_logits))
        d_loss.backward()
        opt_d2.step()
        opt_d2.zero_grad(set_to_none=True)
        d2.requires_grad_(False)
        with _autocast(device, args.mixed_precision):
            logits = d2(g2(torch.randn(batch, config.noise_size, generator=noise_rng).to(device)))
            g_loss = bce(logits, torch.ones_like(logits))
        g_loss.backward()
        opt_g2.step()
        opt_g2.zero_grad(set_to_none=True)
        d2.requires_grad_(True)

    entries, bare_times = [], []

    class TimedGAN(GAN):
        def train_step(self, batch_, iteration, max_iterations=None):
            synchronize(device)
            entries.append(time.perf_counter())
            # the bare iteration runs after the hfmagic one on odd iterations and before it on even
            # ones, so that neither always follows the other (caches, allocator state)
            if iteration % 2 == 0:
                self._timed_bare()
            logs = super().train_step(batch_, iteration, max_iterations)
            if iteration % 2 == 1:
                self._timed_bare()
            return logs

        @staticmethod
        def _timed_bare():
            synchronize(device)
            start = time.perf_counter()
            bare_step()
            synchronize(device)
            bare_times.append(time.perf_counter() - start)

    steps = (args.steps or args.repeats) + 2  # the first interval is start-up; the last has no end
    gan = TimedGAN(generator, discriminator)
    accelerator = _accelerator(
        device,
        args.mixed_precision,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    data = [{"pixel_values": torch.rand(3, size, size) * 2 - 1} for _ in range(2 * batch)]
    loader = accelerator.prepare(torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, drop_last=True))
    gan.prepare(
        accelerator,
        torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999)),
        torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999)),
    )
    with tempfile.TemporaryDirectory() as out:
        train_gan_loop(gan, loader, max_train_steps=steps, output_dir=out, show_progress=False)
    accelerator.end_training()
    hf_times = [b - a - bare for a, b, bare in zip(entries[1:-1], entries[2:], bare_times[1:-1])]
    hf = statistics.median(hf_times)
    bare_s = statistics.median(bare_times[1:])
    return {
        "batch_size": batch,
        "image_size": size,
        "steps_timed": len(hf_times),
        "hfmagic_step_seconds": hf,
        "hfmagic_samples_per_s": batch / hf,
        "bare_step_seconds": bare_s,
        "bare_samples_per_s": batch / bare_s,
        "loop_overhead": hf / bare_s - 1.0,
    }


# --------------------------------------------------------------------------- data


def _textured_png(height: int, width: int, seed: int, compress_level: int) -> bytes:
    """A photo-like image: smooth colour fields plus fine noise (PNG cannot compress it to nothing)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 128 + 50 * np.sin(yy[..., None] / 37.0 + xx[..., None] / 53.0 + np.arange(3, dtype=np.float32))
    base += 30 * np.sin((xx[..., None] * yy[..., None]) / 9000.0)
    image = np.clip(base + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def bench_data(args, device: torch.device, sr_result: dict | None) -> dict:
    from hfmagic.data import load_rgb
    from hfmagic.data.gpu_pipeline import DeviceSRData, loader_rate

    full_hw, sub, gt = ((339, 510), 120, 32) if args.quick else ((1356, 2040), 480, 128)
    subs = [_textured_png(sub, sub, seed=i, compress_level=3) for i in range(4)]  # prepare_div2k's level (BasicSR's)
    try:
        import datasets  # noqa: F401
    except ImportError:  # e.g. a GPU machine without it: the device path needs no datasets
        result = {"png_pipeline_skipped": "datasets is not installed", "gt_patch_size": gt}
    else:
        result = _bench_png_pipeline(args, device, sr_result, full_hw, sub, gt, subs)
    device_data = DeviceSRData([load_rgb(b) for b in subs], scale=4, gt_patch_size=gt, device=device)
    batch = 4 if args.quick else 16
    result["device_pairs_per_s"] = loader_rate(device_data, batch, num_batches=5 if args.quick else 20)
    if sr_result is not None:
        result["device_loader_vs_consumption"] = result["device_pairs_per_s"] / sr_result["hfmagic_samples_per_s"]
        # train_sr fed by the device path (DeviceSRData.batch_at in the loop) vs fed from memory
        fed = bench_sr(args, device, train_data=device_data)
        result.update(
            train_samples_per_s_device_data=fed["hfmagic_samples_per_s"],
            device_data_slowdown=sr_result["hfmagic_samples_per_s"] / fed["hfmagic_samples_per_s"] - 1.0,
        )
    return result


def _bench_png_pipeline(args, device, sr_result, full_hw, sub, gt, subs) -> dict:
    """build_sr_dataset's pairs/s per worker from whole 2K PNGs vs sub-images, and train_sr fed by workers."""
    import datasets

    from hfmagic.data.sr_dataset import build_sr_dataset

    features = datasets.Features({"image": datasets.Image()})
    full_png = _textured_png(*full_hw, seed=0, compress_level=6)  # DIV2K's PNGs: zlib default level
    full_ds = build_sr_dataset(
        datasets.Dataset.from_dict({"image": [{"bytes": full_png, "path": None}] * 4}, features=features),
        scale=4,
        gt_patch_size=gt,
    )
    sub_ds = build_sr_dataset(
        datasets.Dataset.from_dict({"image": [{"bytes": b, "path": None} for b in subs]}, features=features),
        scale=4,
        gt_patch_size=gt,  # no seed of its own: train_sr seeds every sample from (seed, position)
    )
    counter = [0]

    def take(ds):
        counter[0] += 1
        return ds[counter[0] % len(ds)]

    # one torch thread, as in a DataLoader worker (torch sets it there): per-worker rates
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times = interleaved_medians(
            {"full": lambda: take(full_ds), "sub": lambda: take(sub_ds)}, max(args.repeats, 5), torch.device("cpu")
        )
    finally:
        torch.set_num_threads(threads)
    result = {
        "full_image_hw": list(full_hw),
        "subimage_size": sub,
        "gt_patch_size": gt,
        "full_png_bytes": len(full_png),
        "subimage_png_bytes": len(subs[0]),
        "full_pairs_per_s_per_worker": 1 / times["full"],
        "subimage_pairs_per_s_per_worker": 1 / times["sub"],
        "subimage_speedup": times["full"] / times["sub"],
    }
    if sr_result is not None:
        # train_sr fed from the sub-images by DataLoader workers vs fed from memory
        loaded = bench_sr(args, device, train_data=sub_ds, num_workers=args.workers)
        result.update(
            train_workers=args.workers,
            train_samples_per_s_from_memory=sr_result["hfmagic_samples_per_s"],
            train_samples_per_s_from_subimages=loaded["hfmagic_samples_per_s"],
            loader_slowdown=sr_result["hfmagic_samples_per_s"] / loaded["hfmagic_samples_per_s"] - 1.0,
            loader_cpu_share=sr_result["hfmagic_samples_per_s"] / result["subimage_pairs_per_s_per_worker"],
        )
    return result


# --------------------------------------------------------------------------- launch


def _script_throughput(command: list[str], env: dict) -> dict:
    """Run a training script; its logged throughput (first step excluded) and thread choice."""
    import re
    import subprocess

    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800, check=False)
    text = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:6])} ... failed ({done.returncode}):\n{text[-3000:]}")
    rate = re.search(r"Throughput: ([0-9.]+) samples/s", text)
    threads = re.search(r"CPU threads: (\d+) per process \(([^\n]*)\)\.", text)
    if rate is None:
        raise RuntimeError(f"no 'Throughput:' line in the output of {' '.join(command[:6])} ...:\n{text[-3000:]}")
    return {
        "samples_per_s": float(rate.group(1)),
        "threads": int(threads.group(1)) if threads else None,
        "threads_reason": threads.group(2) if threads else None,
    }


def bench_launch(args, device: torch.device) -> dict:
    """``examples/train_sr.py`` with ``python`` and under ``accelerate launch --num_processes 1`` vs a
    bare step in this process; rounds of (bare, python, launcher), medians over the rounds."""
    import os
    import sys
    from pathlib import Path

    from hfmagic import MSRResNet, MSRResNetConfig

    if device.type != "cpu":
        return {"skipped": f"measures CPU threads under the launcher; --device {device} is not a CPU"}
    root = Path(__file__).resolve().parent.parent
    batch, gt = (4, 16) if args.quick else (16, 64)
    overrides = {"mid_channels": 8, "num_blocks": 1} if args.quick else {}
    steps = args.steps or (3 if args.quick else 20)  # the scripts time steps 2..N
    rounds = 1 if args.quick else min(args.repeats, 3)
    torch.manual_seed(0)
    bare = bare_copy(MSRResNet(MSRResNetConfig(upscale_factor=2, **overrides))).to(device).train()
    optimizer = torch.optim.Adam(bare.parameters(), lr=2e-4, betas=(0.9, 0.999))
    x, y = torch.rand(batch, 3, gt // 2, gt // 2), torch.rand(batch, 3, gt, gt)

    def bare_step():
        F.l1_loss(bare(x), y).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    script = [str(root / "examples" / "train_sr.py"), "--model", "msrresnet", "--scale", "2", "--train_batch_size", str(batch),
              "--gt_patch_size", str(gt), "--lr_scheduler", "constant", "--max_train_steps", str(steps + 1),
              "--validation_steps", "0", "--checkpointing_steps", "0", "--report_to", "none"]
    if overrides:
        import json

        script += ["--model_config_overrides", json.dumps(overrides)]
    if args.threads:  # like the bare step: the thread count asked for
        script += ["--num_threads", str(args.threads)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p),
           "HF_HUB_OFFLINE": "1"}
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1"]
    bare_rates, loads, runs = [], [], {"python": [], "launcher": []}
    with tempfile.TemporaryDirectory() as out:
        for r in range(rounds):
            bare_step()  # warm-up
            times = []
            for _ in range(min(steps, 10)):
                start = time.perf_counter()
                bare_step()
                times.append(time.perf_counter() - start)
            bare_rates.append(batch / statistics.median(times))
            loads.append(os.getloadavg()[0])
            for name, prefix in (("python", [sys.executable]), ("launcher", launcher)):
                log(f"  round {r + 1}/{rounds}: {name} ...")
                runs[name].append(_script_throughput([*prefix, *script, "--output_dir", f"{out}/{name}-{r}"], env))
    bare_rate = statistics.median(bare_rates)
    result = {
        "model": "msrresnet",
        "scale": 2,
        "batch_size": batch,
        "gt_patch_size": gt,
        "steps_timed": steps,
        "rounds": rounds,
        "bare_threads": torch.get_num_threads(),
        "bare_samples_per_s": bare_rate,
        "bare_samples_per_s_rounds": bare_rates,
        "load_average_1min_rounds": loads,  # after each round's bare steps: others' load skews a round
        "target_launcher_ratio": 0.85,
    }
    for name, values in runs.items():
        rates = [v["samples_per_s"] for v in values]
        result.update({
            f"{name}_samples_per_s": statistics.median(rates),
            f"{name}_samples_per_s_rounds": rates,
            # each run against the bare steps of its own round (closest in time: others' load drifts)
            f"{name}_ratio": statistics.median(rate / bare for rate, bare in zip(rates, bare_rates)),
            f"{name}_threads": values[-1]["threads"],
            f"{name}_threads_reason": values[-1]["threads_reason"],
        })
    result["meets_target"] = result["launcher_ratio"] >= result["target_launcher_ratio"]
    return result


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = setup(args)
    report = {
        "benchmark": "train",
        "machine": machine_info(device),
        "settings": {
            "quick": args.quick,
            "steps": args.steps or args.repeats,
            "mixed_precision": args.mixed_precision,
        },
    }
    table = []
    if "sr" in args.parts:
        log("SR: train_sr vs bare loop ...")
        r = report["sr"] = bench_sr(args, device)
        save_partial(args, report)
        table.append(
            f"SR  batch {r['batch_size']} gt {r['gt_patch_size']}: hfmagic {r['hfmagic_samples_per_s']:.2f} samples/s, "
            f"bare {r['bare_samples_per_s']:.2f}, loop overhead {100 * r['loop_overhead']:+.1f}%; "
            f"bare in channels_last {r['channels_last_speedup']:.2f}x faster"
        )
    if "gan" in args.parts:
        log("GAN: train_gan_loop vs bare loop ...")
        r = report["gan"] = bench_gan(args, device)
        save_partial(args, report)
        table.append(
            f"GAN batch {r['batch_size']} {r['image_size']}px: hfmagic {r['hfmagic_samples_per_s']:.1f} samples/s, "
            f"bare {r['bare_samples_per_s']:.1f}, loop overhead {100 * r['loop_overhead']:+.1f}%"
        )
    if "data" in args.parts:
        log("data: whole 2K PNGs vs sub-images ...")
        r = report["data"] = bench_data(args, device, report.get("sr"))
        if "png_pipeline_skipped" in r:
            table.append(f"data: PNG pipeline skipped ({r['png_pipeline_skipped']}); device path {r['device_pairs_per_s']:.0f} pairs/s")
        else:
            table.append(
                f"data: whole {r['full_pairs_per_s_per_worker']:.1f} pairs/s/worker, sub-images "
                f"{r['subimage_pairs_per_s_per_worker']:.1f} ({r['subimage_speedup']:.1f}x); device path {r['device_pairs_per_s']:.0f} pairs/s"
            )
        if "device_data_slowdown" in r:
            table.append(
                f"      train_sr fed by DeviceSRData: {r['train_samples_per_s_device_data']:.2f} samples/s "
                f"({100 * r['device_data_slowdown']:+.1f}% vs from memory); device path / model consumption "
                f"{r['device_loader_vs_consumption']:.1f}x"
            )
        if "loader_slowdown" in r:
            table.append(
                f"      train_sr with {r['train_workers']} workers from sub-images: {r['train_samples_per_s_from_subimages']:.2f} "
                f"samples/s vs {r['train_samples_per_s_from_memory']:.2f} from memory ({100 * r['loader_slowdown']:+.1f}%)"
            )
    if "launch" in args.parts:
        log("launch: train_sr.py with python and under accelerate launch vs a bare step ...")
        r = report["launch"] = bench_launch(args, device)
        save_partial(args, report)
        if "skipped" in r:
            table.append(f"launch: skipped ({r['skipped']})")
        else:
            table.append(
                f"launch: MSRResNet x2 batch {r['batch_size']} gt {r['gt_patch_size']}: bare step {r['bare_samples_per_s']:.2f} samples/s; "
                f"python train_sr.py {r['python_samples_per_s']:.2f} ({r['python_ratio']:.2f}x, {r['python_threads']} threads); "
                f"accelerate launch {r['launcher_samples_per_s']:.2f} ({r['launcher_ratio']:.2f}x, {r['launcher_threads']} threads; "
                f"target >= {r['target_launcher_ratio']}x: {'met' if r['meets_target'] else 'NOT met'})"
            )
    emit(args, report, table)
    return report


if __name__ == "__main__":
    main()
