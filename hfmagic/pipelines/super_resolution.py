"""Super-resolution of whole images, tiled for large ones: :class:`SuperResolutionPipeline`."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from diffusers import ImagePipelineOutput

from ..errors import check_model_source
from ..models import SuperResolutionPreTrainedModel
from . import exact
from .base import HFMagicPipeline, component_of, pipeline_index
from .device import AUTO_DTYPE, resolve_device, resolve_dtype
from .image_io import ImageInput, bicubic_alpha, split_channels, to_uint8, to_uint16
from .receptive_field import receptive_field, split_receptive_fields
from .swin2sr import Swin2SRAdapter, adapt_swin2sr
from .tiling import Region, TilingMixin


def _check_exact_device(device: torch.device) -> None:
    if device.type != "cpu":
        raise ValueError(
            f"exact=True is only available on CPU (device={str(device)!r}): GPU kernels choose their "
            "algorithms by shape. Pass device='cpu', or exact=False (tiles then agree within ~1e-6)."
        )


def _not_super_resolution(model_id_or_path, kwargs: dict, err: Exception) -> str:
    """Why a loadable config is not an SR model: a GAN (named with the pipeline that draws from it)
    or an architecture hfmagic does not know as SR."""
    from transformers import AutoConfig

    hub_options = ("revision", "subfolder", "token", "cache_dir", "local_files_only")
    config = AutoConfig.from_pretrained(str(model_id_or_path), **{k: v for k, v in kwargs.items() if k in hub_options})
    if getattr(type(config), "hub_kind", None) == "discriminator":
        return (
            f"{model_id_or_path!s} is a GAN discriminator ({', '.join(config.architectures or [type(config).__name__])}), "
            "which scores images and upscales none: load the repo's root (its generator), not its discriminator/ folder."
        )
    if getattr(type(config), "hub_kind", None) == "gan":
        pipeline = getattr(type(config), "card_classes", {}).get("pipeline", "GANPipeline")
        return (
            f"{model_id_or_path!s} is a GAN ({', '.join(config.architectures or [type(config).__name__])}), not a "
            f"super-resolution model: draw images from it with {pipeline} or `hfmagic sample --model {model_id_or_path!s}`."
        )
    return (
        f"{model_id_or_path!s} is not a super-resolution model registered with hfmagic (model_type "
        f"{config.model_type!r}): custom SR models need hfmagic.register_model(YourConfig, YourModel) first."
    )


def _copy_as(model: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """A deep copy of ``model`` whose floating-point tensors are made directly in ``dtype`` on
    ``device``: no full-precision copy on the way (RRDBNet's is 67 MB, the peak of a small image)."""
    memo: dict[int, torch.Tensor] = {}
    for tensor in (*model.parameters(), *model.buffers()):
        if id(tensor) not in memo:
            new = tensor.detach().to(device=device, dtype=dtype if tensor.is_floating_point() else None, copy=True)
            memo[id(tensor)] = torch.nn.Parameter(new, requires_grad=tensor.requires_grad) if isinstance(tensor, torch.nn.Parameter) else new
    return copy.deepcopy(model, memo)


class SuperResolutionPipeline(TilingMixin, HFMagicPipeline):
    """Upscale images with any hfmagic super-resolution model (built-in or registered with
    :func:`hfmagic.register_model`).

    A diffusers ``DiffusionPipeline`` with one component, ``model``: ``save_pretrained(folder)`` writes
    ``model_index.json`` and ``model/`` (the model's ``config.json`` + ``model.safetensors``);
    :meth:`from_pretrained` loads that, or a plain model folder/repo, and so does
    ``diffusers.DiffusionPipeline.from_pretrained(folder_or_repo, trust_remote_code=True)``;
    ``to(device)``/``to(dtype)`` move the model; ``set_progress_bar_config(...)`` configures the tile
    progress bar. ``channels_last``, ``exact`` and ``split_tiling`` are saved in ``model_index.json``.

    Args:
        model: a ``SuperResolutionPreTrainedModel``, or transformers' ``Swin2SRForImageSuperResolution``
            (wrapped, see :mod:`hfmagic.pipelines.swin2sr`); moved to ``device``/``dtype`` and put in eval mode.
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
        super().__init__()
        model = adapt_swin2sr(model, exact)  # transformers' Swin2SR: wrapped, see pipelines/swin2sr.py
        if not isinstance(model, (SuperResolutionPreTrainedModel, Swin2SRAdapter)):
            raise TypeError(
                f"SuperResolutionPipeline needs a SuperResolutionPreTrainedModel or transformers' "
                f"Swin2SRForImageSuperResolution, got {type(model).__name__} (for GAN generators use GANPipeline)."
            )
        device = resolve_device(device)
        if exact:
            _check_exact_device(device)
        torch_dtype = resolve_dtype(dtype, device, exact, default=AUTO_DTYPE)
        # "auto" runs 16-bit images in float32 (bf16's 8 significant bits would round them to about
        # 8-bit precision), from the float32 model it was given; built on first use (`_float32`).
        float32_source = None
        if dtype in (None, AUTO_DTYPE) and any(p.dtype != torch_dtype for p in model.parameters()):
            if all(p.dtype == torch.float32 for p in model.parameters()):
                float32_source = model
            model = _copy_as(model, device, torch_dtype)  # an implicit choice must not cast the caller's weights
        self._float32_source: SuperResolutionPreTrainedModel | None = float32_source
        self._float32_pipeline: SuperResolutionPipeline | None = None
        self.register_modules(model=model.to(device=device, dtype=torch_dtype).eval())
        # settings, not modules: saved in model_index.json and passed back to __init__ on loading
        self.register_to_config(channels_last=channels_last, exact=exact, split_tiling=split_tiling)
        self.channels_last = channels_last
        self.exact = exact
        self.split_tiling = split_tiling
        self.set_progress_bar_config(desc="tiles", unit="tile", leave=False)
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
        exact: bool | None = None,
        **kwargs,
    ) -> SuperResolutionPipeline:
        """Load from a Hub id or a local folder holding either an SR model (``config.json`` + weights,
        loaded through ``AutoModelForImageToImage``) or a pipeline written by :meth:`save_pretrained`
        (``model_index.json`` + ``model/``; nothing from the repo is run). ``dtype`` (default
        ``"auto"``), ``exact``, ``channels_last`` and ``split_tiling`` as for the class; for a saved
        pipeline, the settings it saved are the defaults (``exact``: ``False`` otherwise). Other
        ``kwargs`` (``revision``, ``subfolder``, ``token``, ...) go to ``from_pretrained``."""
        settings = {}
        index = pipeline_index(model_id_or_path, kwargs)
        if index is None:
            check_model_source(model_id_or_path)  # an MMagic checkpoint or a folder without config.json: say so
        else:
            name = component_of(index, "model", model_id_or_path)
            kwargs["subfolder"] = f"{kwargs['subfolder']}/{name}" if kwargs.get("subfolder") else name
            settings = {key: index[key] for key in ("channels_last", "exact", "split_tiling") if key in index}
        settings.update({key: kwargs.pop(key) for key in ("channels_last", "split_tiling") if key in kwargs})
        if exact is not None:
            settings["exact"] = exact
        resolved_device = resolve_device(device)
        if settings.get("exact") and resolved_device.type != "cpu":
            raise ValueError(f"exact=True is only available on CPU, got device={str(resolved_device)!r}.")
        from transformers import AutoModelForImageToImage

        auto = dtype in (None, AUTO_DTYPE)  # resolved (and logged) by __init__, from float32 weights
        torch_dtype = torch.float32 if auto else resolve_dtype(dtype)
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
            raise ValueError(_not_super_resolution(model_id_or_path, kwargs, err)) from err
        pipeline = cls(model, device=device, dtype=AUTO_DTYPE if auto else torch_dtype, **settings)
        pipeline.register_to_config(_name_or_path=str(model_id_or_path))
        return pipeline

    def _check_device(self, device: torch.device) -> None:
        if self.exact:
            _check_exact_device(device)

    def to(self, *args, **kwargs) -> SuperResolutionPipeline:
        """Move the model (``to(device)``, ``to(dtype)``, ``to(device, dtype)``, in place; diffusers'
        ``DiffusionPipeline.to``); an ``exact`` pipeline refuses any device but the CPU (ValueError)."""
        super().to(*args, **kwargs)
        self._float32_pipeline = None  # the float32 twin for 16-bit images is rebuilt where the model now is
        return self

    def _weights_to_save(self) -> SuperResolutionPreTrainedModel:
        # "auto" chose a half type for computing: the weights saved are still the float32 ones it was given
        return self._float32_source if self._float32_source is not None else self.model

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
        self._float32_pipeline.set_progress_bar_config(**self._progress_bar_config)
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
        return_dict: bool = False,
    ) -> Image.Image | np.ndarray | list[Image.Image | np.ndarray] | ImagePipelineOutput:
        """Upscale one image or a list of images.

        Args:
            images: a PIL image, a uint8 or uint16 numpy array (H, W, 3), (H, W, 4), (H, W, 2) or
                (H, W) grayscale, a file path, or a list of these. Palette, 1-bit, CMYK and YCbCr
                images are converted to RGB(A); 16-bit images (uint16 arrays, PIL "I;16"/"I", 16-bit
                PNG/TIFF/PPM files, RGB(A) included) are kept in 16 bits; "F" images raise ``ValueError``.
            tile_size: side of the tile cores in LR pixels (rounded up to the model's
                ``input_multiple()``); ``None`` processes each image whole, except outputs of more than
                ``auto_tile_pixels`` (512x512) pixels from models that tile in two stages, which get
                head tiles of 512 output pixels (same output within ~1e-6; not in exact mode).
                Images whose size is not a multiple of the model's ``input_multiple()`` (RRDBNet
                x2: 2, x1: 4) are padded at the bottom/right by reflection and the output cropped.
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
            progress: show a progress bar over tiles (``self.progress_bar``: diffusers' tqdm, set up
                with ``set_progress_bar_config``; defaults ``desc="tiles"``, ``leave=False``).
            return_dict: return diffusers' ``ImagePipelineOutput(images=[...])`` (a list, also for
                one input) instead of the images themselves.
        Returns:
            PIL images ``upscale_factor`` times larger: "RGB" for colour input, "L" for grayscale
            (the model sees the gray plane replicated to RGB; the output is the mean of its
            channels), "RGBA"/"LA" when the input has alpha. 16-bit inputs give uint16 arrays
            instead (PIL has no 16-bit colour modes): (sH, sW) for grayscale, (sH, sW, C) with the
            input's channels otherwise; save them with :func:`hfmagic.data.save_image` (16-bit PNG).
            One image for one input, a list for a list (with ``return_dict``: an ``ImagePipelineOutput``).
        """
        if alpha_mode not in ("model", "bicubic"):
            raise ValueError(f"alpha_mode must be 'model' or 'bicubic', got {alpha_mode!r}.")
        if isinstance(images, (list, tuple)):
            outputs = [self._upscale_one(im, tile_size, tile_overlap, batch_size, alpha_mode, progress) for im in images]
            return ImagePipelineOutput(images=outputs) if return_dict else outputs
        output = self._upscale_one(images, tile_size, tile_overlap, batch_size, alpha_mode, progress)
        return ImagePipelineOutput(images=[output]) if return_dict else output

    def _upscale_one(self, image, tile_size, tile_overlap, batch_size, alpha_mode, progress) -> Image.Image | np.ndarray:
        colour, alpha = self.preprocess(image)
        out = self.upscale_array(colour, tile_size, tile_overlap, batch_size, progress)
        return self.postprocess(out, alpha, tile_size, tile_overlap, batch_size, alpha_mode, progress)

    def preprocess(self, image: ImageInput) -> tuple[np.ndarray, np.ndarray | None]:
        """Any accepted input -> (colour (H, W, 1 or 3), alpha (H, W, 1) or None), uint8 for 8-bit
        images and uint16 for 16-bit ones."""
        return split_channels(image)

    def postprocess(
        self, out: np.ndarray, alpha: np.ndarray | None, tile_size, tile_overlap, batch_size, alpha_mode, progress
    ) -> Image.Image | np.ndarray:
        """The upscaled colour (sH, sW, C) plus the input's alpha, upscaled as ``alpha_mode`` says,
        as a PIL image (8-bit) or a uint16 array (16-bit)."""
        if alpha is not None:
            if (alpha == alpha.flat[0]).all():  # constant (e.g. fully opaque): stays exactly that value
                alpha_out = np.full((*out.shape[:2], 1), alpha.flat[0], dtype=alpha.dtype)
            elif alpha_mode == "model":
                alpha_out = self.upscale_array(alpha, tile_size, tile_overlap, batch_size, progress)
            else:
                alpha_out = bicubic_alpha(alpha[:, :, 0], self.scale)[:, :, None]
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
        peak, convert = (65535.0, to_uint16) if deep else (255.0, to_uint8)
        if deep and self.dtype in (torch.float16, torch.bfloat16):
            warnings.warn(
                f"Upscaling a 16-bit image in {str(self.dtype).removeprefix('torch.')}, which holds "
                f"{11 if self.dtype == torch.float16 else 8} significant bits: the output keeps about that precision, "
                "not 16 bits. Pass dtype='float32' (--dtype float32) for full 16-bit precision.",
                stacklevel=2,
            )

        def read(region: Region) -> torch.Tensor:
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

    def _prepare_model(self) -> torch.memory_format:
        """Put the model's weights in the memory format the inputs will have; return it. The weights'
        real layout is checked on every call: another pipeline on the same model may have changed it."""
        memory_format = exact.memory_format(self.device, self.channels_last, self.exact)
        if any(p.dim() == 4 and not p.is_contiguous(memory_format=memory_format) for p in self.model.parameters()):
            self.model.to(memory_format=memory_format)
        return memory_format


__all__ = ["SuperResolutionPipeline"]
