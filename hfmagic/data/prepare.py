"""DIV2K (or any folder/zip of large images) -> an HF dataset of HR sub-images.

MMagic and BasicSR train on 480x480 crops taken every 240 pixels from the 800 DIV2K training
images (BasicSR's ``extract_subimages``): a random 128x128 training patch then costs the decode of
a 480x480 PNG instead of a 2040x1356 one. ``prepare_div2k`` does the same extraction, in parallel
processes, and writes the crops as PNG bytes into a ``datasets`` dataset (``save_to_disk`` or
parquet shards) that :func:`~hfmagic.data.build_sr_dataset` loads directly; it can also push it to
the Hub.

Window placement (per axis of length n): starts ``0, step, 2*step, ...`` while the window fits,
plus one window aligned to the far border (start ``n - crop_size``) when the pixels left after the
last window are more than ``thresh_size``. An image smaller than ``crop_size`` gives no window.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import tempfile
import warnings
import zipfile
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np
from PIL import Image

from .images import IMAGE_EXTENSIONS, load_rgb

if TYPE_CHECKING:  # pragma: no cover
    import datasets

__all__ = ["prepare_div2k", "subimage_positions", "list_source_images"]


def subimage_positions(height: int, width: int, crop_size: int = 480, step: int = 240, thresh_size: int = 0) -> list[tuple[int, int]]:
    """(top, left) of every ``crop_size`` window that BasicSR's ``extract_subimages`` takes from an
    image of ``height`` x ``width``, in its order (row by row)."""
    if crop_size <= 0 or step <= 0 or thresh_size < 0:
        raise ValueError(f"crop_size and step must be positive and thresh_size >= 0; got {crop_size}, {step}, {thresh_size}.")

    def starts(n: int) -> list[int]:
        if n < crop_size:
            return []
        space = list(range(0, n - crop_size + 1, step))
        if n - (space[-1] + crop_size) > thresh_size:
            space.append(n - crop_size)
        return space

    return [(top, left) for top in starts(height) for left in starts(width)]


def list_source_images(source: str | os.PathLike) -> list[str]:
    """Image names in ``source``: file paths directly inside a folder, or member names of a zip
    (any depth; macOS metadata skipped), sorted."""
    source = os.fspath(source)
    if os.path.isdir(source):
        names = [
            os.path.join(source, name)
            for name in os.listdir(source)
            if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")
        ]
        hint = "point SOURCE at the folder that holds the HR images (e.g. DIV2K_train_HR)"
    elif os.path.isfile(source):
        if not zipfile.is_zipfile(source):
            raise ValueError(f"{source!r} is neither a folder nor a zip file; pass a DIV2K folder or DIV2K_train_HR.zip.")
        with zipfile.ZipFile(source) as archive:
            names = [
                info.filename
                for info in archive.infolist()
                if not info.is_dir()
                and info.filename.lower().endswith(IMAGE_EXTENSIONS)
                and "__MACOSX" not in info.filename
                and not os.path.basename(info.filename).startswith(".")
            ]
        hint = "pass a zip of HR images such as DIV2K_train_HR.zip"
    else:
        raise FileNotFoundError(f"DIV2K source {source!r} does not exist.")
    if not names:
        raise ValueError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) found in {source!r}; {hint}.")
    return sorted(names)


def _encode_png(array: np.ndarray, compress_level: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def _generate_subimages(
    names: list[str],
    source: str,
    crop_size: int,
    step: int,
    thresh_size: int,
    scales: tuple[int, ...],
    compress_level: int,
    one_thread: bool = False,
) -> Iterator[dict]:
    """Generator run by each worker process on its share of ``names`` (datasets shards lists)."""
    from .imresize import imresize

    if one_thread:
        import torch

        # a forked worker inherits the parent's OpenMP pool state: once the parent has run a
        # multi-threaded torch op, a torch op in the child can wait forever on threads that do not exist
        torch.set_num_threads(1)

    archive = zipfile.ZipFile(source) if os.path.isfile(source) else None
    try:
        for name in names:
            data = archive.read(name) if archive is not None else name
            image = load_rgb(data)
            if scales:
                # LR windows must sit on the LR pixel grid: work on the HR cropped to a multiple of every scale.
                multiple = math.lcm(*scales)
                image = image[: image.shape[0] - image.shape[0] % multiple, : image.shape[1] - image.shape[1] % multiple]
            height, width = image.shape[:2]
            positions = subimage_positions(height, width, crop_size, step, thresh_size)
            if not positions:
                warnings.warn(f"Skipping {name}: {height}x{width} is smaller than crop_size={crop_size}.", stacklevel=2)
                continue
            lr_images = {s: imresize(image, 1.0 / s, round_uint8=True) for s in scales}
            for top, left in positions:
                row = {
                    "image": {"bytes": _encode_png(image[top : top + crop_size, left : left + crop_size], compress_level), "path": None},
                    "source": os.path.basename(name),
                    "top": top,
                    "left": left,
                }
                for s, lr in lr_images.items():
                    c, t, l = crop_size // s, top // s, left // s
                    row[f"lr_x{s}"] = {"bytes": _encode_png(lr[t : t + c, l : l + c], compress_level), "path": None}
                yield row
    finally:
        if archive is not None:
            archive.close()


def _write_parquet(dataset: "datasets.Dataset", output: str, max_shard_bytes: int = 500 << 20) -> None:
    num_shards = max(1, math.ceil(dataset.data.nbytes / max_shard_bytes))
    os.makedirs(os.path.join(output, "data"), exist_ok=True)
    for index in range(num_shards):
        shard = dataset.shard(num_shards, index, contiguous=True)
        shard.to_parquet(os.path.join(output, "data", f"train-{index:05d}-of-{num_shards:05d}.parquet"))


def prepare_div2k(
    source: str | os.PathLike,
    output: str | os.PathLike,
    *,
    crop_size: int = 480,
    step: int = 240,
    thresh_size: int = 0,
    scales: Sequence[int] = (),
    num_proc: int | None = None,
    output_format: str = "disk",
    compress_level: int = 3,
    push_to_hub: str | None = None,
    private: bool | None = None,
    overwrite: bool = False,
) -> "datasets.Dataset":
    """Cut every image of ``source`` into sub-images and write them as an HF dataset in ``output``.

    Args:
        source: a folder of images (e.g. ``DIV2K_train_HR``) or a zip of them (e.g.
            ``DIV2K_train_HR.zip`` from the DIV2K site or the ``goodfellowliu/DIV2K`` Hub repo).
        output: folder to create; must not exist or be empty (unless ``overwrite``).
        crop_size, step, thresh_size: BasicSR's ``extract_subimages`` settings (480, 240, 0 for
            DIV2K). Windows: see the module docstring and :func:`subimage_positions`.
        scales: also store LR sub-images ``lr_x{s}`` made with MATLAB bicubic from the whole HR
            image (as the DIV2K LR files are), cropped at the matching place; ``crop_size`` and
            ``step`` must then be multiples of every scale, and windows are placed on the HR image
            cropped to a multiple of all scales. Empty (default): HR only, LR is made online.
        num_proc: worker processes (default: all CPUs, at most one per image).
        output_format: ``"disk"`` (``save_to_disk``, memory-mapped Arrow) or ``"parquet"``
            (``output/data/train-XXXXX-of-YYYYY.parquet`` shards of about 500 MB).
        compress_level: PNG compression 0-9 (3, as BasicSR; 0 decodes fastest, files are larger).
        push_to_hub: also ``Dataset.push_to_hub`` the result to this dataset repo id.
        private: visibility of a repo created by ``push_to_hub``.
        overwrite: replace an existing non-empty ``output``.

    Returns:
        The written dataset (loaded back from ``output``) with columns ``image`` (PNG), ``source``
        (file name of the original image), ``top`` and ``left`` (the window's position in it) and
        ``lr_x{s}`` for each scale, rows in source-file then window order.
    """
    import datasets

    if output_format not in ("disk", "parquet"):
        raise ValueError(f"output_format must be 'disk' or 'parquet'; got {output_format!r}.")
    scales = tuple(int(s) for s in scales)
    for s in scales:
        if s < 1 or crop_size % s or step % s:
            raise ValueError(f"With scale {s}, crop_size ({crop_size}) and step ({step}) must be multiples of it.")
    if not 0 <= compress_level <= 9:
        raise ValueError(f"compress_level must be 0..9; got {compress_level}.")
    subimage_positions(crop_size, crop_size, crop_size, step, thresh_size)  # validates the numbers
    source, output = os.fspath(source), os.fspath(output)
    names = list_source_images(source)
    replace = os.path.exists(output) and (not os.path.isdir(output) or bool(os.listdir(output)))
    if replace and not overwrite:
        raise FileExistsError(f"{output!r} already exists and is not empty; choose a new folder or pass overwrite=True (--overwrite).")

    num_proc = min(num_proc or os.cpu_count() or 1, len(names))
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "source": datasets.Value("string"),
            "top": datasets.Value("int32"),
            "left": datasets.Value("int32"),
            **{f"lr_x{s}": datasets.Image() for s in scales},
        }
    )
    target = os.path.realpath(output)  # through a symlink: write where it points
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    # A private cache next to the output: no stale cache hit from an earlier run, removed at the end.
    cache_dir = tempfile.mkdtemp(prefix=".hfmagic-prepare-", dir=parent)
    try:
        no_subimages = ValueError(f"No sub-images: every image in {source!r} is smaller than crop_size={crop_size}.")
        try:
            dataset = datasets.Dataset.from_generator(
                _generate_subimages,
                features=features,
                gen_kwargs={
                    "names": names,  # a list: datasets splits it between the processes
                    "source": source,
                    "crop_size": crop_size,
                    "step": step,
                    "thresh_size": thresh_size,
                    "scales": scales,
                    "compress_level": compress_level,
                    "one_thread": num_proc > 1,
                },
                num_proc=num_proc if num_proc > 1 else None,
                cache_dir=cache_dir,
                writer_batch_size=64,  # rows of ~0.5 MB PNGs: keep each worker's buffer small
            )
        except ValueError as err:  # datasets' word for a generator that yielded nothing
            if "corresponds to no data" not in str(err):
                raise
            raise no_subimages from err
        if len(dataset) == 0:
            raise no_subimages
        # A new or empty output is written in place; an output being replaced (--overwrite) is written
        # next to it and swapped in at the end, so that a failure half-way never loses the old one.
        staging = os.path.join(cache_dir, "output") if replace else target
        if output_format == "disk":
            dataset.save_to_disk(staging)
        else:
            _write_parquet(dataset, staging)
        del dataset  # release the cache files before they are deleted
        if replace:
            shutil.rmtree(target) if os.path.isdir(target) else os.remove(target)
            os.replace(staging, target)
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)

    if output_format == "disk":
        result = datasets.load_from_disk(output)
    else:
        result = datasets.load_dataset(output, split="train")
    if push_to_hub:
        result.push_to_hub(push_to_hub, private=private)
    return result
