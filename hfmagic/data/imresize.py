"""MATLAB's ``imresize`` (bicubic) in torch, as MMagic and BasicSR use it to make LR images.

The algorithm is MATLAB's: cubic convolution kernel with a = -0.5; when downscaling with
antialiasing the kernel is widened by 1/scale (and its height scaled by scale); the image is
extended by symmetric (mirror, edge repeated) padding; each output pixel is the normalised
weighted sum of the input pixels under the kernel. Dimensions are resized one at a time,
the one with the smaller scale first.

The per-dimension weights are computed once in float64 and applied as a gather + weighted sum,
so the resize runs batched on CPU or GPU. PyTorch's and PIL's bicubic resizes are different
functions (no antialiasing / different kernel): do not use them to make LR training data.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch

__all__ = ["imresize", "cubic_kernel", "resize_contributions"]


def cubic_kernel(x: np.ndarray) -> np.ndarray:
    """MATLAB's bicubic kernel (Keys, a = -0.5), evaluated elementwise."""
    absx = np.abs(x)
    absx2 = absx * absx
    absx3 = absx2 * absx
    near = (1.5 * absx3 - 2.5 * absx2 + 1.0) * (absx <= 1)
    far = (-0.5 * absx3 + 2.5 * absx2 - 4.0 * absx + 2.0) * ((absx > 1) & (absx <= 2))
    return near + far


def resize_contributions(in_length: int, out_length: int, scale: float, antialiasing: bool) -> tuple[np.ndarray, np.ndarray]:
    """Weights (out_length, P) float64 and 0-based input indices (out_length, P) int64 of a 1-D
    MATLAB bicubic resize. Indices outside the input are already folded back by symmetric padding,
    so ``out[i] = sum_p weights[i, p] * in[indices[i, p]]``."""
    kernel_width = 4.0
    widen = scale < 1 and antialiasing
    if widen:
        kernel_width /= scale
    # Output pixel i (1-based) is centred on input coordinate u (1-based, pixel centres at integers).
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    distance = u[:, None] - indices
    weights = scale * cubic_kernel(distance * scale) if widen else cubic_kernel(distance)
    weights = weights / weights.sum(axis=1, keepdims=True)
    # Columns that no output pixel uses (always the first and last tap) are dropped, as MATLAB does.
    used = np.any(weights != 0, axis=0)
    weights, indices = weights[:, used], indices[:, used]
    # Symmetric padding: ... 1 0 | 0 1 2 ... n-1 | n-1 n-2 ...  (period 2n, works for any overhang).
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    folded = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    return weights, folded


@lru_cache(maxsize=256)
def _torch_contributions(in_length: int, out_length: int, scale: float, antialiasing: bool) -> tuple[torch.Tensor, torch.Tensor]:
    weights, indices = resize_contributions(in_length, out_length, scale, antialiasing)
    return torch.tensor(weights), torch.tensor(indices)


def _resize_last_dim(x: torch.Tensor, out_length: int, scale: float, antialiasing: bool) -> torch.Tensor:
    weights, indices = _torch_contributions(x.shape[-1], out_length, scale, antialiasing)
    w = weights.to(device=x.device, dtype=x.dtype)
    idx = indices.to(device=x.device)
    gathered = x.index_select(-1, idx.reshape(-1)).unflatten(-1, idx.shape)  # (..., out, P)
    return torch.einsum("...op,op->...o", gathered, w)


def _output_shape(
    in_shape: tuple[int, int], scale: float | Sequence[float] | None, output_shape: Sequence[int] | None
) -> tuple[tuple[int, int], tuple[float, float]]:
    if (scale is None) == (output_shape is None):
        raise ValueError("imresize needs exactly one of `scale` (e.g. 0.25) or `output_shape` ((height, width)).")
    if scale is not None:
        scales = (float(scale), float(scale)) if np.isscalar(scale) else tuple(float(s) for s in scale)
        if len(scales) != 2 or min(scales) <= 0:
            raise ValueError(f"scale must be a positive number or a (height, width) pair; got {scale!r}.")
        # MATLAB: ceil(scale * size). The tiny tolerance keeps 30 * (1/3) from becoming 11.
        out = tuple(max(1, int(math.ceil(n * s - 1e-9))) for n, s in zip(in_shape, scales))
        return out, scales  # type: ignore[return-value]
    out = tuple(int(n) for n in output_shape)
    if len(out) != 2 or min(out) <= 0:
        raise ValueError(f"output_shape must be a (height, width) pair of positive ints; got {output_shape!r}.")
    return out, (out[0] / in_shape[0], out[1] / in_shape[1])  # type: ignore[return-value]


def _matlab_round_uint8(x):
    """MATLAB's uint8 conversion: round half away from zero, saturate to 0..255."""
    if isinstance(x, torch.Tensor):
        return torch.floor(x + 0.5).clamp_(0, 255).to(torch.uint8)
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def imresize(
    img: np.ndarray | torch.Tensor,
    scale: float | Sequence[float] | None = None,
    output_shape: Sequence[int] | None = None,
    antialiasing: bool = True,
    *,
    round_uint8: bool = False,
) -> np.ndarray | torch.Tensor:
    """Resize like MATLAB's ``imresize(img, scale, 'bicubic')`` (BasicSR's/MMagic's ``imresize``).

    Args:
        img: numpy array (H, W) or (H, W, C), uint8 or float (any range, 0..255 for images);
            or a torch tensor (..., H, W), e.g. (C, H, W) or (N, C, H, W), float (any device) or uint8.
        scale: resize factor, e.g. 0.25 for x4 downscaling or 2 for upscaling (a (h, w) pair is
            accepted). The output size is ``ceil(size * scale)``.
        output_shape: (height, width) of the result instead of ``scale``; the per-dimension
            scale is then ``out / in``, as in MATLAB.
        antialiasing: widen the kernel when downscaling (MATLAB's default, used for SR data).
        round_uint8: return uint8 rounded as MATLAB does on uint8 images (half away from zero,
            saturated to 0..255). Values must then be in the 0..255 range.

    Returns:
        The same kind of object as ``img``, resized over H and W. numpy: float64 for uint8 input
        (MMagic 1.2 does not round either), the input's float dtype otherwise; torch: the input's
        float dtype (float32 for uint8 input). ``round_uint8=True`` gives uint8 instead.
        numpy input is computed in float64; tensors in their own dtype (float32 for half/bfloat16).
    """
    is_numpy = isinstance(img, np.ndarray)
    if is_numpy:
        if img.ndim not in (2, 3):
            raise ValueError(f"imresize takes a numpy image (H, W) or (H, W, C); got shape {img.shape}.")
        in_dtype = img.dtype
        x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float64))
        if img.ndim == 3:
            x = x.permute(2, 0, 1)  # resize over the last two dims
    elif isinstance(img, torch.Tensor):
        if img.ndim < 2:
            raise ValueError(f"imresize takes a tensor (..., H, W); got shape {tuple(img.shape)}.")
        in_dtype = img.dtype
        compute = img.dtype if img.dtype in (torch.float32, torch.float64) else torch.float32
        x = img.to(compute)
    else:
        raise TypeError(f"imresize takes a numpy array or a torch tensor, not {type(img).__name__}.")

    (out_h, out_w), (scale_h, scale_w) = _output_shape((x.shape[-2], x.shape[-1]), scale, output_shape)
    # MATLAB resizes the dimension with the smaller scale first (less work, and it is the reference order).
    if scale_h <= scale_w:
        x = _resize_last_dim(x.transpose(-1, -2), out_h, scale_h, antialiasing).transpose(-1, -2)
        x = _resize_last_dim(x, out_w, scale_w, antialiasing)
    else:
        x = _resize_last_dim(x, out_w, scale_w, antialiasing)
        x = _resize_last_dim(x.transpose(-1, -2), out_h, scale_h, antialiasing).transpose(-1, -2)

    if is_numpy:
        if img.ndim == 3:
            x = x.permute(1, 2, 0)
        out = x.contiguous().numpy()
        if round_uint8:
            return _matlab_round_uint8(out)
        return out.astype(in_dtype, copy=False) if np.issubdtype(in_dtype, np.floating) else out
    if round_uint8:
        return _matlab_round_uint8(x)
    if in_dtype.is_floating_point and x.dtype != in_dtype:
        x = x.to(in_dtype)
    return x.contiguous()
