"""Image helpers shared by the data, metrics and pipeline code.

Every image that enters hfmagic goes through :func:`load_rgb`, so grayscale, RGBA, palette and
16-bit files all become the same thing: an RGB array of shape (H, W, 3), ``uint8``, or ``uint16``
for 16-bit sources when asked (``keep_16bit=True``, what the training datasets do, so that 16-bit
data reaches the model as ``x / 65535`` rather than rounded to 8 bits). Tensors are RGB float in
[0, 1], CHW or NCHW.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
import torch
from PIL import Image

__all__ = ["load_rgb", "pil_to_rgb_array", "to_tensor", "to_numpy", "image_size", "IMAGE_EXTENSIONS"]

# File endings treated as images when a folder or archive is scanned.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def pil_to_rgb_array(image: Image.Image, *, keep_16bit: bool = False) -> np.ndarray:
    """A PIL image of any mode -> RGB ``uint8`` array (H, W, 3).

    16-bit images ("I;16", "I") are scaled to 8 bits (value / 257, rounded), not clipped, or kept
    as ``uint16`` with ``keep_16bit`` (an "I" image whose values are all <= 255 is taken as 8-bit
    either way); RGBA and LA drop the alpha channel (no compositing: the stored colours are kept);
    palette ("P") images are expanded to their colours; float ("F") images are taken as 0..255 and
    rounded.
    """
    mode = image.mode
    if mode == "RGB":
        array = np.asarray(image)
    elif mode.startswith("I;16") or mode == "I":
        # 16-bit grayscale: keep the full range by mapping 65535 -> 255.
        values = np.asarray(image).astype(np.float64)
        if mode == "I" and values.max(initial=0) <= 255:  # an 8-bit image stored as 32-bit ints
            gray = values
        elif keep_16bit:
            return np.repeat(np.clip(values, 0, 65535).astype(np.uint16)[..., None], 3, axis=2)
        else:
            gray = values / 257.0
        array = np.repeat(np.clip(np.rint(gray), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    elif mode == "F":
        gray = np.clip(np.rint(np.asarray(image, dtype=np.float64)), 0, 255).astype(np.uint8)
        array = np.repeat(gray[..., None], 3, axis=2)
    elif mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        array = np.asarray(image.convert("RGBA"))[..., :3]
    else:  # L, 1, P, CMYK, YCbCr, LAB, HSV ...
        array = np.asarray(image.convert("RGB"))
    array = np.ascontiguousarray(array, dtype=np.uint8)
    # np.asarray of a PIL image is read-only; callers (and torch.from_numpy) expect a normal array.
    return array if array.flags.writeable else array.copy()


def _open(source: Any) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, dict):  # a datasets Image feature with decode=False: {"bytes", "path"}
        if source.get("bytes") is not None:
            return Image.open(io.BytesIO(source["bytes"]))
        if source.get("path"):
            return Image.open(source["path"])
        raise ValueError(f"Image entry has neither bytes nor a path: {source!r}.")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return Image.open(io.BytesIO(bytes(source)))
    if isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"No image file at {os.fspath(source)!r}.")
        return Image.open(source)
    raise TypeError(
        f"Cannot read an image from {type(source).__name__}; pass a PIL image, a path, PNG/JPEG bytes, "
        "a {'bytes', 'path'} dict or a numpy array."
    )


def load_rgb(source: Any, *, keep_16bit: bool = False) -> np.ndarray:
    """Decode an image once and return it as an RGB ``uint8`` array (H, W, 3).

    ``source`` may be a PIL image, a file path, encoded bytes, a datasets ``{"bytes", "path"}``
    dict, or a numpy array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) of uint8/uint16 (or float
    in 0..255). 16-bit sources are rounded to 8 bits (value / 257), unless ``keep_16bit``: then
    they come back as ``uint16`` (H, W, 3), 16-bit grayscale, RGB, RGBA and gray + alpha
    PNG/TIFF/PPM files included (decoded by :mod:`hfmagic.data.image16`, as Pillow truncates
    16-bit colour; a PIL image passed in is taken as Pillow decoded it).
    """
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source, keep_16bit)
    image = _open(source)
    try:
        if keep_16bit and not isinstance(source, Image.Image):
            from .image16 import decode_16bit, truncated_by_pillow

            if truncated_by_pillow(image):
                deep = decode_16bit(image, _source_bytes(source))  # (H, W, 2 | 3 | 4)
                rgb = np.repeat(deep[..., :1], 3, axis=2) if deep.shape[2] == 2 else deep[..., :3]  # alpha dropped
                return np.ascontiguousarray(rgb)
        image.load()
        return pil_to_rgb_array(image, keep_16bit=keep_16bit)
    finally:
        if not isinstance(source, Image.Image):
            image.close()


def _source_bytes(source: Any) -> bytes:
    """The encoded bytes of a file path, bytes or ``{"bytes", "path"}`` source."""
    if isinstance(source, dict):
        source = source["bytes"] if source.get("bytes") is not None else source["path"]
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    with open(source, "rb") as handle:
        return handle.read()


def _array_to_rgb(array: np.ndarray, keep_16bit: bool = False) -> np.ndarray:
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"Expected an image array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got shape {array.shape}.")
    if array.dtype == np.uint16 and keep_16bit:
        array = np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array
        return np.ascontiguousarray(array[..., :3])
    if array.dtype == np.uint16:
        array = np.rint(array / 257.0)
    if array.dtype != np.uint8:
        array = np.clip(np.rint(array), 0, 255).astype(np.uint8)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array[..., :3])


def image_size(source: Any) -> tuple[int, int]:
    """(height, width) of an image, reading only its header when it is a file or bytes."""
    if isinstance(source, np.ndarray):
        return int(source.shape[0]), int(source.shape[1])
    image = _open(source)
    width, height = image.size
    if not isinstance(source, Image.Image):
        image.close()
    return height, width


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """RGB array (H, W, 3) -> float32 tensor (3, H, W); uint8 is scaled to [0, 1] (/ 255), uint16
    too (/ 65535), floats are divided by 255 (they are taken to be in the 0..255 range, as the rest
    of hfmagic's numpy API)."""
    if image.ndim != 3:
        raise ValueError(f"Expected an (H, W, C) array; got shape {image.shape}.")
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    return tensor.float().div_(65535.0 if image.dtype == np.uint16 else 255.0)


def to_numpy(tensor: torch.Tensor, *, dtype: type | np.dtype = np.uint8) -> np.ndarray:
    """Float tensor (3, H, W) or (N, 3, H, W) in [0, 1] -> array (H, W, 3) / (N, H, W, 3) in 0..255.

    With ``dtype=np.uint8`` (default) the values are clipped and rounded; with a float dtype they
    are scaled by 255 only (no rounding, no clipping).
    """
    if tensor.ndim not in (3, 4):
        raise ValueError(f"Expected a (C, H, W) or (N, C, H, W) tensor; got shape {tuple(tensor.shape)}.")
    array = tensor.detach().to("cpu", torch.float64).movedim(-3, -1).numpy() * 255.0
    if np.dtype(dtype) == np.uint8:
        return np.clip(np.rint(array), 0, 255).astype(np.uint8)
    return array.astype(dtype)
