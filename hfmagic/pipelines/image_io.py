"""Images in and out of the pipelines: any accepted input to uint8 / uint16 arrays split into
colour and alpha, and model outputs back to uint8 (MMagic's ``tensor2img``) or uint16."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

__all__ = ["ImageInput", "bicubic_alpha", "open_image", "split_channels", "to_uint8", "to_uint16"]

ImageInput = Image.Image | np.ndarray | str | Path

# PIL modes of 16-bit grayscale ("I" is a 32-bit container: Pillow opens 16-bit PGMs and signed
# 16-bit TIFFs so); upscaled in 16 bits. "F" (32-bit float) is refused with a hint.
_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")


def to_uint8(tensor: torch.Tensor, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """(C, H, W) float in [low, high] -> (H, W, C) uint8 as MMagic's ``tensor2img``: clamp,
    rescale to [0, 1], times 255, round (half to even)."""
    tensor = tensor.float().clamp(low, high)
    if (low, high) != (0.0, 1.0):
        tensor = (tensor - low) / (high - low)
    return (tensor * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def to_uint16(tensor: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W, C) uint16: clamp, times 65535, round (half to even)."""
    # int32 on the device: torch's uint16 lacks most kernels; the values fit either way.
    return (tensor.float().clamp(0.0, 1.0) * 65535.0).round().to(torch.int32).permute(1, 2, 0).cpu().numpy().astype(np.uint16)


def open_image(path: str | Path) -> Image.Image | np.ndarray:
    """A file as a loaded PIL image, or as a uint16 array (H, W, C) for 16-bit colour files, which
    Pillow would truncate to 8 bits (see :func:`hfmagic.data.image16.read_image`)."""
    from ..data.image16 import read_image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No image file at {str(path)!r}.")
    try:
        # Cameras store the orientation in EXIF; PNG output has none, so it is applied now.
        return read_image(path)
    except (OSError, Image.DecompressionBombError, SyntaxError, ValueError) as err:
        raise ValueError(f"Cannot read image {str(path)!r}: {err}") from err


def split_channels(image: ImageInput) -> tuple[np.ndarray, np.ndarray | None]:
    """Any accepted input -> (colour (H, W, 1 or 3), alpha (H, W, 1) or None), both uint8 for 8-bit
    images and uint16 for 16-bit ones."""
    if isinstance(image, (str, Path)):
        image = open_image(image)
    if isinstance(image, Image.Image):
        if image.mode == "F":
            raise ValueError(
                "'F' images (32-bit float) are not supported: the pipeline reads 8- and 16-bit images. Convert "
                "first, e.g. Image.fromarray(np.clip(np.asarray(img), 0, 255).round().astype(np.uint8)) for a "
                "float image in 0..255."
            )
        if image.mode in _SIXTEEN_BIT_MODES:
            image = gray16_array(image)
        elif image.mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        elif image.mode in ("1", "La", "RGBa"):
            image = image.convert({"1": "L", "La": "LA", "RGBa": "RGBA"}[image.mode])
        elif image.mode not in ("L", "LA", "RGB", "RGBA"):
            image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV
    if isinstance(image, Image.Image):
        array = np.asarray(image)
    elif isinstance(image, np.ndarray):
        array = image.astype(np.uint16) if image.dtype.kind == "u" and image.dtype.itemsize == 2 else image  # e.g. >u2
        if array.dtype not in (np.uint8, np.uint16):
            raise ValueError(
                f"numpy images must be uint8 or uint16 HWC (or HW) arrays, got dtype {array.dtype} (for floats in "
                "0..1, pass np.round(a * 65535).astype(np.uint16) to keep their precision)."
            )
    else:
        raise TypeError(
            f"Cannot upscale a {type(image).__name__}: pass a PIL image, a uint8 or uint16 numpy array (H, W, C) "
            "or (H, W), a file path, or a list of these."
        )
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"Expected an image of shape (H, W) or (H, W, C) with C in 1..4, got {array.shape}.")
    if array.shape[2] in (2, 4):  # LA, RGBA
        return array[:, :, :-1], array[:, :, -1:]
    return array, None


def bicubic_alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
    """PIL bicubic resize of an alpha plane (H, W) uint8/uint16 -> (sH, sW), same dtype. 16-bit
    planes resize in PIL's float mode and are rounded and clipped as PIL does for "L"."""
    h, w = alpha.shape
    size = (w * scale, h * scale)
    if alpha.dtype == np.uint8:
        return np.asarray(Image.fromarray(alpha).resize(size, Image.Resampling.BICUBIC))
    resized = np.asarray(Image.fromarray(alpha.astype(np.float32)).resize(size, Image.Resampling.BICUBIC))
    return np.clip(np.rint(resized), 0, 65535).astype(np.uint16)


def gray16_array(image: Image.Image) -> np.ndarray:
    """A 16-bit grayscale PIL image ("I;16*", or "I" holding 0..65535) -> uint16 (H, W)."""
    array = np.asarray(image)
    if image.mode == "I" and array.size and (array.min() < 0 or array.max() > 65535):
        raise ValueError(
            f"This 'I' (32-bit integer) image holds values from {array.min()} to {array.max()}; the pipeline "
            "reads 16-bit grayscale (0..65535). Rescale it first, e.g. to np.uint16."
        )
    return array.astype(np.uint16)

