"""A tiny random VGG19 in torchvision's ``features`` layout (4-8 channels per conv), saved the way timm's
``vgg19.tv_in1k`` is (``model.safetensors``, ``features.N.*`` plus timm's classifier names), for the
perceptual-loss tests and any training test that needs a VGG offline."""

from __future__ import annotations

from pathlib import Path

import torch

# torchvision's VGG19 ("E") with tiny widths: a number is a 3x3 conv (+ ReLU), "M" a 2x2 max-pool.
TINY_VGG19_WIDTHS = (4, 4, "M", 6, 6, "M", 8, 8, 8, 8, "M", 8, 8, 8, 8, "M", 8, 8, 8, 8, "M")
TINY_VGG16_WIDTHS = (4, 4, "M", 6, 6, "M", 8, 8, 8, "M", 8, 8, 8, "M", 8, 8, 8, "M")


def tiny_vgg_state(widths=TINY_VGG19_WIDTHS, *, seed: int = 0, naming: str = "timm", batch_norm: bool = False) -> dict[str, torch.Tensor]:
    """Random ``features.N.*`` tensors in torchvision's indices (a conv takes 2 indices, 3 with batch
    norm, a pool 1), plus classifier tensors in timm's (``pre_logits.fc1``, ``head.fc``) or torchvision's
    (``classifier.0``, ``classifier.6``) names, which a perceptual loss must ignore."""
    generator = torch.Generator().manual_seed(seed)
    state, index, channels = {}, 0, 3
    for width in widths:
        if width == "M":
            index += 1
            continue
        std = (2.0 / (9 * channels)) ** 0.5
        state[f"features.{index}.weight"] = torch.randn(width, channels, 3, 3, generator=generator) * std
        state[f"features.{index}.bias"] = torch.randn(width, generator=generator) * 0.1
        index += 1
        if batch_norm:
            state[f"features.{index}.weight"] = 1 + 0.1 * torch.randn(width, generator=generator)
            state[f"features.{index}.bias"] = 0.1 * torch.randn(width, generator=generator)
            state[f"features.{index}.running_mean"] = 0.1 * torch.randn(width, generator=generator)
            state[f"features.{index}.running_var"] = 1 + 0.1 * torch.rand(width, generator=generator)
            state[f"features.{index}.num_batches_tracked"] = torch.tensor(100)
            index += 1
        index += 1  # ReLU
        channels = width
    if naming == "timm":
        state["pre_logits.fc1.weight"] = torch.randn(16, channels, 7, 7, generator=generator)
        state["pre_logits.fc1.bias"] = torch.zeros(16)
        state["head.fc.weight"] = torch.randn(10, 16, generator=generator)
        state["head.fc.bias"] = torch.zeros(10)
    elif naming == "torchvision":
        state["classifier.0.weight"] = torch.randn(16, channels * 49, generator=generator)
        state["classifier.0.bias"] = torch.zeros(16)
        state["classifier.6.weight"] = torch.randn(10, 16, generator=generator)
        state["classifier.6.bias"] = torch.zeros(10)
    else:
        raise ValueError(f"naming={naming!r}; choose 'timm' or 'torchvision'.")
    return state


def save_tiny_vgg19(folder: str | Path, **kwargs) -> Path:
    """``folder/model.safetensors`` of :func:`tiny_vgg_state` (timm names) and timm's ``config.json``; returns ``folder``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tiny_vgg_state(**kwargs), str(folder / "model.safetensors"))
    (folder / "config.json").write_text('{"architecture": "vgg19", "num_classes": 10}\n')
    return folder
