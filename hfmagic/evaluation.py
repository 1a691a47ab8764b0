"""Evaluation as MMagic reports it.

- :func:`evaluate_sr`: per-image PSNR/SSIM on uint8 images, averaged per dataset, next to plain
  MATLAB-bicubic upscaling as the baseline (``hfmagic evaluate``, the SR training loop's validation).
- :func:`evaluate_gan`: SWD per pyramid level and average, MS-SSIM of generated pairs, and FID
  when a local Inception file is given (``hfmagic evaluate-gan``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from .data import imresize, to_numpy, to_tensor
from .logging_utils import progress_bar
from .metrics import SlicedWassersteinDistance, psnr, ssim
from .metrics.fid import (
    feature_statistics,
    frechet_distance,
    inception_features,
    load_inception,
)
from .metrics.inception_score import inception_probabilities, inception_score_from_probabilities
from .metrics.ms_ssim import ms_ssim

__all__ = ["evaluate_sr", "evaluate_gan", "upscale_image", "metrics_for_card", "gan_metrics_for_card", "EvalTriple"]

# (image name, LR uint8 HWC RGB, HR uint8 HWC RGB), as hfmagic.data.load_eval_set yields them.
EvalTriple = tuple[str, np.ndarray, np.ndarray]
EvalSets = str | Path | Sequence[str | Path] | Mapping[str, Iterable[EvalTriple]]


def _model_device_dtype(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    param = next(iter(model.parameters()), None)
    if param is None:
        return torch.device("cpu"), torch.float32
    return param.device, param.dtype


def upscale_image(
    model: torch.nn.Module, lr: np.ndarray, tile_size: int | None = None, quantize: bool = True
) -> np.ndarray:
    """Run an SR model on one uint8 HWC RGB image.

    Args:
        model: an hfmagic super-resolution model (``forward(pixel_values).reconstruction``).
        lr: (H, W, 3) uint8.
        tile_size: process the image in tiles of this many LR pixels (exact: the overlap covers
            the model's receptive field, see ``SuperResolutionPipeline``); ``None`` = whole image.
        quantize: return uint8 as MMEditing's/BasicSR's ``tensor2img`` (clamp to [0, 1], x255,
            round), i.e. the image as saved; ``False`` returns the clamped float32 output x255,
            unrounded, as MMagic 1.x's evaluator scores it.
    Returns:
        (sH, sW, 3) uint8, or float32 in [0, 255].
    """
    device, dtype = _model_device_dtype(model)
    pixel_values = to_tensor(lr)[None]
    if tile_size is None:
        with torch.inference_mode():
            output = model(pixel_values=pixel_values.to(device=device, dtype=dtype)).reconstruction
    else:
        from .pipelines import SuperResolutionPipeline

        output = SuperResolutionPipeline(model, device=device, dtype=dtype).upscale_tensor(
            pixel_values, tile_size=tile_size
        )
    image = output[0].float().clamp(0.0, 1.0)
    return to_numpy(image) if quantize else to_numpy(image, dtype=np.float32)


def _bicubic(lr: np.ndarray, scale: int, quantize: bool = True) -> np.ndarray:
    """MATLAB bicubic upscaling of a uint8 image: rounded to uint8 like a saved image, or float
    clipped to [0, 255] when not quantizing (scored like the model's output)."""
    if quantize:
        return imresize(lr, scale, round_uint8=True)
    return np.clip(imresize(lr, scale), 0.0, 255.0)


def _match_hr(name: str, hr: np.ndarray, shape: tuple[int, ...], scale: int) -> np.ndarray:
    """HR cropped to the model's output size when it is up to ``scale - 1`` pixels larger (HR
    images whose size is not a multiple of the scale, MMagic's ``modcrop``)."""
    height, width = shape[:2]
    if hr.shape[2:] != shape[2:] or not (
        height <= hr.shape[0] < height + scale and width <= hr.shape[1] < width + scale
    ):
        raise ValueError(
            f"Image {name!r}: the x{scale} output is {shape[1]}x{shape[0]} but the HR image is "
            f"{hr.shape[1]}x{hr.shape[0]}: the LR image does not belong to this HR image at scale {scale}."
        )
    return hr[:height, :width]


def _resolve_eval_sets(eval_sets: EvalSets, scale: int) -> dict[str, Iterable[EvalTriple]]:
    if isinstance(eval_sets, Mapping):
        return dict(eval_sets)
    if isinstance(eval_sets, (str, Path)):
        eval_sets = [eval_sets]
    from .data.eval_sets import (
        load_eval_set,  # the Set5/Set14/... tarballs, DIV2K val or an HR folder
    )

    resolved = {}
    for item in eval_sets:
        loaded = load_eval_set(item, scale)
        name = getattr(loaded, "name", None) or (Path(item).name if Path(item).exists() else str(item))
        if name in resolved:  # two folders with the same name: keep both, told apart by path
            name = str(item)
        resolved[name] = loaded
    return resolved


def evaluate_sr(
    model: torch.nn.Module,
    eval_sets: EvalSets,
    crop_border: int | None = None,
    y_channel: bool = False,
    tile_size: int | None = None,
    channel_order: str = "rgb",
    quantize: bool = True,
    bicubic: bool = True,
    per_image: bool = False,
    progress: bool = False,
) -> dict[str, dict]:
    """PSNR/SSIM of an SR model (and of bicubic upscaling) on evaluation sets, as MMagic computes them.

    Args:
        model: an hfmagic super-resolution model; run batch-of-one in ``inference_mode`` on its
            own device and dtype, in eval mode (its training mode is restored afterwards).
        eval_sets: dataset names or paths for ``hfmagic.data.load_eval_set`` ("Set5", "Set14",
            "BSD100", "Urban100", a DIV2K validation folder, a folder of HR images), or a mapping
            ``{name: iterable of (image name, LR uint8 HWC, HR uint8 HWC)}``.
        crop_border: pixels ignored at each side; defaults to the scale (MMagic's model zoo).
        y_channel: evaluate on the Y channel (papers' convention) instead of RGB (MMagic's zoo).
        tile_size: tiled inference in LR pixels, for images too large for the device.
        channel_order: order of the images' channels for the Y conversion (``"rgb"``; ``"bgr"``
            reproduces BasicSR on BGR data).
        quantize: score the output rounded to uint8 (MMEditing 0.x / BasicSR ``tensor2img``, the
            saved image; default) or, with ``False``, the clamped float output as MMagic 1.x does
            (differences are typically a few 1e-3 dB).
        bicubic: also score MATLAB-bicubic upscaling of the LR image.
        per_image: add ``"images": [{"name", "psnr", "ssim", ...}, ...]`` to each dataset's result.
        progress: show a progress bar per dataset.
    Returns:
        ``{dataset: {"psnr", "ssim", "bicubic_psnr", "bicubic_ssim", "num_images"}}`` with
        metrics averaged over the images.
    """
    scale = int(model.config.upscale_factor)
    crop = scale if crop_border is None else crop_border
    sets = _resolve_eval_sets(eval_sets, scale)
    was_training = model.training
    model.eval()
    results: dict[str, dict] = {}
    try:
        for dataset, triples in sets.items():
            rows = []
            for name, lr, hr in progress_bar(triples, desc=dataset, unit="image", disable=not progress, leave=False):
                output = upscale_image(model, lr, tile_size, quantize)
                hr = _match_hr(name, hr, output.shape, scale)
                row = {
                    "name": name,
                    "psnr": psnr(hr, output, crop, y_channel, channel_order=channel_order),
                    "ssim": ssim(hr, output, crop, y_channel, channel_order=channel_order),
                }
                if bicubic:
                    baseline = _bicubic(lr, scale, quantize)
                    hr_b = _match_hr(name, hr, baseline.shape, scale)
                    row["bicubic_psnr"] = psnr(hr_b, baseline, crop, y_channel, channel_order=channel_order)
                    row["bicubic_ssim"] = ssim(hr_b, baseline, crop, y_channel, channel_order=channel_order)
                rows.append(row)
            if not rows:
                raise ValueError(f"Evaluation set {dataset!r} has no images.")
            summary: dict = {key: float(np.mean([r[key] for r in rows])) for key in rows[0] if key != "name"}
            summary["num_images"] = len(rows)
            if per_image:
                summary["images"] = rows
            results[dataset] = summary
    finally:
        model.train(was_training)
    return results


def _dataset_id(name: str) -> str:
    """The Hub id of an evaluation set for the model-index's dataset ``type``: the ``eugenesiow/<Name>``
    repo ``load_eval_set`` reads for Set5/Set14/BSD100/Urban100, else ``"imagefolder"`` (a local
    folder of images, as transformers' Trainer names local data; the folder's name stays the
    dataset's ``name``)."""
    from .data.eval_sets import BENCHMARK_REPOS

    known = BENCHMARK_REPOS.get(name.lower())
    return known[0] if known else "imagefolder"


def metrics_for_card(
    results: Mapping[str, Mapping], y_channel: bool, crop_border: int, split: str = "test"
) -> list[dict]:
    """``evaluate_sr`` results as metric dicts for ``hfmagic.hub.add_metrics_to_card``: PSNR and SSIM
    of the model, each with bicubic's value on the same images (``"bicubic"``, when evaluated: the
    card's table shows it and the gain; the model-index holds the model's value only) and the
    dataset's Hub id (``"dataset_id"``: ``eugenesiow/Set5``..., or ``imagefolder`` for a folder)."""
    config = f"{'Y' if y_channel else 'RGB'}, crop_border={crop_border}"
    metrics = []
    for dataset, values in results.items():
        for key, name in (("psnr", "PSNR"), ("ssim", "SSIM")):
            metric = {
                "dataset": dataset,
                "dataset_id": _dataset_id(dataset),
                "name": name,
                "value": round(float(values[key]), 4),
                "type": key,
                "split": split,
                "config": config,
            }
            if values.get(f"bicubic_{key}") is not None:
                metric["bicubic"] = round(float(values[f"bicubic_{key}"]), 4)
            metrics.append(metric)
    return metrics


def _real_batches(real_images, num_images: int, batch_size: int, seed: int) -> Iterable[torch.Tensor]:
    """Batches (B, C, H, W) in [-1, 1] of ``num_images`` real images: a seeded random subset of a
    map-style dataset, the first ones of an iterable, or slices of a tensor."""
    if isinstance(real_images, torch.Tensor):
        source: Iterable = real_images[:num_images]
    elif hasattr(real_images, "__len__") and hasattr(real_images, "__getitem__"):
        if len(real_images) < num_images:
            raise ValueError(
                f"The real dataset has {len(real_images)} images, fewer than the {num_images} asked for: "
                "lower --num-images (SWD compares equally many real and generated images)."
            )
        order = torch.randperm(len(real_images), generator=torch.Generator().manual_seed(seed))[:num_images]
        source = (real_images[int(i)] for i in order)
    else:
        source = real_images
    batch, seen = [], 0
    for item in source:
        if item is None:  # an unreadable image skipped by the dataset (skip_corrupt)
            continue
        image = item["pixel_values"] if isinstance(item, Mapping) else item
        batch.append(image)
        seen += 1
        if len(batch) == batch_size or seen == num_images:
            yield torch.stack(batch)
            batch = []
        if seen == num_images:
            return
    raise ValueError(
        f"The real dataset gave only {seen} images, fewer than the {num_images} asked for: lower --num-images "
        "(SWD compares equally many real and generated images)."
    )


@torch.no_grad()
def evaluate_gan(
    generator: torch.nn.Module,
    real_images,
    num_images: int,
    batch_size: int = 64,
    seed: int = 0,
    inception_path: str | Path | None = None,
    progress: bool = False,
    ms_ssim_images: int | None = None,
    inception_score_splits: int | None = 10,
) -> dict:
    """MMagic's GAN metrics of a generator against real images.

    Args:
        generator: a DCGAN-like generator (``sample_noise(n, generator)``, ``forward(noise)`` -> images
            in [-1, 1]); run in eval mode on its own device/dtype (training mode restored after).
        real_images: a dataset of ``{"pixel_values": (C, H, W) in [-1, 1]}`` (as
            ``hfmagic.data.build_gan_dataset`` makes), an iterable of such tensors, or an (N, C, H, W)
            tensor. They are rounded to uint8 levels, as MMagic's real images are uint8 files.
        num_images: real and generated images for SWD (and FID/IS) (MMagic: 16384 for SWD).
        batch_size: images per forward pass (rounded down to even: MS-SSIM pairs stay in a batch).
        seed: seeds the noise, the choice of real images and SWD's random patches/directions.
        inception_path: local TorchScript Inception for FID and the Inception Score (skipped when
            ``None``); IS is computed on the generated images in ``inception_score_splits`` parts
            (``None``: FID only; fewer images than parts: IS skipped with a warning).
        ms_ssim_images: MS-SSIM on the first this many generated images (even, <= num_images;
            MMagic: 10000); default: all ``num_images``.
    Returns:
        ``{"swd": {"<res>": ..., "avg": ...}, "ms_ssim": float, "fid": float | None,
        "inception_score": (mean, std) | None, "num_images": N, "ms_ssim_images": M}``.
    """
    if num_images < 2 or num_images % 2:
        raise ValueError(f"num_images must be an even number >= 2 (MS-SSIM compares pairs), got {num_images}.")
    ms_ssim_images = num_images if ms_ssim_images is None else ms_ssim_images
    if ms_ssim_images < 2 or ms_ssim_images % 2 or ms_ssim_images > num_images:
        raise ValueError(
            f"ms_ssim_images must be an even number in [2, num_images={num_images}] (MS-SSIM compares pairs of the "
            f"generated images), got {ms_ssim_images}."
        )
    if inception_path is not None and inception_score_splits and num_images < inception_score_splits:
        warnings.warn(
            f"The Inception Score splits the images into {inception_score_splits} parts, more than the {num_images} "
            "images: IS is skipped (FID is computed).",
            stacklevel=2,
        )
        inception_score_splits = None
    batch_size = max(2, batch_size - batch_size % 2)
    device, dtype = _model_device_dtype(generator)
    inception = load_inception(inception_path, device) if inception_path is not None else None
    noise = generator.sample_noise(num_images, generator=torch.Generator().manual_seed(seed))
    image_size = int(getattr(getattr(generator, "config", None), "image_size", 0)) or None
    metric = None
    pair_scores, real_feats, fake_feats, fake_probs = [], [], [], []
    was_training = generator.training
    generator.eval()
    try:
        done = 0
        bar = progress_bar(total=num_images, desc="evaluate-gan", unit="image", disable=not progress, leave=False)
        for real in _real_batches(real_images, num_images, batch_size, seed):
            real = ((real.float() + 1.0) * 127.5).round().clamp(0, 255)
            # positional: the first argument is the noise of every GAN generator (DCGAN's ``noise``, StyleGAN2's ``styles``)
            fake = generator(noise[done : done + len(real)].to(device=device, dtype=dtype)).float().clamp(-1, 1)
            fake = (fake + 1.0) * 127.5  # [0, 255], as MMagic's destructed fakes
            if real.shape[1:] != fake.shape[1:]:
                raise ValueError(
                    f"Real images are {tuple(real.shape[1:])} but the generator makes {tuple(fake.shape[1:])}: "
                    "resize the real images to the generator's size (build_gan_dataset(resolution=...))."
                )
            if metric is None:
                metric = SlicedWassersteinDistance(image_size or fake.shape[-2], seed=seed)
            metric.update(real=real, fake=fake)
            if done < ms_ssim_images:  # even counts: pairs never straddle the limit
                pair_scores.append(ms_ssim(fake[: ms_ssim_images - done], reduction="none"))
            if inception is not None:
                real_feats.append(inception_features(inception, real))
                fake_feats.append(inception_features(inception, fake))
                if inception_score_splits:
                    fake_probs.append(inception_probabilities(inception, fake))
            done += len(real)
            bar.update(len(real))
        bar.close()
    finally:
        generator.train(was_training)
    fid_value = is_value = None
    if inception is not None:
        mu_f, sigma_f = feature_statistics(np.concatenate(fake_feats))
        mu_r, sigma_r = feature_statistics(np.concatenate(real_feats))
        fid_value = frechet_distance(mu_f, sigma_f, mu_r, sigma_r)
        if inception_score_splits:
            is_value = inception_score_from_probabilities(np.concatenate(fake_probs), inception_score_splits)
    return {
        "swd": metric.compute(),
        "ms_ssim": float(torch.cat(pair_scores).mean()),
        "fid": fid_value,
        "inception_score": is_value,
        "num_images": done,
        "ms_ssim_images": ms_ssim_images,
    }


def gan_metrics_for_card(results: Mapping, dataset: str, split: str = "train") -> list[dict]:
    """``evaluate_gan`` results as metric dicts for ``hfmagic.hub.add_metrics_to_card``."""
    config = f"{results['num_images']} images"
    ms_ssim_config = f"{results.get('ms_ssim_images', results['num_images'])} images"
    metrics = []
    for level, value in results["swd"].items():
        name = "SWD (avg)" if level == "avg" else f"SWD ({level}px)"
        key = "swd" if level == "avg" else f"swd_{level}"
        metrics.append(
            {
                "dataset": dataset,
                "name": name,
                "value": round(float(value), 4),
                "type": key,
                "split": split,
                "config": config,
            }
        )
    metrics.append(
        {
            "dataset": dataset,
            "name": "MS-SSIM",
            "value": round(results["ms_ssim"], 4),
            "type": "ms_ssim",
            "split": split,
            "config": ms_ssim_config,
        }
    )
    if results.get("fid") is not None:
        metrics.append(
            {
                "dataset": dataset,
                "name": "FID",
                "value": round(results["fid"], 4),
                "type": "fid",
                "split": split,
                "config": config,
            }
        )
    if results.get("inception_score") is not None:
        metrics.append(
            {
                "dataset": dataset,
                "name": "IS",
                "value": round(float(results["inception_score"][0]), 4),
                "type": "inception_score",
                "split": split,
                "config": config,
            }
        )
    return metrics
