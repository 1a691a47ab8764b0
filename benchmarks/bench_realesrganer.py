"""hfmagic's default ``SuperResolutionPipeline`` against what Real-ESRGAN users run today: its
``RealESRGANer`` tiler, ``RealESRGANer(scale=4, model=RRDBNet x4, tile=128, tile_pad=10, pre_pad=0,
half=False)`` on CPU, with the same weights (RRDBNet x4, 64 channels, 23 blocks, seeded random
weights), on a photo resized to 250x188 (x4 output 1000x752).

The tiler is reproduced here from Real-ESRGAN's published behaviour (``realesrgan/utils.py``; realesrgan
is not a dependency): the image is cut into non-overlapping 128-pixel tiles, each run through
BasicSR's ``RRDBNet`` in float32 (NCHW, ``torch.no_grad``) with 10 pixels of context on every side
(clamped at the image border); the tile's own part of the output is cropped and pasted; the float
image is clamped to [0, 1], times 255, rounded to uint8. Its network is a plain ``nn.Module`` with
BasicSR's layer names, loaded with hfmagic's ``state_dict`` (the same tensors, strictly).

hfmagic runs as a user calls it: ``SuperResolutionPipeline(model)(image)``, all defaults (the whole
image or the pipeline's automatic tiling, ``dtype="auto"``: bfloat16 on CPUs with native bf16).

Each timed call runs in a fresh process (so its ``ru_maxrss`` is its own peak; both processes import
hfmagic, load the weights, then build the upsampler and run it once; the time and the peak cover
building plus the call); the two variants alternate (A, B, A, B, ...) and medians are reported.
Outputs are then compared with a whole-image float32 forward of the same network (one pass, NCHW):
RealESRGANer's tiles differ from it along the tile borders (too little context: 10 pixels against
the network's receptive field of 349), hfmagic's output is the whole image; the pipeline is also
run in float32 to show that it equals the whole-image forward (within float rounding).

Random weights (no trained weights offline): hfmagic's initialisation (ESRGAN's: Kaiming-normal
times 0.1), seeded, then every convolution's weight times ``--weight-gain`` (default 10, i.e.
Kaiming-normal without the 0.1). With the 0.1 the 23 blocks barely mix pixels: tiled and whole
outputs then differ by ~5e-6 of the output's spread (float rounding), where a trained network's
trunk reads far around each pixel; the gain restores that mixing (measured: seams ~1.5e-3 of the
spread). Then the last convolution is rescaled per channel (one linear map, computed on a 32x32
crop) so that the output spans an image's range (mean 0.5, std 0.2; with ESRGAN's init it is
within ~1e-3 of 0, all black in uint8). Every variant uses these same weights; the timings do not
depend on them.

    python benchmarks/bench_realesrganer.py --json out.json    # ~3 x 2 passes of ~1.7 TFLOP: minutes on 2 cores
    python benchmarks/bench_realesrganer.py --quick            # tiny model, 48x36 input, 16-pixel tiles
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from _common import ROOT, add_common_arguments, emit, log, machine_info, save_partial, setup

VARIANTS = ("realesrganer", "hfmagic")
TINY = {"mid_channels": 16, "num_blocks": 2, "growth_channels": 8}
DEFAULT_IMAGE = ROOT / "hfmagic" / "assets" / "sr" / "train" / "coffee.png"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument(
        "--size", nargs=2, type=int, default=None, metavar=("W", "H"), help="LR input size (default 250 188; --quick 48 36)"
    )
    parser.add_argument("--tile", type=int, default=None, help="RealESRGANer's tile (default 128; --quick 16)")
    parser.add_argument("--tile-pad", type=int, default=10, help="RealESRGANer's tile_pad (default 10)")
    parser.add_argument(
        "--image", type=Path, default=DEFAULT_IMAGE, help="photo center-cropped to W:H and resized (default: coffee.png)"
    )
    parser.add_argument(
        "--weight-gain",
        type=float,
        default=10.0,
        help="factor on every conv weight after hfmagic's init (default 10: Kaiming-normal without ESRGAN's 0.1)",
    )
    parser.add_argument(
        "--hfmagic-tile-size",
        type=int,
        default=None,
        help="also time pipe(image, tile_size=N) (not the default call; two-stage tiling) in the rounds",
    )
    parser.add_argument("--worker", choices=(*VARIANTS, "hfmagic_tiled"), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats is None:  # one pass is ~1.7 TFLOP: few rounds
        args.repeats = 2 if args.quick else 3
    args.size = tuple(args.size or ((48, 36) if args.quick else (250, 188)))
    args.tile = args.tile or (16 if args.quick else 128)
    return args


# --------------------------------------------------------------------------- Real-ESRGAN's side


class _BareRDB(nn.Module):
    """BasicSR's ResidualDenseBlock: x + 0.2 * conv5(cat(x, x1..x4)), xi = lrelu(convi(cat(x, x1..xi-1)))."""

    def __init__(self, mid: int, growth: int):
        super().__init__()
        for i in range(5):
            setattr(self, f"conv{i + 1}", nn.Conv2d(mid + i * growth, mid if i == 4 else growth, 3, 1, 1))
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x):
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        return x + 0.2 * self.conv5(torch.cat((x, x1, x2, x3, x4), 1))


class _BareRRDB(nn.Module):
    def __init__(self, mid: int, growth: int):
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = (_BareRDB(mid, growth) for _ in range(3))

    def forward(self, x):
        return x + 0.2 * self.rdb3(self.rdb2(self.rdb1(x)))


class BareRRDBNet(nn.Module):
    """BasicSR's ``RRDBNet`` at x4 (the network of RealESRGAN_x4plus), with its parameter names, which
    are hfmagic's too: a ``state_dict`` moves between them unchanged."""

    def __init__(self, mid_channels: int = 64, num_blocks: int = 23, growth_channels: int = 32, in_channels: int = 3):
        super().__init__()
        mid = mid_channels
        self.conv_first = nn.Conv2d(in_channels, mid, 3, 1, 1)
        self.body = nn.Sequential(*(_BareRRDB(mid, growth_channels) for _ in range(num_blocks)))
        self.conv_body = nn.Conv2d(mid, mid, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(mid, mid, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(mid, mid, 3, 1, 1)
        self.conv_hr = nn.Conv2d(mid, mid, 3, 1, 1)
        self.conv_last = nn.Conv2d(mid, in_channels, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x):
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


Region = tuple[int, int, int, int]  # y0, y1, x0, x1


def tile_grid(height: int, width: int, tile: int, pad: int) -> list[tuple[Region, Region]]:
    """RealESRGANer's tiles: (core, padded input) as (y0, y1, x0, x1) LR regions; cores of ``tile``
    pixels from the top-left (smaller at the bottom/right), each padded by ``pad`` within the image."""
    grid = []
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            y1, x1 = min(y0 + tile, height), min(x0 + tile, width)
            grid.append(((y0, y1, x0, x1), (max(y0 - pad, 0), min(y1 + pad, height), max(x0 - pad, 0), min(x1 + pad, width))))
    return grid


class RealESRGANerRepro:
    """What ``realesrgan.RealESRGANer(scale, model_path, model=model, tile, tile_pad, pre_pad,
    half=False, device)`` does on an 8-bit RGB image (``enhance`` without outscale or alpha): float32
    / 255, reflect ``pre_pad`` at the bottom/right, (mod pad at x1/x2), ``tile_process``, crop the
    pads, clamp, x255, round. The unclamped float output stays in ``self.output``, as in the original."""

    def __init__(self, scale: int, model: nn.Module, tile: int = 0, tile_pad: int = 10, pre_pad: int = 10, device="cpu"):
        self.scale, self.tile_size, self.tile_pad, self.pre_pad = scale, tile, tile_pad, pre_pad
        self.mod_scale = {2: 2, 1: 4}.get(scale)
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)

    def pre_process(self, img: np.ndarray) -> None:
        self.img = torch.from_numpy(np.transpose(img, (2, 0, 1))).float().unsqueeze(0).to(self.device)
        if self.pre_pad:
            self.img = F.pad(self.img, (0, self.pre_pad, 0, self.pre_pad), "reflect")
        self.mod_pad_h = self.mod_pad_w = 0
        if self.mod_scale is not None:
            h, w = self.img.shape[-2:]
            self.mod_pad_h, self.mod_pad_w = (-h) % self.mod_scale, (-w) % self.mod_scale
            self.img = F.pad(self.img, (0, self.mod_pad_w, 0, self.mod_pad_h), "reflect")

    def tile_process(self) -> None:
        batch, channels, height, width = self.img.shape
        s = self.scale
        self.output = self.img.new_zeros((batch, channels, height * s, width * s))  # starts black
        for (y0, y1, x0, x1), (py0, py1, px0, px1) in tile_grid(height, width, self.tile_size, self.tile_pad):
            with torch.no_grad():
                out = self.model(self.img[:, :, py0:py1, px0:px1])
            ty, tx = (y0 - py0) * s, (x0 - px0) * s  # the core's place in the padded tile's output
            self.output[:, :, y0 * s : y1 * s, x0 * s : x1 * s] = out[:, :, ty : ty + (y1 - y0) * s, tx : tx + (x1 - x0) * s]

    def post_process(self) -> torch.Tensor:
        h, w = self.output.shape[-2:]
        crop_h, crop_w = ((pad + self.pre_pad) * self.scale for pad in (self.mod_pad_h, self.mod_pad_w))
        self.output = self.output[:, :, : h - crop_h, : w - crop_w]
        return self.output

    @torch.no_grad()
    def enhance(self, img: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (sH, sW, 3) uint8."""
        self.pre_process(img.astype(np.float32) / 255)
        if self.tile_size > 0:
            self.tile_process()
        else:
            self.output = self.model(self.img)
        out = self.post_process().squeeze(0).float().cpu().clamp(0, 1).numpy()
        return (np.transpose(out, (1, 2, 0)) * 255.0).round().astype(np.uint8)


def work_ratio(height: int, width: int, tile: int, pad: int) -> float:
    """LR pixels the tiler feeds the network over the image's pixels (its recomputed context)."""
    return sum((py1 - py0) * (px1 - px0) for _, (py0, py1, px0, px1) in tile_grid(height, width, tile, pad)) / (height * width)


# --------------------------------------------------------------------------- setup and worker


def photo(path: Path, width: int, height: int) -> np.ndarray:
    """The photo center-cropped to the W:H aspect and resized (PIL bicubic) to W x H, uint8 RGB."""
    from PIL import Image

    im = Image.open(path).convert("RGB")
    w, h = im.size
    cw, ch = (w, round(w * height / width)) if w * height <= h * width else (round(h * width / height), h)
    left, top = (w - cw) // 2, (h - ch) // 2
    return np.asarray(im.crop((left, top, left + cw, top + ch)).resize((width, height), Image.BICUBIC))


def build_model(args, image: np.ndarray):
    """Seeded RRDBNet x4 (hfmagic's init, conv weights times ``--weight-gain``), conv_last rescaled
    so that the output looks like an image (see the module docstring)."""
    from hfmagic import RRDBNet, RRDBNetConfig

    torch.manual_seed(0)
    model = RRDBNet(RRDBNetConfig(upscale_factor=4, **(TINY if args.quick else {}))).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.mul_(args.weight_gain)
    h, w = image.shape[:2]
    crop = image[max(h // 2 - 16, 0) : h // 2 + 16, max(w // 2 - 16, 0) : w // 2 + 16]
    x = torch.from_numpy(crop.copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        y = model(pixel_values=x).reconstruction
        mean, std = y.mean(dim=(0, 2, 3)), y.std(dim=(0, 2, 3))
        gain = 0.2 / std  # y' = (y - mean) * gain + 0.5, per channel
        model.conv_last.weight.mul_(gain.view(-1, 1, 1, 1))
        model.conv_last.bias.copy_((model.conv_last.bias - mean) * gain + 0.5)
    return model


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def worker(args) -> None:
    """One variant, once, in this fresh process: prints a JSON line and saves its output."""
    import hfmagic

    # Both variants import the same libraries before the baseline (hfmagic's exports are lazy: the
    # pipeline pulls in transformers and diffusers on first use), so the peaks compare the work.
    from hfmagic import RRDBNet, SuperResolutionPipeline  # noqa: F401
    from safetensors.torch import load_file

    device = setup(args)
    image = np.load(args.workdir / "image.npy")
    config = json.loads((args.workdir / "config.json").read_text())
    # The baseline is before the weights are loaded: each side loads them as its users do
    # (RealESRGANer: the fp32 state dict into its RRDBNet; hfmagic: `from_pretrained` of the saved
    # folder, as `hfmagic upscale --model` does), and the peak includes what that holds.
    base = _rss_mb()
    if args.worker == "realesrganer":
        net = BareRRDBNet(config["mid_channels"], config["num_blocks"], config["growth_channels"])
        net.load_state_dict(load_file(args.workdir / "model.safetensors"), strict=True)
        start = time.perf_counter()
        upsampler = RealESRGANerRepro(4, net, tile=args.tile, tile_pad=args.tile_pad, pre_pad=0, device=device)
        out = upsampler.enhance(image)
        dtype = "float32"
    else:
        pipe = hfmagic.SuperResolutionPipeline.from_pretrained(args.workdir, device=device)
        start = time.perf_counter()
        out = np.asarray(pipe(image, tile_size=args.hfmagic_tile_size if args.worker == "hfmagic_tiled" else None))
        dtype = str(pipe.dtype).removeprefix("torch.")
    seconds = time.perf_counter() - start
    peak = _rss_mb()
    if args.worker != "hfmagic_tiled":
        np.save(args.workdir / f"out_{args.worker}.npy", out)
    if args.worker == "realesrganer":
        np.save(args.workdir / "float_realesrganer.npy", upsampler.output[0].cpu().numpy())
    else:
        limit = getattr(pipe, "auto_tile_pixels", None)
        tiled = args.worker == "hfmagic_tiled" or (limit is not None and out.shape[0] * out.shape[1] > limit)
        dtype_info = {"auto_tile_pixels": limit, "automatic_tiling": bool(tiled)}
    result = {"variant": args.worker, "seconds": seconds, "peak_rss_mb": peak, "baseline_rss_mb": base, "dtype": dtype}
    result["load_average_1min"] = round(os.getloadavg()[0], 2)
    if args.worker != "realesrganer":
        result.update(dtype_info)
    print(json.dumps(result))


def run_worker(args, variant: str, workdir: Path) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--worker", variant, "--workdir", str(workdir)]
    command += ["--tile", str(args.tile), "--tile-pad", str(args.tile_pad), "--device", args.device]
    if args.hfmagic_tile_size:
        command += ["--hfmagic-tile-size", str(args.hfmagic_tile_size)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{variant} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- comparisons


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """(C, H, W) float -> (H, W, C) uint8: clamp to [0, 1], x255, round (both tools do this)."""
    return (t.float().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()


def border_mask(height: int, width: int, tile: int, scale: int, band: int) -> np.ndarray:
    """HR pixels within ``band`` pixels of an inner tile border (where tiles meet)."""
    mask = np.zeros((height * scale, width * scale), dtype=bool)
    for y in range(tile, height, tile):
        mask[max(y * scale - band, 0) : y * scale + band] = True
    for x in range(tile, width, tile):
        mask[:, max(x * scale - band, 0) : x * scale + band] = True
    return mask


def compare(diff: np.ndarray, near: np.ndarray, tile: int, scale: int, height: int, width: int) -> dict:
    """Statistics of a (sH, sW) difference map, and where its largest value lies."""
    y, x = np.unravel_index(int(diff.argmax()), diff.shape)
    borders_y = [t * scale for t in range(tile, height, tile)]
    borders_x = [t * scale for t in range(tile, width, tile)]
    distance = min([abs(y - b) for b in borders_y] + [abs(x - b) for b in borders_x] + [10**9])
    nonzero = diff > 0
    return {
        "max": float(diff.max()),
        "max_at_yx": [int(y), int(x)],
        "max_distance_to_tile_border_px": None if distance == 10**9 else int(distance),
        "mean_near_borders": float(diff[near].mean()) if near.any() else 0.0,
        "mean_elsewhere": float(diff[~near].mean()),
        "max_elsewhere": float(diff[~near].max()),
        "pixels_differing_fraction": float(nonzero.mean()),
        "differing_pixels_near_borders_fraction": float(nonzero[near].sum() / max(nonzero.sum(), 1)),
    }


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return {}
    device = setup(args)
    from safetensors.torch import load_file

    from hfmagic import RRDBNet, SuperResolutionPipeline

    width, height = args.size
    scale = 4
    report = {
        "benchmark": "realesrganer",
        "machine": machine_info(device),
        "settings": {
            "quick": args.quick,
            "model": "rrdbnet x4",
            **(TINY if args.quick else {"mid_channels": 64, "num_blocks": 23, "growth_channels": 32}),
            "input_wh": [width, height],
            "output_wh": [width * scale, height * scale],
            "image": args.image.name,
            "realesrganer": {"tile": args.tile, "tile_pad": args.tile_pad, "pre_pad": 0, "half": False, "dtype": "float32"},
            "hfmagic": "SuperResolutionPipeline(model)(image), defaults",
            "rounds": args.repeats,
            "weight_gain": args.weight_gain,
        },
    }
    loads = [round(os.getloadavg()[0], 2)]
    with tempfile.TemporaryDirectory(prefix="bench_realesrganer_") as tmp:
        workdir = Path(tmp)
        image = photo(args.image, width, height)
        np.save(workdir / "image.npy", image)
        model = build_model(args, image)
        model.save_pretrained(workdir)
        report["settings"]["receptive_field_lr_px"] = model.receptive_field()
        work = work_ratio(height, width, args.tile, args.tile_pad)
        log(
            f"RRDBNet x4 {width}x{height} -> {width * scale}x{height * scale}, {args.repeats} rounds; RealESRGANer tile "
            f"{args.tile} pad {args.tile_pad} ({len(tile_grid(height, width, args.tile, args.tile_pad))} tiles, "
            f"work {work:.3f}x); "
            f"load {loads[0]}"
        )

        # -- timed rounds, one fresh process per call, interleaved
        rows: list[dict] = []
        report["rounds"] = rows
        variants = VARIANTS + (("hfmagic_tiled",) if args.hfmagic_tile_size else ())
        for r in range(args.repeats):
            for variant in variants if r % 2 == 0 else variants[::-1]:
                row = run_worker(args, variant, workdir)
                row["round"] = r
                rows.append(row)
                log(
                    f"  round {r + 1}/{args.repeats} {variant:13s} {row['seconds']:7.2f} s  peak {row['peak_rss_mb']:6.0f} MB "
                    f"({row['dtype']}, load {row['load_average_1min']})"
                )
                save_partial(args, report)
        keys = ("seconds", "peak_rss_mb", "baseline_rss_mb")
        med = {v: {k: statistics.median(row[k] for row in rows if row["variant"] == v) for k in keys} for v in variants}
        # the ratio within each round too (its two calls ran minutes apart at most): robust to load drifting
        seconds = {(row["round"], row["variant"]): row["seconds"] for row in rows}
        per_round = [seconds[r, "realesrganer"] / seconds[r, "hfmagic"] for r in range(args.repeats)]
        hf_row = next(row for row in rows if row["variant"] == "hfmagic")
        summary = {
            "realesrganer_seconds": med["realesrganer"]["seconds"],
            "hfmagic_seconds": med["hfmagic"]["seconds"],
            "speedup": med["realesrganer"]["seconds"] / med["hfmagic"]["seconds"],
            "speedup_per_round": per_round,
            "speedup_median_of_rounds": statistics.median(per_round),
            "realesrganer_peak_rss_mb": med["realesrganer"]["peak_rss_mb"],
            "hfmagic_peak_rss_mb": med["hfmagic"]["peak_rss_mb"],
            "realesrganer_call_rss_mb": med["realesrganer"]["peak_rss_mb"] - med["realesrganer"]["baseline_rss_mb"],
            "hfmagic_call_rss_mb": med["hfmagic"]["peak_rss_mb"] - med["hfmagic"]["baseline_rss_mb"],
            "hfmagic_dtype": hf_row["dtype"],
            "hfmagic_automatic_tiling": hf_row.get("automatic_tiling"),
            "realesrganer_work_ratio": work,
        }
        if args.hfmagic_tile_size:
            summary["hfmagic_tiled"] = {"tile_size": args.hfmagic_tile_size, **med["hfmagic_tiled"]}
        summary["speedup_target_met"] = summary["speedup"] >= 1.3
        summary["lower_peak"] = summary["hfmagic_peak_rss_mb"] < summary["realesrganer_peak_rss_mb"]
        report["summary"] = summary
        save_partial(args, report)

        # -- outputs against the whole-image float32 forward
        log("whole-image float32 forward (reference) ...")
        x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255
        config = model.config
        bare = BareRRDBNet(config.mid_channels, config.num_blocks, config.growth_channels)
        bare.load_state_dict(load_file(workdir / "model.safetensors"), strict=True)
        bare.eval()
        with torch.no_grad():  # BasicSR's module and hfmagic's compute the same (on a small crop)
            probe = x[..., :16, :16]
            same_net = float((bare(probe) - model(pixel_values=probe).reconstruction).abs().max())
            start = time.perf_counter()
            whole = bare(x)[0]
            whole_seconds = time.perf_counter() - start
        whole_u8 = to_uint8(whole)
        log("hfmagic pipeline in float32 ...")
        pipe32 = SuperResolutionPipeline(RRDBNet.from_pretrained(workdir), device=device, dtype="float32")
        start = time.perf_counter()
        f32 = pipe32.upscale_tensor(x)[0]
        f32_seconds = time.perf_counter() - start
        loads.append(round(os.getloadavg()[0], 2))

        tiled = torch.from_numpy(np.load(workdir / "float_realesrganer.npy"))
        tiled_u8, hf_u8 = np.load(workdir / "out_realesrganer.npy"), np.load(workdir / "out_hfmagic.npy")
        band = scale * args.tile_pad  # the seams' reach: where a tile's context ends
        near = border_mask(height, width, args.tile, scale, band)
        geo = (args.tile, scale, height, width)
        level = lambda a, b: np.abs(a.astype(int) - b.astype(int)).max(axis=2).astype(float)  # noqa: E731
        equality = {
            "bare_vs_hfmagic_module_max_abs": same_net,
            "whole_image_fp32_output_mean": float(whole.mean()),
            "whole_image_fp32_output_std": float(whole.std()),
            "whole_image_fp32_seconds": whole_seconds,
            "border_band_hr_px": band,
            "realesrganer_vs_whole_float": compare((tiled - whole).abs().amax(0).numpy(), near, *geo),
            "realesrganer_vs_whole_uint8": compare(level(tiled_u8, whole_u8), near, *geo),
            "hfmagic_default_vs_whole_uint8": compare(level(hf_u8, whole_u8), near, *geo),
            "hfmagic_fp32_pipeline_vs_whole_float": compare((f32 - whole).abs().amax(0).numpy(), near, *geo),
            "hfmagic_fp32_pipeline_vs_whole_uint8": compare(level(to_uint8(f32), whole_u8), near, *geo),
            "hfmagic_fp32_pipeline_seconds": f32_seconds,
        }
        report["equality"] = equality
    report["machine"]["load_average_1min_start_end"] = loads

    s, e = summary, equality
    names = ("realesrganer_vs_whole_float", "realesrganer_vs_whole_uint8", "hfmagic_default_vs_whole_uint8")
    rf, rt, hu = (e[k] for k in names)
    pf, pu = e["hfmagic_fp32_pipeline_vs_whole_float"], e["hfmagic_fp32_pipeline_vs_whole_uint8"]
    mode = "automatic tiling" if s["hfmagic_automatic_tiling"] else "whole image"
    rounds = ", ".join(f"{r:.2f}" for r in s["speedup_per_round"])
    table = [
        f"RRDBNet x4 {width}x{height} -> {width * scale}x{height * scale} ({args.image.name}), {args.repeats} interleaved "
        f"rounds, torch threads {report['machine']['torch_threads']}, load {loads[0]} -> {loads[-1]}",
        f"  RealESRGANer (tile {args.tile}, pad {args.tile_pad}, fp32): {s['realesrganer_seconds']:.2f} s, "
        f"peak RSS {s['realesrganer_peak_rss_mb']:.0f} MB (call +{s['realesrganer_call_rss_mb']:.0f}), work {work:.3f}x",
        f"  hfmagic default ({s['hfmagic_dtype']}, {mode}): {s['hfmagic_seconds']:.2f} s, "
        f"peak RSS {s['hfmagic_peak_rss_mb']:.0f} MB (call +{s['hfmagic_call_rss_mb']:.0f})",
    ]
    if "hfmagic_tiled" in s:
        t = s["hfmagic_tiled"]
        table.append(
            f"  hfmagic tile_size={t['tile_size']} (not the default): {t['seconds']:.2f} s, "
            f"peak RSS {t['peak_rss_mb']:.0f} MB (call +{t['peak_rss_mb'] - t['baseline_rss_mb']:.0f})"
        )
    table += [
        f"  speedup {s['speedup']:.2f}x (per round {rounds}; target 1.3x: {'met' if s['speedup_target_met'] else 'NOT met'}); "
        f"peak {'lower' if s['lower_peak'] else 'NOT lower'} for hfmagic",
        f"  vs the whole-image fp32 forward (output mean {e['whole_image_fp32_output_mean']:.3f}, "
        f"std {e['whole_image_fp32_output_std']:.3f}):",
        f"    RealESRGANer float: max {rf['max']:.2e} at {rf['max_at_yx']} ({rf['max_distance_to_tile_border_px']} px from a "
        f"tile border); mean within {band} px of borders {rf['mean_near_borders']:.2e}, elsewhere "
        f"{rf['mean_elsewhere']:.2e} (max {rf['max_elsewhere']:.2e})",
        f"    RealESRGANer uint8: max {rt['max']:.0f} levels, {100 * rt['pixels_differing_fraction']:.2f}% pixels differ, "
        f"{100 * rt['differing_pixels_near_borders_fraction']:.0f}% of them within {band} px of a tile border",
        f"    hfmagic default uint8 ({s['hfmagic_dtype']}): max {hu['max']:.0f} levels, "
        f"{100 * hu['pixels_differing_fraction']:.2f}% pixels differ",
        f"    hfmagic pipeline fp32: float max {pf['max']:.2e}, uint8 max {pu['max']:.0f} levels "
        f"({100 * pu['pixels_differing_fraction']:.3f}% pixels)",
    ]
    emit(args, report, table)
    return report


if __name__ == "__main__":
    main()
