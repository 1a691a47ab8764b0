"""``hfmagic demo``: a Gradio app that upscales images and draws GAN samples in the browser.

gradio is an optional dependency (``pip install "hfmagic[demo]"``; the ``dev`` extra has it too) and is
imported only by :func:`build_demo`. The work is done by plain functions that the page calls and the
tests call directly:

- :func:`upscale_image`: one uploaded file through an SR model (8/16-bit, gray, alpha; tiled when
  ``tile_size`` is given or the image is large), returning the bicubic and model images for the
  before/after slider, the full-resolution PNG and the time it took.
- :func:`sample_grid`: ``num_images`` samples of a GAN generator tiled into one grid (the same seed
  gives the same grid).
- :class:`PipelineCache`: pipelines loaded once per model id (a few kept, least recently used dropped).

Every user mistake (a file that is not an image, a model id that does not exist or cannot be
reached offline, a GAN repo in the Upscale tab or an SR model in the GAN tab) ends in a one-line
message in the page's status box; the app keeps serving.

```python
>>> from hfmagic.demo import build_demo
>>> build_demo(models=["path/to/msrresnet-x4"], gan_models=["org/dcgan-celeba"]).launch()
```
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, UnidentifiedImageError

if TYPE_CHECKING:  # pragma: no cover
    import gradio as gr

__all__ = [
    "INSTALL_HINT",
    "DemoError",
    "PipelineCache",
    "UpscaleResult",
    "build_demo",
    "prune_outputs",
    "require_gradio",
    "sample_grid",
    "upscale_image",
]

logger = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "hfmagic[demo]"'
# The slider shows images of at most this side (the download keeps the full resolution): two
# 8000-pixel PNGs would take seconds to encode and megabytes to send for a comparison on screen.
MAX_DISPLAY_SIDE = 2048
MAX_GAN_IMAGES = 64


class DemoError(ValueError):
    """A user mistake, worded for the page (what is wrong and what to do)."""


def require_gradio():
    """``import gradio``, or an ``ImportError`` that names the install command."""
    try:
        import gradio
    except ImportError as err:
        raise ImportError(f"The hfmagic demo needs gradio, an optional dependency: {INSTALL_HINT}") from err
    return gradio


def _error_text(err: BaseException) -> str:
    from .errors import error_message

    return error_message(err) if not isinstance(err, DemoError) else str(err)


class PipelineCache:
    """Pipelines loaded by model id (Hub id or local folder), the ``max_size`` most recently used kept.

    Args:
        device, dtype: given to the pipelines (defaults: CUDA when available; the SR pipeline's
            ``"auto"`` dtype, the GAN pipeline's float32).
        max_size: pipelines kept in memory (SR and GAN together).
    """

    def __init__(self, device: str | None = None, dtype: str | None = None, max_size: int = 4):
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {max_size}.")
        self.device, self.dtype, self.max_size = device, dtype, max_size
        self._pipelines: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()  # one load at a time: two users asking for one model load it once

    def super_resolution(self, model_id: str):
        """The :class:`~hfmagic.SuperResolutionPipeline` of ``model_id``; ``DemoError`` when it cannot be loaded."""
        from .pipelines import SuperResolutionPipeline

        return self._get("sr", model_id, lambda: SuperResolutionPipeline.from_pretrained(model_id, **self._options()))

    def gan(self, model_id: str):
        """The :class:`~hfmagic.GANPipeline` of ``model_id``; ``DemoError`` when it cannot be loaded."""
        from .pipelines import GANPipeline

        return self._get("gan", model_id, lambda: GANPipeline.from_pretrained(model_id, **self._options()))

    def _options(self) -> dict[str, str]:
        """Only what was chosen: the pipelines' own defaults otherwise."""
        return {name: value for name, value in (("device", self.device), ("dtype", self.dtype)) if value is not None}

    def _get(self, kind: str, model_id: str, load: Callable[[], Any]):
        model_id = (model_id or "").strip()
        if not model_id:
            raise DemoError("Choose a model, or type a Hub id (org/name) or a local folder.")
        key = (kind, model_id)
        with self._lock:
            if key in self._pipelines:
                self._pipelines.move_to_end(key)
                return self._pipelines[key]
            try:
                pipeline = load()
            except (OSError, ValueError, TypeError, KeyError) as err:
                what = "super-resolution model" if kind == "sr" else "GAN generator"
                raise DemoError(f"Cannot load {model_id} as a {what}: {_error_text(err)}") from err
            self._pipelines[key] = pipeline
            while len(self._pipelines) > self.max_size:
                self._pipelines.popitem(last=False)
            return pipeline


# --- images --------------------------------------------------------------------------------------


def read_upload(path: str | Path | None) -> Image.Image | np.ndarray:
    """An uploaded file as the pipeline reads it: a PIL image, or a uint16 array for 16-bit colour."""
    from .pipelines.image_io import open_image

    if path is None:
        raise DemoError("Upload an image first (PNG, JPEG, TIFF, WebP, ...; 8 or 16 bits, gray, RGB or RGBA).")
    try:
        return open_image(path)
    except (OSError, ValueError) as err:
        cause = err.__cause__ if err.__cause__ is not None else err
        if isinstance(cause, UnidentifiedImageError):  # its message names a BytesIO object, nothing useful
            raise DemoError(
                f"{Path(path).name} is not an image file: upload a PNG, JPEG, TIFF, WebP or BMP image."
            ) from err
        raise DemoError(f"{Path(path).name} cannot be read as an image: {_error_text(err)}") from err


def _planes(image: Image.Image | np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 or uint16, C = 1 (gray), 2 (gray + alpha), 3 or 4 (the pipeline's reading)."""
    from .pipelines.image_io import split_channels

    colour, alpha = split_channels(image)
    return colour if alpha is None else np.concatenate([colour, alpha], axis=2)


def to_display(image: Image.Image | np.ndarray, max_side: int | None = None) -> Image.Image:
    """An 8-bit PIL image ("L", "LA", "RGB" or "RGBA") to show in the page; 16 bits are rounded to 8
    (``round(x / 257)``). ``max_side``: shrink (Lanczos) so that no side is longer."""
    planes = _planes(image)
    if planes.dtype == np.uint16:
        planes = np.round(planes / 257.0).astype(np.uint8)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[planes.shape[2]]
    shown = Image.fromarray(planes[:, :, 0] if planes.shape[2] == 1 else planes, mode=mode)
    if max_side is not None and max(shown.size) > max_side:
        ratio = max_side / max(shown.size)
        shown = shown.resize((max(1, round(shown.width * ratio)), max(1, round(shown.height * ratio))), Image.LANCZOS)
    return shown


def describe(image: Image.Image | np.ndarray) -> str:
    """``"256 x 192, RGBA, 16-bit"``."""
    planes = _planes(image)
    height, width, channels = planes.shape
    kind = {1: "gray", 2: "gray + alpha", 3: "RGB", 4: "RGBA"}[channels]
    return f"{width} x {height}, {kind}, {16 if planes.dtype == np.uint16 else 8}-bit"


@dataclass
class UpscaleResult:
    """What :func:`upscale_image` returns.

    Attributes:
        before: the input upscaled with PIL bicubic to the output's size (8-bit, at most ``max_display_side``).
        after: the model's output, shown the same way (same size as ``before``).
        output: the full-resolution output (PIL image, or uint16 array for a 16-bit input).
        path: the output written as PNG (16-bit for a 16-bit input).
        seconds: time the model took (loading excluded).
        load_seconds: time the model took to load (0 when it was cached).
    """

    before: Image.Image
    after: Image.Image
    output: Image.Image | np.ndarray
    path: Path
    seconds: float
    load_seconds: float
    input_description: str
    tile_size: int | None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the full-resolution output."""
        planes = self.output if isinstance(self.output, np.ndarray) else np.asarray(self.output)
        return planes.shape[1], planes.shape[0]

    def summary(self) -> str:
        """One Markdown line for the page: sizes, time, tiling."""
        width, height = self.size
        tiles = f", tiles of {self.tile_size} px" if self.tile_size else ""
        loaded = f" (+ {self.load_seconds:.1f} s to load the model)" if self.load_seconds >= 0.05 else ""
        shown = "" if self.after.size == (width, height) else f"; the slider shows a {self.after.width} x {self.after.height} preview"
        return (
            f"**{width} x {height}** output from {self.input_description} input in **{self.seconds:.2f} s**"
            f"{tiles}{loaded}{shown}."
        )


def upscale_image(
    cache: PipelineCache,
    model_id: str,
    image_path: str | Path | None,
    tile_size: int | float | None = None,
    output_dir: str | Path | None = None,
    progress: Callable[[int, int | None, str], None] | None = None,
    max_input_pixels: int | None = None,
    max_display_side: int | None = MAX_DISPLAY_SIDE,
) -> UpscaleResult:
    """Upscale the image file at ``image_path`` with the SR model ``model_id``.

    Args:
        tile_size: LR tile side (``None``/0: the pipeline's choice, tiled automatically for large images).
        output_dir: where the PNG goes (a new sub-folder per call; default: a temporary folder).
        progress: ``callback(done, total, desc)`` called as the tiles advance.
        max_input_pixels: refuse larger inputs (a public Space's guard); ``None``: no limit.
    Raises:
        DemoError: with a message for the page.
    """
    from .data import save_image
    from .logging_utils import progress_callback

    image = read_upload(image_path)
    try:
        planes = _planes(image)
    except ValueError as err:  # e.g. a 32-bit float image
        raise DemoError(f"{Path(image_path).name}: {_error_text(err)}") from err
    height, width = planes.shape[:2]
    if max_input_pixels is not None and height * width > max_input_pixels:
        raise DemoError(
            f"The image has {width} x {height} pixels, more than this demo takes ({max_input_pixels:,} pixels): "
            "crop or shrink it, or run `hfmagic upscale` on your machine."
        )
    tile = _tile_size(tile_size)
    started = time.perf_counter()
    pipeline = cache.super_resolution(model_id)
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    try:
        if progress is not None:
            with progress_callback(progress):
                output = pipeline(image, tile_size=tile, progress=True)
        else:
            output = pipeline(image, tile_size=tile)
    except (ValueError, TypeError) as err:
        raise DemoError(f"{model_id} cannot upscale {Path(image_path).name}: {_error_text(err)}") from err
    seconds = time.perf_counter() - started

    folder = Path(output_dir) if output_dir is not None else Path(tempfile.gettempdir()) / "hfmagic-demo"
    folder = folder / uuid.uuid4().hex[:12]  # one per call: users and runs do not overwrite each other
    folder.mkdir(parents=True, exist_ok=True)
    scale = _planes(output).shape[0] // height
    path = folder / f"{Path(image_path).stem}_x{scale}.png"
    save_image(output, path)

    after = to_display(output, max_display_side)
    before = to_display(image).resize(after.size, Image.BICUBIC)
    return UpscaleResult(before, after, output, path, seconds, load_seconds, describe(image), tile)


def prune_outputs(folder: str | Path, max_age_seconds: float = 3600.0) -> None:
    """Delete the per-call output folders of :func:`upscale_image` in ``folder`` older than
    ``max_age_seconds`` (a long-running app would otherwise keep every PNG it wrote)."""
    now = time.time()
    for sub in Path(folder).glob("*/"):
        if len(sub.name) == 12 and now - sub.stat().st_mtime > max_age_seconds:
            shutil.rmtree(sub, ignore_errors=True)


def _tile_size(value: int | float | None) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == 0:
        return None
    if value < 0 or int(value) != value:
        raise DemoError(f"Tile size must be a whole number of pixels (or empty/0 for automatic), got {value}.")
    return int(value)


def sample_grid(
    cache: PipelineCache, model_id: str, seed: int | float | None = 0, num_images: int | float = 16
) -> Image.Image:
    """``num_images`` samples of the GAN generator ``model_id`` from ``seed``, tiled into one grid
    (:func:`hfmagic.pipelines.gan.make_grid`); ``DemoError`` for the page."""
    from .pipelines.gan import make_grid

    if num_images is None or int(num_images) != num_images or not 1 <= num_images <= MAX_GAN_IMAGES:
        raise DemoError(f"Number of images must be a whole number from 1 to {MAX_GAN_IMAGES}, got {num_images}.")
    if seed is None or (isinstance(seed, float) and math.isnan(seed)) or int(seed) != seed or not 0 <= seed < 2**63:
        raise DemoError(f"Seed must be a whole number from 0 to 2**63 - 1, got {seed}.")
    pipeline = cache.gan(model_id)
    try:
        images = pipeline(num_images=int(num_images), seed=int(seed))
    except (ValueError, TypeError) as err:
        raise DemoError(f"{model_id} cannot draw samples: {_error_text(err)}") from err
    return make_grid(images)


# --- the page ------------------------------------------------------------------------------------


def _choices(model_ids: Sequence[str]) -> list[tuple[str, str]]:
    """(label, model id) pairs for a dropdown: a local folder is shown by its name, a Hub id as it is."""
    return [(Path(m).name if Path(m).is_dir() else m, m) for m in model_ids]


def _choice(dropdown: str | None, textbox: str | None) -> str:
    """The typed model id when there is one, else the dropdown's."""
    return (textbox or "").strip() or (dropdown or "").strip()


def _error_status(err: BaseException) -> str:
    if isinstance(err, DemoError):
        return f"**Error:** {err}"
    logger.exception("hfmagic demo: unexpected error")  # a bug: the traceback goes to the server's log only
    return f"**Error:** unexpected {type(err).__name__}: {err} (the details are in the server's log)."


def build_demo(
    models: Sequence[str] = (),
    gan_models: Sequence[str] = (),
    device: str | None = None,
    dtype: str | None = None,
    max_input_pixels: int | None = None,
    examples: bool = True,
    title: str = "hfmagic",
) -> gr.Blocks:
    """The Gradio app: an "Upscale" tab (SR models) and a "GAN samples" tab (generators).

    Args:
        models: SR model ids or folders offered in the Upscale tab's list (any other can be typed in).
        gan_models: GAN repos (generator at the root) offered in the GAN tab's list.
        device, dtype: for the pipelines (see :class:`PipelineCache`).
        max_input_pixels: refuse larger uploads (for a public Space); ``None``: no limit.
        examples: offer the photos that ship with hfmagic as examples.
    Returns:
        a ``gr.Blocks``; ``.launch()`` it (``hfmagic demo`` does).
    """
    gr = require_gradio()
    cache = PipelineCache(device=device, dtype=dtype)
    workdir = Path(tempfile.mkdtemp(prefix="hfmagic-demo-"))  # outputs; gradio serves files from the temp dir
    models, gan_models = list(models), list(gan_models)

    def on_upload(path):
        if path is None:
            return None, ""
        try:
            image = read_upload(path)
            return to_display(image, 512), f"Input: {describe(image)}."
        except Exception as err:  # noqa: BLE001 - every failure becomes a message in the page
            return None, _error_status(err)

    def on_upscale(choice, typed, path, tile_size, progress=gr.Progress(track_tqdm=True)):
        last = [0.0]

        def report(done, total, desc):  # at most ~10 page updates a second, and the last one
            now = time.monotonic()
            if now - last[0] >= 0.1 or done == total:
                last[0] = now
                progress((done, total) if total else None, desc=desc or "tiles", unit="tiles")

        try:
            prune_outputs(workdir)
            progress(0, desc="loading the model")
            result = upscale_image(
                cache, _choice(choice, typed), path, tile_size, workdir, report, max_input_pixels
            )
        except Exception as err:  # noqa: BLE001
            return None, None, _error_status(err)
        return (result.before, result.after), str(result.path), result.summary()

    def on_sample(choice, typed, seed, num_images, progress=gr.Progress(track_tqdm=True)):
        try:
            started = time.perf_counter()
            grid = sample_grid(cache, _choice(choice, typed), seed, num_images)
        except Exception as err:  # noqa: BLE001
            return None, _error_status(err)
        took = time.perf_counter() - started
        return grid, f"{int(num_images)} image(s), seed {int(seed)}, grid {grid.width} x {grid.height}, {took:.2f} s."

    # gradio copies each output into its cache: files older than an hour go, checked hourly
    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            f"# {title}\nUpscale an image with a super-resolution model, or draw samples from a GAN generator. "
            "Models: a Hub id (`org/name`) or a local folder written by `save_pretrained` / `hfmagic convert`."
        )
        with gr.Tab("Upscale"):
            with gr.Row():
                with gr.Column(scale=2):
                    sr_choice = gr.Dropdown(
                        choices=_choices(models), value=models[0] if models else None, label="Model", elem_id="sr-model"
                    )
                    sr_typed = gr.Textbox(
                        label="Or another model (Hub id or folder)", placeholder="org/name or path/to/folder",
                        elem_id="sr-model-typed",
                    )
                    upload = gr.File(label="Image (8/16-bit, gray, RGB, RGBA)", type="filepath", elem_id="sr-upload")
                    preview = gr.Image(label="Input", type="pil", interactive=False, height=160, elem_id="sr-preview")
                    tile = gr.Number(
                        label="Tile size (LR pixels; 0 = automatic, tiled when large)", value=0, precision=0,
                        minimum=0, elem_id="sr-tile",
                    )
                    run = gr.Button("Upscale", variant="primary", elem_id="sr-run")
                with gr.Column(scale=3):
                    slider = gr.ImageSlider(
                        label="Bicubic | model (drag to compare)", type="pil", format="png", elem_id="sr-slider"
                    )
                    status = gr.Markdown(elem_id="sr-status")
                    download = gr.File(label="Output (full resolution PNG)", interactive=False, elem_id="sr-download")
            if examples:
                from .data.embedded import embedded_image, embedded_image_names

                folder = workdir / "examples"
                folder.mkdir()
                files = [shutil.copy(embedded_image(name), folder / f"{name}.png") for name in embedded_image_names()]
                gr.Examples([[str(f)] for f in files], inputs=[upload], label="Photos that ship with hfmagic")
            upload.change(on_upload, inputs=[upload], outputs=[preview, status])
            run.click(on_upscale, inputs=[sr_choice, sr_typed, upload, tile], outputs=[slider, download, status])
        with gr.Tab("GAN samples"):
            with gr.Row():
                with gr.Column(scale=2):
                    gan_choice = gr.Dropdown(
                        choices=_choices(gan_models), value=gan_models[0] if gan_models else None, label="Generator",
                        elem_id="gan-model",
                    )
                    gan_typed = gr.Textbox(
                        label="Or another generator (Hub id or folder)", placeholder="org/name or path/to/folder",
                        elem_id="gan-model-typed",
                    )
                    seed = gr.Number(label="Seed", value=0, precision=0, minimum=0, elem_id="gan-seed")
                    count = gr.Slider(1, MAX_GAN_IMAGES, value=16, step=1, label="Number of images", elem_id="gan-count")
                    draw = gr.Button("Draw", variant="primary", elem_id="gan-run")
                with gr.Column(scale=3):
                    grid = gr.Image(label="Samples", type="pil", format="png", interactive=False, elem_id="gan-grid")
                    gan_status = gr.Markdown(elem_id="gan-status")
            draw.click(on_sample, inputs=[gan_choice, gan_typed, seed, count], outputs=[grid, gan_status])
    return demo
