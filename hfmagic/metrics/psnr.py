"""PSNR as MMagic computes it, plus the image preparation that PSNR and SSIM share.

Two input conventions:

* numpy arrays, HWC (or CHW with ``input_order="CHW"``, or HW), values in [0, 255], uint8 or
  float: one image pair, the result is a Python ``float``;
* torch tensors, NCHW (or CHW), values in [0, 1] (uint8 tensors are read as [0, 255]): a batch,
  the result is a float64 tensor of per-image values (a 0-d tensor for CHW input).

Preparation follows MMagic's ``img_transform``: cast to float32, optionally convert to the Y
channel of YCbCr (BT.601, as MATLAB's ``rgb2ycbcr``: Y = 16 + 65.481 R + 128.553 G + 24.966 B
with R, G, B in [0, 1]), then crop ``crop_border`` pixels from every side.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

__all__ = ["psnr", "rgb_to_y", "prepare_pair"]

# BT.601 luma weights applied to R, G, B in [0, 1] (MATLAB's rgb2ycbcr, mmcv's rgb2ycbcr).
_Y_WEIGHTS = (65.481, 128.553, 24.966)
_CHANNEL_ORDERS = ("rgb", "bgr")


def rgb_to_y(images: torch.Tensor, channel_order: str = "rgb") -> torch.Tensor:
    """Y channel of YCbCr on the [0, 255] scale.

    Args:
        images: (N, 3, H, W) float tensor with values in [0, 255].
        channel_order: ``"rgb"`` (MMagic's default) or ``"bgr"`` (BasicSR's ``test_y_channel``).
    Returns:
        (N, 1, H, W) float32 tensor, Y in [16, 235].
    """
    if channel_order not in _CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {_CHANNEL_ORDERS}, got {channel_order!r}.")
    weights = _Y_WEIGHTS if channel_order == "rgb" else _Y_WEIGHTS[::-1]
    w = torch.tensor(weights, dtype=torch.float64, device=images.device).view(1, 3, 1, 1)
    # mmcv: float32 image / 255 -> dot product with float64 weights + 16 -> / 255 -> float32 -> * 255.
    unit = images.to(torch.float32) / 255.0
    y = ((unit.to(torch.float64) * w).sum(dim=1, keepdim=True) + 16.0) / 255.0
    return y.to(torch.float32) * 255.0


def _numpy_to_nchw(img: np.ndarray, input_order: str, name: str) -> torch.Tensor:
    if input_order not in ("HWC", "CHW"):
        raise ValueError(f"input_order must be 'HWC' or 'CHW', got {input_order!r}.")
    if img.ndim == 2:
        img = img[..., None] if input_order == "HWC" else img[None]
    if img.ndim != 3:
        raise ValueError(f"{name} must be an {input_order} (or HW) array, got shape {img.shape}.")
    if not (np.issubdtype(img.dtype, np.floating) or np.issubdtype(img.dtype, np.integer)):
        raise ValueError(f"{name} must hold numbers in [0, 255], got dtype {img.dtype}.")
    # MMagic casts to float32 before anything else.
    tensor = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))
    if input_order == "HWC":
        tensor = tensor.permute(2, 0, 1)
    return tensor.unsqueeze(0)


def _torch_to_nchw(img: torch.Tensor, name: str) -> torch.Tensor:
    if img.dim() not in (3, 4):
        raise ValueError(f"{name} must be an (N, C, H, W) or (C, H, W) tensor in [0, 1], got shape {tuple(img.shape)}.")
    if img.dim() == 3:
        img = img.unsqueeze(0)
    if img.dtype == torch.uint8:
        return img.to(torch.float32)
    if not img.is_floating_point():
        raise ValueError(f"{name} must be a float tensor in [0, 1] (or uint8 in [0, 255]), got dtype {img.dtype}.")
    if img.numel() and float(img.detach().amax()) > 2.0:
        raise ValueError(
            f"{name} holds values up to {float(img.detach().amax()):.1f}, but torch inputs must be in [0, 1]: "
            "divide by 255, or pass a numpy HWC array in [0, 255]."
        )
    return img.detach().to(torch.float32) * 255.0


def prepare_pair(
    img1: np.ndarray | torch.Tensor,
    img2: np.ndarray | torch.Tensor,
    crop_border: int = 0,
    y_channel: bool = False,
    input_order: str = "HWC",
    channel_order: str = "rgb",
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Bring two images (or batches) to float32 NCHW tensors on the [0, 255] scale, Y-converted
    and cropped as MMagic does.

    Returns:
        ``(a, b, batched)``: two (N, C', H', W') float32 tensors (C' = 1 with ``y_channel`` on an
        RGB image) and whether the inputs were torch tensors (results stay per image).
    """
    if channel_order not in _CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {_CHANNEL_ORDERS}, got {channel_order!r}.")
    if isinstance(img1, np.ndarray) and isinstance(img2, np.ndarray):
        a, b, batched = _numpy_to_nchw(img1, input_order, "img1"), _numpy_to_nchw(img2, input_order, "img2"), False
        if img1.dtype.kind == img2.dtype.kind == "f" and 0 < max(float(a.max()), float(b.max())) <= 1.0:
            warnings.warn(
                "img1 and img2 are float arrays in [0, 1], but numpy images are read on the [0, 255] scale "
                "(MMagic's convention): multiply them by 255, or pass torch tensors (NCHW in [0, 1]).",
                stacklevel=3,
            )
    elif isinstance(img1, torch.Tensor) and isinstance(img2, torch.Tensor):
        a, b, batched = _torch_to_nchw(img1, "img1"), _torch_to_nchw(img2, "img2"), img1.dim() == 4
    else:
        raise ValueError(
            "img1 and img2 must both be numpy arrays (HWC, [0, 255]) or both torch tensors (NCHW, [0, 1]); "
            f"got {type(img1).__name__} and {type(img2).__name__}."
        )
    if a.shape != b.shape:
        raise ValueError(f"Image shapes differ: {tuple(img1.shape)} and {tuple(img2.shape)}.")
    if y_channel and a.shape[1] == 3:
        # As BasicSR: only 3-channel images are converted; a 1-channel image already is luma.
        a, b = rgb_to_y(a, channel_order), rgb_to_y(b, channel_order)
    elif y_channel and a.shape[1] != 1:
        raise ValueError(f"y_channel=True needs 3-channel (or 1-channel) images, got {a.shape[1]} channels.")
    if not isinstance(crop_border, (int, np.integer)) or crop_border < 0:
        raise ValueError(f"crop_border must be an integer >= 0, got {crop_border!r}.")
    if crop_border:
        height, width = a.shape[-2:]
        if 2 * crop_border >= min(height, width):
            raise ValueError(
                f"crop_border={crop_border} removes the whole {height}x{width} image; use a smaller crop_border."
            )
        crop_border = int(crop_border)
        a = a[..., crop_border:-crop_border, crop_border:-crop_border]
        b = b[..., crop_border:-crop_border, crop_border:-crop_border]
    return a, b, batched


def psnr(
    img1: np.ndarray | torch.Tensor,
    img2: np.ndarray | torch.Tensor,
    crop_border: int = 0,
    y_channel: bool = False,
    input_order: str = "HWC",
    channel_order: str = "rgb",
) -> float | torch.Tensor:
    """Peak signal-to-noise ratio, 20 * log10(255 / sqrt(MSE)), as MMagic (MSE in float32).

    Args:
        img1, img2: numpy HWC arrays in [0, 255] (uint8 or float), or torch NCHW tensors in [0, 1].
        crop_border: pixels removed from every side before comparing (MMagic's zoo uses the scale).
        y_channel: compare the Y channel of YCbCr instead of RGB.
        input_order: ``"HWC"`` or ``"CHW"`` for numpy inputs (torch inputs are always channels-first).
        channel_order: ``"rgb"`` (MMagic's default) or ``"bgr"`` (BasicSR's convention); only
            matters with ``y_channel``.
    Returns:
        PSNR in dB (``inf`` for identical images): a float for numpy inputs, a float64 tensor of
        shape (N,) for NCHW tensors (0-d for CHW).
    """
    a, b, batched = prepare_pair(img1, img2, crop_border, y_channel, input_order, channel_order)
    mse = ((a - b) ** 2).mean(dim=(1, 2, 3)).to(torch.float64)
    # mse == 0 gives log10(inf) = inf, MMagic's value for identical images.
    values = 20.0 * torch.log10(255.0 / torch.sqrt(mse))
    if isinstance(img1, np.ndarray):
        return float(values[0])
    return values if batched else values[0]
