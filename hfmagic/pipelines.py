"""Inference pipelines: super-resolution of whole images (tiled for large ones) and DCGAN sampling.

```python
>>> from hfmagic import SuperResolutionPipeline, DCGANPipeline
>>> upscale = SuperResolutionPipeline.from_pretrained("org/msrresnet-x4", device="cuda", dtype="float16")
>>> big = upscale("photo.jpg", tile_size=256)          # PIL image, 4x larger
>>> faces = DCGANPipeline.from_pretrained("org/dcgan-celeba")(num_images=16, seed=0)
```

8-bit images go in and out as PIL images; the conversion to uint8 follows MMagic's
``tensor2img`` (clamp to the range, scale to 255, round half to even). 16-bit images (PIL "I;16",
uint16 arrays, 16-bit PNG/TIFF files) are computed from ``x / 65535`` and come back as uint16 arrays
(``round(clamp(y, 0, 1) * 65535)``), never through 8 bits; :func:`hfmagic.data.save_image` writes
them as 16-bit PNG.

Tiling. ``tile_size`` cuts the low-resolution image into cores of ``tile_size`` x ``tile_size``
pixels; each core is fed to the model with ``tile_overlap`` extra pixels of context on every side
(clipped at the image border), and only the core's part of the output is kept. The upscaled image
is written core by core into a preallocated uint8 array, so the memory the model needs is bounded by
``(tile_size + 2 * tile_overlap)`` squared, not by the image. When the overlap is at least the
model's :func:`receptive_field`, every kept output pixel is computed from exactly the same input
pixels as in a whole-image pass. With ``SuperResolutionPipeline(..., exact=True)`` (CPU) it is also
computed with the same arithmetic, so tiled and whole-image outputs are bitwise equal (tested for
SRCNN, MSRResNet and EDSR at x2/x3/x4, tile sizes that do and do not divide the image). By default
(faster kernels) they agree within ~1e-6 in float and up to a rare one-step flip in uint8; the
class docstring lists the shape-dependent kernels that cause it.

Two-stage tiling. Models written as ``forward_head(forward_features(x), x)`` (MSRResNet, EDSR)
are tiled in two stages by default: ``forward_features`` (the residual trunk, at LR resolution)
runs on regions of ``upscale_factor * tile_size / 2`` (at least 512) LR pixels with its own
receptive field as context, and only ``forward_head`` (the upsampling tail that makes the HR-sized
tensors) runs on ``tile_size`` tiles, with the head's few pixels of context. A single-stage tile
recomputes the whole receptive field (35 LR pixels for the 16-block MSRResNet) on every side, which
costs ``((tile + 70) / tile)^2`` of the work: 1.6x at tile 256; two stages cost a few per cent (see
benchmarks/RESULTS.md). The peak memory stays that of a ``tile_size`` tile: a feature region's
64-channel LR maps hold a quarter of the floats of the head's HR maps of one tile (measured on
2200x2200 -> 8800x8800 with tile 512: 3.5 GB, single-stage 3.9 GB; regions twice as large peaked
at 4.7 GB).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from .layers import exact_interpolation
from .models import SuperResolutionPreTrainedModel

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TILE_OVERLAP",
    "DTYPES",
    "DCGANPipeline",
    "SuperResolutionPipeline",
    "make_grid",
    "native_bf16",
    "probe_receptive_field",
    "probe_split_receptive_fields",
    "receptive_field",
    "split_receptive_fields",
    "supports_split",
]

ImageInput = Image.Image | np.ndarray | str | Path

# Names accepted for `dtype`, besides "auto" (see `_resolve_dtype`); also the CLI's --dtype choices.
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
AUTO_DTYPE = "auto"

# Overlap used when a model's receptive field cannot be determined.
DEFAULT_TILE_OVERLAP = 16

# Two-stage tiling runs forward_features on regions of at least this many LR pixels a side: with
# 64 channels a 512-pixel region's map is 64 MB, and its 2 x receptive-field seams stay cheap.
_MIN_FEATURE_REGION = 512

# Exact mode makes a corner tile's pixel count congruent to the image's modulo this many elements
# (32 floats = 128 bytes: a multiple of every SIMD width and cache line), so that the BLAS rows of
# the tile and of the whole image start at the same alignment (see `SuperResolutionPipeline`).
_EXACT_ALIGN = 32
# Exact mode runs convolutions to fewer output channels than this on one thread.
_EXACT_SINGLE_THREAD_CHANNELS = 16

# PIL modes of 16-bit grayscale ("I" is a 32-bit container: Pillow opens 16-bit PGMs and signed
# 16-bit TIFFs so); upscaled in 16 bits. "F" (32-bit float) is refused with a hint.
_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")


# --------------------------------------------------------------------------------------------
# Receptive fields: the model's own formula (``model.receptive_field()``, see
# ``hfmagic.models.receptive_field``), else measured with a NaN probe.
# --------------------------------------------------------------------------------------------


def _probe_halo(run: Callable[[int, int], torch.Tensor], scale: int, max_size: int) -> int | None:
    """Grow a NaN probe until its footprint stays inside: ``run(size, centre)`` runs the network on
    inputs of ``size`` x ``size`` LR pixels with a NaN at (centre, centre) and returns its output
    (N, C, size * scale, size * scale). Returns the footprint's radius in LR pixels."""
    size = 17
    while size <= max_size:
        centre = size // 2
        with torch.inference_mode():
            hit = torch.isnan(run(size, centre)).any(dim=1)[0]
        rows = torch.nonzero(hit.any(dim=1)).flatten() // scale
        cols = torch.nonzero(hit.any(dim=0)).flatten() // scale
        if rows.numel() == 0:
            return None  # the model hides NaNs (e.g. nan_to_num): nothing can be said
        lo, hi = min(rows.min().item(), cols.min().item()), max(rows.max().item(), cols.max().item())
        if lo > 0 and hi < size - 1:
            return max(centre - lo, hi - centre)
        size = 2 * size - 1
    return None


def _nan_probe(model: SuperResolutionPreTrainedModel, size: int, centre: int) -> torch.Tensor:
    param = next(model.parameters())
    probe = torch.zeros(1, model.config.in_channels, size, size, device=param.device, dtype=param.dtype)
    probe[..., centre, centre] = float("nan")
    return probe


def probe_receptive_field(model: SuperResolutionPreTrainedModel, max_size: int = 129) -> int | None:
    """Measure a model's receptive field (LR pixels on each side) by propagating a NaN.

    One NaN in the centre of a zero image spreads through convolutions, activations, pixel
    shuffles and interpolations to exactly the output pixels that depend on it (``0 * nan`` is
    nan, so zero weights do not hide a dependency). The probe grows up to ``max_size`` pixels;
    returns ``None`` when the NaN reaches the border even then (e.g. a global operation).
    """

    def run(size: int, centre: int) -> torch.Tensor:
        return model(pixel_values=_nan_probe(model, size, centre)).reconstruction

    return _probe_halo(run, model.config.upscale_factor, max_size)


def supports_split(model: SuperResolutionPreTrainedModel) -> bool:
    """Whether the model is ``forward_head(forward_features(x), x)`` (the base ``reconstruct``)."""
    cls, base = type(model), SuperResolutionPreTrainedModel
    return cls.reconstruct is base.reconstruct and cls.forward_features is not base.forward_features


def split_receptive_fields(model: SuperResolutionPreTrainedModel, max_size: int = 129) -> tuple[int, int] | None:
    """LR context that a split model's two stages need: ``(forward_features, forward_head)``.

    MSRResNet: ``(2B + 1, 2)``; EDSR: ``(2B + 2, 2)``, at every factor (the head's receptive field
    covers its convolutions between pixel shuffles and, for MSRResNet, the bilinear skip).
    Other split models are probed with NaNs (see :func:`probe_receptive_field`); ``None`` when the
    model is not split (see :func:`supports_split`) or a stage's field cannot be determined.
    """
    if not supports_split(model):
        return None
    own = model.split_receptive_fields()
    if own is not None:
        return own
    return probe_split_receptive_fields(model, max_size)


def probe_split_receptive_fields(model: SuperResolutionPreTrainedModel, max_size: int = 129) -> tuple[int, int] | None:
    """Measure the two stages' receptive fields of a split model with NaNs (see
    :func:`split_receptive_fields`); None when a stage's field cannot be determined."""
    scale = model.config.upscale_factor

    def features(size: int, centre: int) -> torch.Tensor:
        return model.forward_features(_nan_probe(model, size, centre))

    def head(size: int, centre: int) -> torch.Tensor:
        pixel_values = _nan_probe(model, size, centre)
        feats = torch.zeros_like(model.forward_features(torch.zeros_like(pixel_values)))
        feats[..., centre, centre] = float("nan")
        return model.forward_head(feats, pixel_values)

    feature_halo, head_halo = _probe_halo(features, 1, max_size), _probe_halo(head, scale, max_size)
    if feature_halo is None or head_halo is None:
        return None
    return feature_halo, head_halo


def receptive_field(model: SuperResolutionPreTrainedModel) -> int | None:
    """Context in LR pixels that an SR model needs on each side of a pixel.

    A tile overlap of at least this value makes tiled inference agree with a whole-image pass.
    Known values (B = ``num_blocks``; checked against :func:`probe_receptive_field` in the tests):

    - SRCNN: the bicubic taps plus the convolutions' radii (``k // 2``) in HR pixels, brought back
      to LR pixels: 3 for the default (9, 1, 5) kernels at x4, 4 at x3, 5 at x2.
    - MSRResNet: ``2B + 3`` at every factor (16 blocks: 35); the bilinear skip needs only 1.
    - EDSR: ``2B + 4`` at every factor (16 blocks: 36).

    These are the models' ``receptive_field()`` methods. Other models: their own
    ``receptive_field`` (a method returning an int, or an int attribute) when it is not None,
    otherwise :func:`probe_receptive_field`; ``None`` when it cannot be determined.
    """
    own = getattr(model, "receptive_field", None)  # a method, or an int a user set
    own = own() if callable(own) else own
    if own is not None:
        return int(own)
    return probe_receptive_field(model)


# --------------------------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------------------------


def _resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device`` that exists here (default: CUDA when available); ValueError
    naming the problem otherwise (an unknown name, CUDA in a CPU-only build, an index past the GPUs)."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"Unknown device {device!r} ({err}); use 'cpu', 'cuda', 'cuda:1' or 'mps'.") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: CUDA is not available here (no GPU, or a CPU-only torch build); use 'cpu'.")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible (cuda:0 ...).")
    if resolved.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r}: MPS is not available here; use 'cpu'.")
    return resolved


def _cpuinfo_flags() -> set[str]:
    """The CPU flags Linux lists in /proc/cpuinfo (empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[-1].split()}


def _cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 dot products or AMX tiles), where
    oneDNN's bf16 convolutions run ~2x faster than fp32 ones; on other CPUs bf16 is emulated and
    slower than fp32. torch's own CPU checks (private, so looked up) first, /proc/cpuinfo otherwise."""
    if not torch.backends.mkldnn.is_available():  # no oneDNN: bf16 convolutions take a slow native path
        return False
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if all(callable(check) for check in checks):
        try:
            return any(check() for check in checks)
        except RuntimeError:
            pass
    return bool(_cpuinfo_flags() & {"avx512_bf16", "amx_bf16"})


def native_bf16(device: str | torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: a CPU with AVX512-BF16 or AMX, or a CUDA GPU of
    compute capability 8.0+ (Ampere and later); ``False`` for anything else (MPS, older GPUs)."""
    device = torch.device(device)
    if device.type == "cpu":
        return _cpu_has_native_bf16()
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.get_device_capability(device) >= (8, 0)
    return False


def _resolve_dtype(
    dtype: str | torch.dtype | None,
    device: torch.device | None = None,
    exact: bool = False,
    default: str = "float32",
) -> torch.dtype:
    """``dtype`` as a torch dtype (``None``: ``default``). ``"auto"`` is bfloat16 where ``device``
    computes it natively (:func:`native_bf16`) and float32 elsewhere and always when ``exact``;
    the choice is logged at INFO level. ValueError naming the choices for anything else."""
    choices = [AUTO_DTYPE, *sorted(DTYPES)]
    if dtype is None:
        dtype = default
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise ValueError(f"dtype {dtype} is not supported; choose one of {choices}.")
        return dtype
    if dtype == AUTO_DTYPE:
        device = torch.device("cpu") if device is None else torch.device(device)
        if exact:
            chosen, why = torch.float32, "exact mode computes in float32"
        elif native_bf16(device):
            chosen, why = torch.bfloat16, f"{device.type} computes bf16 natively; pass dtype='float32' for full precision"
        else:
            chosen, why = torch.float32, f"no native bf16 on this {device.type}"
        logger.info("dtype='auto' -> %s (%s).", str(chosen).removeprefix("torch."), why)
        return chosen
    if dtype not in DTYPES:
        raise ValueError(f"Unknown dtype {dtype!r}; choose one of {choices}.")
    return DTYPES[dtype]


def _to_uint8(tensor: torch.Tensor, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """(C, H, W) float in [low, high] -> (H, W, C) uint8 as MMagic's ``tensor2img``: clamp,
    rescale to [0, 1], times 255, round (half to even)."""
    tensor = tensor.float().clamp(low, high)
    if (low, high) != (0.0, 1.0):
        tensor = (tensor - low) / (high - low)
    return (tensor * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def _to_uint16(tensor: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W, C) uint16: clamp, times 65535, round (half to even)."""
    # int32 on the device: torch's uint16 lacks most kernels; the values fit either way.
    return (tensor.float().clamp(0.0, 1.0) * 65535.0).round().to(torch.int32).permute(1, 2, 0).cpu().numpy().astype(np.uint16)


def _open_image(path: str | Path) -> Image.Image | np.ndarray:
    """A file as a loaded PIL image, or as a uint16 array (H, W, C) for 16-bit colour files, which
    Pillow would truncate to 8 bits (see :func:`hfmagic.data.image16.read_image`)."""
    from .data.image16 import read_image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No image file at {str(path)!r}.")
    try:
        # Cameras store the orientation in EXIF; PNG output has none, so it is applied now.
        return read_image(path)
    except (OSError, Image.DecompressionBombError, SyntaxError, ValueError) as err:
        raise ValueError(f"Cannot read image {str(path)!r}: {err}") from err


def _split_channels(image: ImageInput) -> tuple[np.ndarray, np.ndarray | None]:
    """Any accepted input -> (colour (H, W, 1 or 3), alpha (H, W, 1) or None), both uint8 for 8-bit
    images and uint16 for 16-bit ones."""
    if isinstance(image, (str, Path)):
        image = _open_image(image)
    if isinstance(image, Image.Image):
        if image.mode == "F":
            raise ValueError(
                "'F' images (32-bit float) are not supported: the pipeline reads 8- and 16-bit images. Convert "
                "first, e.g. Image.fromarray(np.clip(np.asarray(img), 0, 255).round().astype(np.uint8)) for a "
                "float image in 0..255."
            )
        if image.mode in _SIXTEEN_BIT_MODES:
            image = _gray16_array(image)
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


def _bicubic_alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
    """PIL bicubic resize of an alpha plane (H, W) uint8/uint16 -> (sH, sW), same dtype. 16-bit
    planes resize in PIL's float mode and are rounded and clipped as PIL does for "L"."""
    h, w = alpha.shape
    size = (w * scale, h * scale)
    if alpha.dtype == np.uint8:
        return np.asarray(Image.fromarray(alpha).resize(size, Image.Resampling.BICUBIC))
    resized = np.asarray(Image.fromarray(alpha.astype(np.float32)).resize(size, Image.Resampling.BICUBIC))
    return np.clip(np.rint(resized), 0, 65535).astype(np.uint16)


def _gray16_array(image: Image.Image) -> np.ndarray:
    """A 16-bit grayscale PIL image ("I;16*", or "I" holding 0..65535) -> uint16 (H, W)."""
    array = np.asarray(image)
    if image.mode == "I" and array.size and (array.min() < 0 or array.max() > 65535):
        raise ValueError(
            f"This 'I' (32-bit integer) image holds values from {array.min()} to {array.max()}; the pipeline "
            "reads 16-bit grayscale (0..65535). Rescale it first, e.g. to np.uint16."
        )
    return array.astype(np.uint16)


# --------------------------------------------------------------------------------------------
# Super-resolution
# --------------------------------------------------------------------------------------------

_Region = tuple[int, int, int, int]  # y0, y1, x0, x1


class SuperResolutionPipeline:
    """Upscale images with any hfmagic super-resolution model (built-in or registered with
    :func:`hfmagic.register_model`).

    Args:
        model: a ``SuperResolutionPreTrainedModel``; moved to ``device``/``dtype`` and put in eval mode.
        device: ``"cuda"``, ``"cpu"``, ``"cuda:1"``, ...; defaults to CUDA when available.
        dtype: ``"auto"`` (default), ``"float32"``, ``"float16"`` or ``"bfloat16"`` (or the torch
            dtype; ``None`` = ``"auto"``); both half types also run on CPU. ``"auto"`` is bfloat16
            where the device computes it natively (CPUs with AVX512-BF16 or AMX, CUDA GPUs from
            Ampere on; ~2x faster, Y-PSNR within 0.05 dB of float32's with trained weights, see
            benchmarks/bench_bf16_quality.py) and float32 elsewhere and always when ``exact``; the
            choice is logged (INFO). 16-bit images run in float32 under "auto" (bf16 holds 8
            significant bits), on a float32 copy made on first use. A model instance that "auto"
            converts is copied first, so the caller's weights keep their precision; an explicit
            ``dtype`` converts it in place.
        channels_last: run the model in channels_last (NHWC) memory where the backend has fast NHWC
            convolutions (oneDNN on CPU, cuDNN on CUDA); the model's weights are converted in place
            on the first call. Outputs equal the NCHW ones within ~1e-6. Ignored when ``exact``.
        exact: make tiled output bitwise equal to the whole-image output (CPU only): the model runs
            on PyTorch's native convolution (oneDNN off), NCHW, one tile per forward, with
            position-invariant interpolation (:func:`hfmagic.layers.exact_interpolation`) and
            convolutions to fewer than 16 channels on one thread; the tiles at the image's first
            and last pixel get a pixel count congruent to the image's modulo 32. 1.1-4x slower
            than the default (oneDNN, NHWC; measured on 2 CPU cores, 96x96 input, 64-channel
            MSRResNet/EDSR and SRCNN, whole and tiled).
        split_tiling: tile models that define ``forward_features``/``forward_head`` (MSRResNet,
            EDSR) in two stages (see the module docstring): the same output within ~1e-6, with a
            few per cent of redundant work instead of the receptive field around every tile.
            Used when ``tile_size`` is given without ``tile_overlap`` and the pipeline is not
            ``exact``; ``False`` always tiles in one stage.

    Exactness. With ``exact=True`` and ``tile_overlap`` at least the model's receptive field (the
    default), ``pipe(image, tile_size=t)`` equals ``pipe(image)`` bit for bit, in float
    (``upscale_tensor``) and hence in uint8, for SRCNN, MSRResNet and EDSR at x2/x3/x4 and any tile
    size (tested). Without it the two agree within ~1e-6 in float and up to a rare one-step flip in
    uint8, because on CPU these kernels compute a pixel differently depending on the tensor's shape
    (all measured): oneDNN's convolutions (in NCHW and NHWC); PyTorch's bilinear upsampling (2D
    weights for narrow outputs, a separable loop for wide ones) and its x3 source points, computed
    in float32 from the absolute index; and MKL's GEMM under PyTorch's native convolution, whose
    rows start at an alignment that depends on the pixel count, and, with several threads, splits
    the pixels of a few-channel convolution (such as the last 3-channel one) into chunks whose
    boundaries depend on it: the first pixels of a row or chunk that starts unaligned are rounded
    differently. Tested with 2 threads (all cases) and 8 threads (one case), AVX2 CPU. Exact mode
    removes each cause; it is one configuration of the whole pipeline, so its output differs from
    the default mode's by ~1e-7 in float. ``exact=True`` on another device raises ``ValueError``.
    """

    def __init__(
        self,
        model: SuperResolutionPreTrainedModel,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = AUTO_DTYPE,
        channels_last: bool = True,
        exact: bool = False,
        split_tiling: bool = True,
    ):
        if not isinstance(model, SuperResolutionPreTrainedModel):
            raise TypeError(
                f"SuperResolutionPipeline needs a SuperResolutionPreTrainedModel, got {type(model).__name__} "
                "(for GAN generators use DCGANPipeline)."
            )
        self.device = _resolve_device(device)
        if exact and self.device.type != "cpu":
            raise ValueError(
                f"exact=True is only available on CPU (device={str(self.device)!r}): GPU kernels choose their "
                "algorithms by shape. Pass device='cpu', or exact=False (tiles then agree within ~1e-6)."
            )
        self.dtype = _resolve_dtype(dtype, self.device, exact, default=AUTO_DTYPE)
        # "auto" runs 16-bit images in float32 (bf16's 8 significant bits would round them to about
        # 8-bit precision), from the float32 model it was given; built on first use (`_float32`).
        self._float32_source: SuperResolutionPreTrainedModel | None = None
        self._float32_pipeline: SuperResolutionPipeline | None = None
        if dtype in (None, AUTO_DTYPE) and any(p.dtype != self.dtype for p in model.parameters()):
            if all(p.dtype == torch.float32 for p in model.parameters()):
                self._float32_source = model
            model = copy.deepcopy(model)  # an implicit choice must not cast the caller's weights
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.channels_last = channels_last
        self.exact = exact
        self.split_tiling = split_tiling
        self._split_fields: tuple[int, int] | None = None
        self._split_fields_known = False
        self.scale: int = model.config.upscale_factor
        self._receptive_field: int | None = None
        self._receptive_field_known = False

    @classmethod
    def from_pretrained(
        cls,
        model_id_or_path: str | Path,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = AUTO_DTYPE,
        exact: bool = False,
        **kwargs,
    ) -> SuperResolutionPipeline:
        """Load an SR model from a Hub id or a local folder (``config.json`` + weights) through
        ``AutoModelForImageToImage``; ``dtype`` (default ``"auto"``) and ``exact`` as for the class;
        extra ``kwargs`` (``revision``, ``subfolder``, ``token``, ...) go to ``from_pretrained``."""
        resolved_device = _resolve_device(device)
        if exact and resolved_device.type != "cpu":
            raise ValueError(f"exact=True is only available on CPU, got device={str(resolved_device)!r}.")
        from transformers import AutoModelForImageToImage

        auto = dtype in (None, AUTO_DTYPE)  # resolved (and logged) by __init__, from float32 weights
        torch_dtype = torch.float32 if auto else _resolve_dtype(dtype)
        try:
            model = AutoModelForImageToImage.from_pretrained(str(model_id_or_path), dtype=torch_dtype, **kwargs)
        except ValueError as err:
            if "does not recognize this architecture" in str(err):  # a model_type nobody registered
                raise ValueError(
                    f"{model_id_or_path!s} holds a model type that is not registered ({str(err).splitlines()[0]}). "
                    "A custom SR model needs hfmagic.register_model(YourConfig, YourModel) before loading "
                    "(on the command line: hfmagic --import your_module upscale ...)."
                ) from err
            if "Unrecognized configuration class" not in str(err):
                raise
            raise ValueError(
                f"{model_id_or_path!s} is not a super-resolution model registered with hfmagic "
                f"({err}). GAN generators load with DCGANPipeline; custom SR models need "
                "hfmagic.register_model(YourConfig, YourModel) first."
            ) from err
        return cls(model, device=device, dtype=AUTO_DTYPE if auto else torch_dtype, exact=exact)

    def _float32(self) -> SuperResolutionPipeline:
        """The float32 twin of an "auto" pipeline that chose a half type, for 16-bit images."""
        if self._float32_pipeline is None:
            self._float32_pipeline = SuperResolutionPipeline(
                copy.deepcopy(self._float32_source),
                device=self.device,
                dtype=torch.float32,
                channels_last=self.channels_last,
                exact=self.exact,
                split_tiling=self.split_tiling,
            )
        return self._float32_pipeline

    @property
    def split_receptive_fields(self) -> tuple[int, int] | None:
        """``(forward_features, forward_head)`` receptive fields for two-stage tiling, or ``None``
        (see :func:`split_receptive_fields`), computed once."""
        if not self._split_fields_known:
            self._split_fields = split_receptive_fields(self.model)
            self._split_fields_known = True
        return self._split_fields

    @property
    def receptive_field(self) -> int | None:
        """The model's receptive field in LR pixels (see :func:`receptive_field`), computed once."""
        if not self._receptive_field_known:
            self._receptive_field = receptive_field(self.model)
            self._receptive_field_known = True
        return self._receptive_field

    def __call__(
        self,
        images: ImageInput | Sequence[ImageInput],
        tile_size: int | None = None,
        tile_overlap: int | None = None,
        batch_size: int = 1,
        alpha_mode: str = "model",
        progress: bool = False,
    ) -> Image.Image | np.ndarray | list[Image.Image | np.ndarray]:
        """Upscale one image or a list of images.

        Args:
            images: a PIL image, a uint8 or uint16 numpy array (H, W, 3), (H, W, 4), (H, W, 2) or
                (H, W) grayscale, a file path, or a list of these. Palette, 1-bit, CMYK and YCbCr
                images are converted to RGB(A); 16-bit images (uint16 arrays, PIL "I;16"/"I", 16-bit
                PNG/TIFF/PPM files, RGB(A) included) are kept in 16 bits; "F" images raise ``ValueError``.
            tile_size: side of the tile cores in LR pixels; ``None`` processes each image whole.
            tile_overlap: LR pixels of context added around each core; defaults to the model's
                :attr:`receptive_field` (the least for which tiling can be exact, see the class
                docstring), or 16 when that cannot be determined. Giving it selects single-stage
                tiling; without it, split models tile in two stages (``split_tiling``).
            batch_size: tiles of equal shape run through the model together (float results may
                then differ from single tiles by ~1e-7, as the backend's kernels change);
                ignored (one tile per forward) when the pipeline is ``exact``.
            alpha_mode: how a non-constant alpha channel of RGBA/LA images is upscaled (a constant
                one, e.g. fully opaque, is kept as it is): ``"model"`` (alpha
                replicated to the model's input channels, output channels averaged) or
                ``"bicubic"`` (PIL bicubic resize, cheaper, softer edges).
            progress: show a progress bar over tiles.
        Returns:
            PIL images ``upscale_factor`` times larger: "RGB" for colour input, "L" for grayscale
            (the model sees the gray plane replicated to RGB; the output is the mean of its
            channels), "RGBA"/"LA" when the input has alpha. 16-bit inputs give uint16 arrays
            instead (PIL has no 16-bit colour modes): (sH, sW) for grayscale, (sH, sW, C) with the
            input's channels otherwise; save them with :func:`hfmagic.data.save_image` (16-bit PNG).
            One image for one input, a list for a list.
        """
        if alpha_mode not in ("model", "bicubic"):
            raise ValueError(f"alpha_mode must be 'model' or 'bicubic', got {alpha_mode!r}.")
        if isinstance(images, (list, tuple)):
            return [self._upscale_one(im, tile_size, tile_overlap, batch_size, alpha_mode, progress) for im in images]
        return self._upscale_one(images, tile_size, tile_overlap, batch_size, alpha_mode, progress)

    def _upscale_one(self, image, tile_size, tile_overlap, batch_size, alpha_mode, progress) -> Image.Image | np.ndarray:
        colour, alpha = _split_channels(image)
        out = self.upscale_array(colour, tile_size, tile_overlap, batch_size, progress)
        if alpha is not None:
            if (alpha == alpha.flat[0]).all():  # constant (e.g. fully opaque): stays exactly that value
                alpha_out = np.full((*out.shape[:2], 1), alpha.flat[0], dtype=alpha.dtype)
            elif alpha_mode == "model":
                alpha_out = self.upscale_array(alpha, tile_size, tile_overlap, batch_size, progress)
            else:
                alpha_out = _bicubic_alpha(alpha[:, :, 0], self.scale)[:, :, None]
            out = np.concatenate([out, alpha_out], axis=2)
        if out.dtype == np.uint16:  # PIL has no 16-bit colour modes: all 16-bit results stay arrays
            return out[:, :, 0] if out.shape[2] == 1 else out
        if out.shape[2] == 1:
            return Image.fromarray(out[:, :, 0])
        return Image.fromarray(out)  # (H, W, 2/3/4) uint8 -> "LA"/"RGB"/"RGBA"

    def upscale_array(
        self,
        array: np.ndarray,
        tile_size: int | None = None,
        tile_overlap: int | None = None,
        batch_size: int = 1,
        progress: bool = False,
    ) -> np.ndarray:
        """Upscale a uint8 or uint16 array (H, W, C) or (H, W), with C = 1 or the model's input channels;
        returns the same dtype (sH, sW, C') written tile by tile into one preallocated array. The
        model sees ``x / 255`` or ``x / 65535``; its output is clamped to [0, 1], scaled back and
        rounded. A one-channel image is replicated to the model's input channels and the output
        channels are averaged (C' = 1)."""
        if array.dtype not in (np.uint8, np.uint16) or array.ndim not in (2, 3):
            raise ValueError(f"upscale_array takes a uint8 or uint16 (H, W, C) or (H, W) array, got {array.dtype} {array.shape}.")
        if array.dtype == np.uint16 and self._float32_source is not None:  # dtype="auto": 16 bits need float32
            return self._float32().upscale_array(array, tile_size, tile_overlap, batch_size, progress)
        if array.ndim == 2:
            array = array[:, :, None]
        height, width, channels = array.shape
        in_channels, out_channels = self.model.config.in_channels, self.model.config.out_channels
        if channels not in (1, in_channels):
            raise ValueError(
                f"The model takes {in_channels}-channel images; got {channels} channels "
                f"(convert the image to {'RGB' if in_channels == 3 else 'L'} first)."
            )
        to_gray = channels == 1 and out_channels != 1
        out = np.empty((height * self.scale, width * self.scale, 1 if to_gray else out_channels), dtype=array.dtype)
        deep = array.dtype == np.uint16
        peak, convert = (65535.0, _to_uint16) if deep else (255.0, _to_uint8)
        if deep and self.dtype in (torch.float16, torch.bfloat16):
            warnings.warn(
                f"Upscaling a 16-bit image in {str(self.dtype).removeprefix('torch.')}, which holds "
                f"{11 if self.dtype == torch.float16 else 8} significant bits: the output keeps about that precision, "
                "not 16 bits. Pass dtype='float32' (--dtype float32) for full 16-bit precision.",
                stacklevel=2,
            )

        def read(region: _Region) -> torch.Tensor:
            y0, y1, x0, x1 = region
            tile = torch.from_numpy(np.array(array[y0:y1, x0:x1])).permute(2, 0, 1)[None]  # a writable copy
            return tile.float().div_(peak).expand(-1, in_channels, -1, -1)

        for (y0, y1, x0, x1), tile in self._tiles(read, height, width, tile_size, tile_overlap, batch_size, progress):
            if to_gray:
                tile = tile.float().mean(dim=1, keepdim=True)
            out[y0:y1, x0:x1] = convert(tile[0])  # rounded on the device, then moved
        return out

    def upscale_tensor(
        self,
        pixel_values: torch.Tensor,
        tile_size: int | None = None,
        tile_overlap: int | None = None,
        batch_size: int = 1,
    ) -> torch.Tensor:
        """Float version for evaluation: (N, C, H, W) in [0, 1] -> (N, C_out, sH, sW) float32 on
        CPU, unclamped, with the same tiling as ``__call__`` (this one holds the whole float output)."""
        if pixel_values.dim() == 3:
            pixel_values = pixel_values[None]
        if pixel_values.dim() != 4:
            raise ValueError(f"pixel_values must be (N, C, H, W) or (C, H, W), got {tuple(pixel_values.shape)}.")
        n, _, height, width = pixel_values.shape
        out = torch.empty(n, self.model.config.out_channels, height * self.scale, width * self.scale)
        for i in range(n):
            sample = pixel_values[i : i + 1]
            tiles = self._tiles(
                lambda r, sample=sample: sample[:, :, r[0] : r[1], r[2] : r[3]],
                height, width, tile_size, tile_overlap, batch_size, False,
            )
            for (y0, y1, x0, x1), tile in tiles:
                out[i, :, y0:y1, x0:x1] = tile[0].float()  # copied to the CPU output
        return out

    def _tiles(
        self,
        read: Callable[[_Region], torch.Tensor],
        height: int,
        width: int,
        tile_size: int | None,
        tile_overlap: int | None,
        batch_size: int,
        progress: bool,
    ) -> Iterator[tuple[_Region, torch.Tensor]]:
        """Yield (HR region, tensor (1, C, h, w)) covering the whole output once; the tensors stay on
        the pipeline's device in its dtype (consumers convert: uint8 on the device moves a quarter of
        the bytes of float32 to the host)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        if tile_size is not None:
            if int(tile_size) != tile_size or tile_size < 1:
                raise ValueError(f"tile_size must be a positive integer (LR pixels) or None, got {tile_size!r}.")
            tile_size = int(tile_size)
            two_stage = tile_overlap is None and self.split_tiling and not self.exact
            if two_stage and self.split_receptive_fields is not None:
                yield from self._split_tiles(read, height, width, tile_size, batch_size, progress)
                return
        if tile_size is None:
            cores, overlap = [(0, height, 0, width)], 0
        else:
            cores, overlap = _cores(height, width, tile_size), self._overlap(tile_overlap)
        s = self.scale
        if self.exact:
            batch_size = 1  # a batched GEMM starts each sample's rows at another alignment
        batch: list[tuple[_Region, _Region, torch.Tensor]] = []

        def flush() -> Iterator[tuple[_Region, torch.Tensor]]:
            memory_format = self._prepare_model()
            inputs = torch.cat([item[2] for item in batch]).to(device=self.device, dtype=self.dtype)
            inputs = inputs.contiguous(memory_format=memory_format)
            with torch.inference_mode(), self._kernels():
                outputs = self.model(pixel_values=inputs).reconstruction
            h, w = inputs.shape[-2:]
            if tuple(outputs.shape[-2:]) != (h * s, w * s):
                raise ValueError(
                    f"{type(self.model).__name__} turned a {h}x{w} input into {tuple(outputs.shape[-2:])}, "
                    f"not the {h * s}x{w * s} that upscale_factor={s} promises."
                )
            for (y0, y1, x0, x1), (iy0, _, ix0, _), output in zip(
                (item[0] for item in batch), (item[1] for item in batch), outputs
            ):
                crop = output[:, (y0 - iy0) * s : (y1 - iy0) * s, (x0 - ix0) * s : (x1 - ix0) * s]
                yield (y0 * s, y1 * s, x0 * s, x1 * s), crop[None]
            batch.clear()

        for core in tqdm(cores, desc="tiles", disable=not progress or len(cores) == 1, leave=False):
            context = _grow(core, overlap, height, width)
            if self.exact:
                context = _aligned_context(context, height, width)
            tile = read(context)
            if batch and (len(batch) == batch_size or tile.shape != batch[0][2].shape):
                yield from flush()
            batch.append((core, context, tile))
        if batch:
            yield from flush()

    def _split_tiles(
        self,
        read: Callable[[_Region], torch.Tensor],
        height: int,
        width: int,
        tile_size: int,
        batch_size: int,
        progress: bool,
    ) -> Iterator[tuple[_Region, torch.Tensor]]:
        """Two-stage tiling: ``forward_features`` on large LR regions, ``forward_head`` on
        ``tile_size`` tiles of their features. Same contract as ``_tiles``.

        A single-stage tile recomputes the whole receptive field (35 LR pixels for MSRResNet) on
        every side; here only the head's few pixels are recomputed per tile, and the feature stage,
        whose maps cost ``mid_channels`` floats per LR pixel, runs in regions of
        :func:`feature_region_size` LR pixels a side.
        """
        feature_halo, head_halo = self.split_receptive_fields
        s = self.scale
        regions = _cores(height, width, feature_region_size(s, tile_size))
        total = sum(len(_cores(y1 - y0, x1 - x0, tile_size)) for y0, y1, x0, x1 in regions)
        bar = tqdm(total=total, desc="tiles", disable=not progress or total == 1, leave=False)
        memory_format = self._prepare_model()

        def flush(batch) -> Iterator[tuple[_Region, torch.Tensor]]:
            feats = torch.cat([item[2] for item in batch]).contiguous(memory_format=memory_format)
            pixels = torch.cat([item[3] for item in batch]).contiguous(memory_format=memory_format)
            with torch.inference_mode():
                outputs = self.model.forward_head(feats, pixels)
            h, w = feats.shape[-2:]
            if tuple(outputs.shape[-2:]) != (h * s, w * s):
                raise ValueError(
                    f"{type(self.model).__name__}.forward_head turned {h}x{w} features into {tuple(outputs.shape[-2:])}, "
                    f"not the {h * s}x{w * s} that upscale_factor={s} promises."
                )
            for ((y0, y1, x0, x1), (cy0, _, cx0, _), *_), output in zip(batch, outputs):
                crop = output[:, (y0 - cy0) * s : (y1 - cy0) * s, (x0 - cx0) * s : (x1 - cx0) * s]
                yield (y0 * s, y1 * s, x0 * s, x1 * s), crop[None]
            bar.update(len(batch))
            batch.clear()

        for region in regions:
            fy0, fy1, fx0, fx1 = _grow(region, head_halo, height, width)  # features the head tiles read
            iy0, iy1, ix0, ix1 = _grow((fy0, fy1, fx0, fx1), feature_halo, height, width)
            inputs = read((iy0, iy1, ix0, ix1)).to(device=self.device, dtype=self.dtype)
            inputs = inputs.contiguous(memory_format=memory_format)
            with torch.inference_mode():
                feats = self.model.forward_features(inputs)
            if feats.dim() != 4 or tuple(feats.shape[-2:]) != tuple(inputs.shape[-2:]):
                raise ValueError(
                    f"{type(self.model).__name__}.forward_features must keep the input's resolution: it turned "
                    f"{tuple(inputs.shape)} into {tuple(feats.shape)}. Override reconstruct instead, or pass "
                    "split_tiling=False to the pipeline."
                )
            batch: list = []
            for y0, y1, x0, x1 in _cores(region[1] - region[0], region[3] - region[2], tile_size):
                core = (region[0] + y0, region[0] + y1, region[2] + x0, region[2] + x1)
                cy0, cy1, cx0, cx1 = context = _grow(core, head_halo, height, width)
                window = (..., slice(cy0 - iy0, cy1 - iy0), slice(cx0 - ix0, cx1 - ix0))
                item = (core, context, feats[window], inputs[window])
                if batch and (len(batch) == batch_size or item[2].shape != batch[0][2].shape):
                    yield from flush(batch)
                batch.append(item)
            if batch:
                yield from flush(batch)
            del feats, inputs
        bar.close()

    def _prepare_model(self) -> torch.memory_format:
        """Put the model's weights in the memory format the inputs will have; return it. The weights'
        real layout is checked on every call: another pipeline on the same model may have changed it."""
        memory_format = self._memory_format()
        if any(p.dim() == 4 and not p.is_contiguous(memory_format=memory_format) for p in self.model.parameters()):
            self.model.to(memory_format=memory_format)
        return memory_format

    def _kernels(self):
        """The context the model runs in: exact mode switches oneDNN off (PyTorch's native
        convolution), the interpolations to their position-invariant form, and convolutions to
        few channels to one thread; all restored on exit."""
        if not self.exact:
            return contextlib.nullcontext()
        stack = contextlib.ExitStack()
        # mkldnn.flags() warns about Intel-GPU TF32 on entry and exit, on every call: not for us.
        stack.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
        stack.enter_context(torch.backends.mkldnn.flags(enabled=False))
        stack.enter_context(exact_interpolation())
        # MKL splits a GEMM with few rows (a convolution to few channels) into per-thread chunks of
        # pixels whose boundaries depend on the pixel count; a chunk starting unaligned rounds its
        # first pixels differently. Those convolutions run on one thread (measured with 8 threads:
        # 3-channel convolutions differed, 64-channel ones did not).
        threads: list[int] = []
        stack.callback(torch.set_num_threads, torch.get_num_threads())  # restored even if forward raises

        def before(module, args):
            threads.append(torch.get_num_threads())
            torch.set_num_threads(1)

        def after(module, args, output):
            torch.set_num_threads(threads.pop())

        for module in self.model.modules():
            if isinstance(module, torch.nn.Conv2d) and module.out_channels < _EXACT_SINGLE_THREAD_CHANNELS:
                stack.callback(module.register_forward_pre_hook(before).remove)
                stack.callback(module.register_forward_hook(after).remove)
        return stack

    def _memory_format(self) -> torch.memory_format:
        """channels_last (NHWC) where the backend has fast NHWC convolutions: oneDNN on CPU (1.1-1.5x
        faster for these networks, see benchmarks/RESULTS.md) and cuDNN. PyTorch's native CPU
        convolution (oneDNN switched off, as in exact mode) stays NCHW: there its GEMM rows are
        channel planes, which ``_aligned_context`` can align; in NHWC the rows are pixels, and the
        3-channel first convolution rounds differently for different shapes (measured)."""
        if not self.channels_last or self.exact:
            return torch.contiguous_format
        if self.device.type == "cuda" or (self.device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
            return torch.channels_last
        return torch.contiguous_format

    def _overlap(self, tile_overlap: int | None) -> int:
        if tile_overlap is not None:
            if int(tile_overlap) != tile_overlap or tile_overlap < 0:
                raise ValueError(f"tile_overlap must be a non-negative integer (LR pixels), got {tile_overlap!r}.")
            return int(tile_overlap)
        if self.receptive_field is None:
            warnings.warn(
                f"The receptive field of {type(self.model).__name__} is unknown; using tile_overlap="
                f"{DEFAULT_TILE_OVERLAP}. Tiles may differ slightly from a whole-image pass: pass "
                "tile_overlap, or give the model a `receptive_field` attribute.",
                stacklevel=4,
            )
            return DEFAULT_TILE_OVERLAP
        return self.receptive_field


def feature_region_size(scale: int, tile_size: int) -> int:
    """Side in LR pixels of the regions that two-stage tiling runs ``forward_features`` on.

    ``scale * tile_size / 2``: a region's map then holds a quarter of the floats of one head tile's
    HR map, so the trunk (which keeps ~4 maps alive) never needs more memory than the head does.
    """
    return max(scale * tile_size // 2, _MIN_FEATURE_REGION)


def _cores(height: int, width: int, size: int) -> list[_Region]:
    """Cut a height x width grid into ``size`` x ``size`` cores (smaller at the bottom/right edges)."""
    return [
        (y, min(y + size, height), x, min(x + size, width)) for y in range(0, height, size) for x in range(0, width, size)
    ]


def _grow(region: _Region, margin: int, height: int, width: int) -> _Region:
    """``region`` with ``margin`` more pixels on every side, clipped to the image."""
    y0, y1, x0, x1 = region
    return max(y0 - margin, 0), min(y1 + margin, height), max(x0 - margin, 0), min(x1 + margin, width)


def _aligned_context(context: _Region, height: int, width: int) -> _Region:
    """Grow a tile context that holds the image's first or last pixel (inward, within the image)
    until its pixel count is congruent to the image's modulo ``_EXACT_ALIGN``.

    Under PyTorch's native convolution a tile's channel planes are rows of one GEMM; MKL computes
    the first elements of a row that starts unaligned (and the last of one that ends so) in a
    separate loop that rounds differently. The planes of the whole image and of a tile start at
    the same alignment exactly when their pixel counts agree modulo the SIMD width. Only the two
    corner tiles keep such edge pixels (elsewhere they lie in the discarded overlap), so only those
    grow: by less than ``_EXACT_ALIGN`` pixels a side in practice, up to the whole image at worst.
    """
    y0, y1, x0, x1 = context
    start, end = (y0, x0) == (0, 0), (y1, x1) == (height, width)
    if not (start or end) or (start and end):
        return context
    target = height * width % _EXACT_ALIGN
    h, w = y1 - y0, x1 - x0
    best: tuple[int, int] | None = None
    for th in range(h, min(h + _EXACT_ALIGN, height) + 1):
        for tw in range(w, min(w + _EXACT_ALIGN, width) + 1):
            if th * tw % _EXACT_ALIGN == target and (best is None or th * tw < best[0] * best[1]):
                best = (th, tw)
    th, tw = best or (height, width)  # the whole image always qualifies
    if start:
        return 0, th, 0, tw
    return height - th, height, width - tw, width


# --------------------------------------------------------------------------------------------
# GAN sampling
# --------------------------------------------------------------------------------------------


class DCGANPipeline:
    """Draw images from a DCGAN generator (or any generator with ``sample_noise`` and
    ``forward(noise)`` returning images in [-1, 1]).

    Args:
        generator: the generator model; moved to ``device``/``dtype`` and put in eval mode
            (BatchNorm uses its running statistics).
        device, dtype: as for :class:`SuperResolutionPipeline`, except that ``dtype`` defaults to
            ``"float32"`` (``"auto"`` is accepted).
    """

    def __init__(
        self,
        generator: torch.nn.Module,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
    ):
        if not callable(getattr(generator, "sample_noise", None)):
            raise TypeError(
                f"DCGANPipeline needs a generator with a `sample_noise(num, generator)` method such as "
                f"DCGANGenerator, got {type(generator).__name__} (super-resolution models go to SuperResolutionPipeline)."
            )
        self.device = _resolve_device(device)
        self.dtype = _resolve_dtype(dtype, self.device)
        self.model = generator.to(device=self.device, dtype=self.dtype).eval()

    @classmethod
    def from_pretrained(
        cls,
        model_id_or_path: str | Path,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        **kwargs,
    ) -> DCGANPipeline:
        """Load the generator at the root of a GAN repo or folder (``AutoModel`` maps a
        ``dcgan`` config to ``DCGANGenerator``); ``kwargs`` go to ``from_pretrained``."""
        from transformers import AutoModel

        from . import models  # noqa: F401  (registers hfmagic's architectures)

        from transformers import AutoConfig

        torch_dtype = _resolve_dtype(dtype, _resolve_device(device))
        hub_options = ("revision", "subfolder", "token", "cache_dir", "local_files_only", "force_download", "proxies", "trust_remote_code")
        config_kwargs = {k: v for k, v in kwargs.items() if k in hub_options}
        architectures = AutoConfig.from_pretrained(str(model_id_or_path), **config_kwargs).architectures or []
        if "DCGANDiscriminator" in architectures:
            raise ValueError(
                f"{model_id_or_path} holds a DCGAN discriminator, which scores images and draws none: load the "
                "GAN repo's root (its generator) instead of its discriminator/ folder."
            )
        generator = AutoModel.from_pretrained(str(model_id_or_path), dtype=torch_dtype, **kwargs)
        return cls(generator, device=device, dtype=torch_dtype)

    def __call__(
        self,
        num_images: int = 1,
        seed: int | None = None,
        batch_size: int = 64,
        progress: bool = False,
    ) -> list[Image.Image]:
        """Generate ``num_images`` PIL images ("RGB", or "L" for a one-channel generator).

        The noise for all images is drawn first, on CPU, from ``torch.Generator().manual_seed(seed)``,
        so a seed gives the same noise on every device and for every ``batch_size`` (on CPU the
        images are bitwise the same for any batch size; another device may round its arithmetic
        differently, by a uint8 step in rare pixels). Pixels go
        from [-1, 1] to uint8 as in MMagic: ``round(clamp((x + 1) / 2, 0, 1) * 255)``.
        """
        if num_images < 1:
            raise ValueError(f"num_images must be >= 1, got {num_images}.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        rng = torch.Generator().manual_seed(seed) if seed is not None else None
        noise = self.model.sample_noise(num_images, generator=rng)
        images: list[Image.Image] = []
        chunks = noise.split(batch_size)
        for chunk in tqdm(chunks, desc="sampling", disable=not progress, leave=False):
            with torch.inference_mode():
                fakes = self.model(noise=chunk.to(device=self.device, dtype=self.dtype))
            for fake in fakes:
                array = _to_uint8(fake, -1.0, 1.0)
                images.append(Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array))
        return images


def make_grid(images: Sequence[Image.Image], nrow: int = 8, padding: int = 2, pad_value: int = 0) -> Image.Image:
    """Tile equally sized images into one image, ``nrow`` per row (like torchvision's make_grid),
    with ``padding`` pixels of ``pad_value`` between and around them."""
    if not images:
        raise ValueError("make_grid needs at least one image.")
    if nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}.")
    width, height = images[0].size
    mode = images[0].mode
    for image in images:
        if image.size != (width, height) or image.mode != mode:
            raise ValueError(
                f"make_grid needs images of one size and mode; got {image.size} {image.mode} next to "
                f"{(width, height)} {mode}."
            )
    ncol = min(nrow, len(images))
    nrows = math.ceil(len(images) / nrow)
    fill = pad_value if mode == "L" else (pad_value,) * len(mode)
    grid = Image.new(mode, (ncol * (width + padding) + padding, nrows * (height + padding) + padding), fill)
    for i, image in enumerate(images):
        row, col = divmod(i, nrow)
        grid.paste(image, (padding + col * (width + padding), padding + row * (height + padding)))
    return grid
