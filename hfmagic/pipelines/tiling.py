"""Tiling for :class:`~hfmagic.pipelines.SuperResolutionPipeline`: cut the LR image into cores,
give each the context it needs, run the model on batches of tiles and yield each core's output.

Single-stage tiling feeds every core with ``tile_overlap`` pixels of context (the model's receptive
field by default) through the whole model. Two-stage tiling (models split into ``forward_features``
/ ``forward_head``) runs the trunk on large LR regions and only the head on ``tile_size`` tiles of
its features, so only the head's few pixels of context are recomputed per tile.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator

import torch

from .exact import aligned_context, exact_kernels

__all__ = ["AUTO_TILE_PIXELS", "DEFAULT_TILE_OVERLAP", "Region", "TilingMixin", "feature_region_size"]

Region = tuple[int, int, int, int]  # y0, y1, x0, x1
# What a tiler yields: an HR region and its output (1, C, h, w), on the pipeline's device.
Tiles = Iterator[tuple[Region, torch.Tensor]]

# Overlap used when a model's receptive field cannot be determined.
DEFAULT_TILE_OVERLAP = 16

# Two-stage tiling runs forward_features on regions of at least this many LR pixels a side: with
# 64 channels a 512-pixel region's map is 64 MB, and its 2 x receptive-field seams stay cheap.
_MIN_FEATURE_REGION = 512


# Outputs of more pixels than this are tiled even when no tile_size is given (two-stage, split
# models, not exact), with head tiles of _AUTO_HEAD_TILE output pixels a side: the head's 64-channel
# maps at output resolution are what a whole pass holds (~7 GB of floats for a 4000x3000 x4 output
# of MSRResNet or RRDBNet); 512-pixel head tiles bound them at 32 MB each in bf16 (64 MB in fp32),
# below Real-ESRGAN's own 128-pixel tiler at a x4 1000x750 output (bench_realesrganer.py), at the
# cost of an 8-pixel halo per head tile. The trunk still runs on large regions.
AUTO_TILE_PIXELS = 512 * 512
_AUTO_HEAD_TILE = 512


def feature_region_size(scale: int, tile_size: int, feature_halo: int = 0) -> int:
    """Side in LR pixels of the regions that two-stage tiling runs ``forward_features`` on.

    ``scale * tile_size / 2``: a region's map then holds a quarter of the floats of one head tile's
    HR map, so the trunk (which keeps ~4 maps alive) never needs more memory than the head does.
    At least four times the trunk's halo (``feature_halo``), so that the halos recomputed around a
    region stay within 1.25x its side (RRDBNet's trunk reads 347 pixels around each one).
    """
    return max(scale * tile_size // 2, _MIN_FEATURE_REGION, 4 * feature_halo)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _reflect_index(index: torch.Tensor, size: int) -> torch.Tensor:
    """Indices past the end of an axis of ``size`` pixels mirrored back as ``F.pad(mode="reflect")``
    / ``np.pad(mode="reflect")`` do (the edge pixel is not repeated), also for tiny axes."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * size - 2
    index = index % period
    return torch.where(index >= size, period - index, index)


def _reflect_read(read: Callable[[Region], torch.Tensor], height: int, width: int) -> Callable[[Region], torch.Tensor]:
    """``read`` for regions of the image padded at the bottom and right by reflection (Real-ESRGAN's
    ``mod_pad``): a region reaching past the image reads the pixels it mirrors."""

    def padded(region: Region) -> torch.Tensor:
        y0, y1, x0, x1 = region
        if y1 <= height and x1 <= width:
            return read(region)
        rows, cols = _reflect_index(torch.arange(y0, y1), height), _reflect_index(torch.arange(x0, x1), width)
        ry0, ry1, cx0, cx1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
        tile = read((ry0, ry1, cx0, cx1))
        return tile[..., rows - ry0, :][..., cols - cx0]

    return padded


def _cores(height: int, width: int, size: int) -> list[Region]:
    """Cut a height x width grid into ``size`` x ``size`` cores (smaller at the bottom/right edges)."""
    return [
        (y, min(y + size, height), x, min(x + size, width)) for y in range(0, height, size) for x in range(0, width, size)
    ]


def _grow(region: Region, margin: int, height: int, width: int) -> Region:
    """``region`` with ``margin`` more pixels on every side, clipped to the image."""
    y0, y1, x0, x1 = region
    return max(y0 - margin, 0), min(y1 + margin, height), max(x0 - margin, 0), min(x1 + margin, width)


def _run_batch(batch: list[tuple], run: Callable[..., torch.Tensor], scale: int, what: str) -> Tiles:
    """Run ``run`` on a batch of tiles and yield each core's part of the output.

    ``batch`` holds ``(core, context, *inputs)`` items whose inputs (LR tensors of the context's
    size) are concatenated along the batch dimension and passed to ``run``; ``what`` names the
    callable in the error raised when its output is not ``scale`` times larger.
    """
    inputs = [torch.cat(parts) for parts in zip(*(item[2:] for item in batch))]
    outputs = run(*inputs)
    h, w = inputs[0].shape[-2:]
    if tuple(outputs.shape[-2:]) != (h * scale, w * scale):
        raise ValueError(
            f"{what} turned a {h}x{w} input into {tuple(outputs.shape[-2:])}, not the {h * scale}x{w * scale} "
            f"that upscale_factor={scale} promises."
        )
    for ((y0, y1, x0, x1), (cy0, _, cx0, _), *_), output in zip(batch, outputs):
        crop = output[:, (y0 - cy0) * scale : (y1 - cy0) * scale, (x0 - cx0) * scale : (x1 - cx0) * scale]
        yield (y0 * scale, y1 * scale, x0 * scale, x1 * scale), crop[None]
    batch.clear()


def _batched(items: Iterator[tuple], batch_size: int, run: Callable[..., torch.Tensor], scale: int, what: str) -> Tiles:
    """Group ``(core, context, *inputs)`` items into batches of ``batch_size`` equally shaped tiles."""
    batch: list[tuple] = []
    for item in items:
        if batch and (len(batch) == batch_size or item[2].shape != batch[0][2].shape):
            yield from _run_batch(batch, run, scale, what)
        batch.append(item)
    if batch:
        yield from _run_batch(batch, run, scale, what)


class TilingMixin:
    """The tiling half of the SR pipeline. Expects ``model``, ``scale``, ``device``, ``dtype``,
    ``exact``, ``split_tiling``, ``receptive_field``, ``split_receptive_fields``,
    ``_prepare_model()`` (the memory format the model's inputs get) and ``_progress(iterable, total,
    show)`` (a progress bar: the pipeline's diffusers ``progress_bar``) on the pipeline."""

    # Without a tile_size, outputs of more pixels than this tile automatically (see _auto_tile_size);
    # None on an instance: always the whole image.
    auto_tile_pixels: int | None = AUTO_TILE_PIXELS

    def _tiles(
        self,
        read: Callable[[Region], torch.Tensor],
        height: int,
        width: int,
        tile_size: int | None,
        tile_overlap: int | None,
        batch_size: int,
        progress: bool,
        padded: bool = False,
    ) -> Tiles:
        """Yield (HR region, tensor (1, C, h, w)) covering the whole output once; ``read(region)``
        gives the LR input of a region. The tensors stay on the pipeline's device in its dtype
        (consumers convert: uint8 on the device moves a quarter of the bytes of float32 to the host)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        multiple = self._input_multiple()
        # a model that pads its input its own way (Swin2SR, as its image processor: pipelines/swin2sr.py)
        own_padding = None if padded else getattr(self.model, "pad_input", None)
        if own_padding is not None or height % multiple or width % multiple:
            # pad (reflect) to the multiple the model needs, run, and crop the output to the image
            scale = self.scale
            if own_padding is not None:
                padded_read, *size = own_padding(read, height, width)
            else:
                padded_read, size = _reflect_read(read, height, width), (_round_up(height, multiple), _round_up(width, multiple))
            tiles = self._tiles(padded_read, *size, tile_size, tile_overlap, batch_size, progress, padded=True)
            for (y0, y1, x0, x1), tile in tiles:
                y1, x1 = min(y1, height * scale), min(x1, width * scale)
                yield (y0, y1, x0, x1), tile[..., : y1 - y0, : x1 - x0]
            return
        if tile_size is not None:
            if int(tile_size) != tile_size or tile_size < 1:
                raise ValueError(f"tile_size must be a positive integer (LR pixels) or None, got {tile_size!r}.")
            tile_size = _round_up(int(tile_size), multiple)  # tiles start at multiples
        elif tile_overlap is None:
            tile_size = self._auto_tile_size(height, width)
        if tile_size is not None:
            two_stage = tile_overlap is None and self.split_tiling and not self.exact
            if two_stage and self.split_receptive_fields is not None:
                yield from self._split_tiles(read, height, width, tile_size, batch_size, progress)
                return
        if tile_size is None:
            cores, overlap = [(0, height, 0, width)], 0
        else:
            cores, overlap = _cores(height, width, tile_size), _round_up(self._overlap(tile_overlap), multiple)
        memory_format = self._prepare_model()

        def run(inputs: torch.Tensor) -> torch.Tensor:
            inputs = inputs.to(device=self.device, dtype=self.dtype).contiguous(memory_format=memory_format)
            with torch.inference_mode(), exact_kernels(self.model, self.exact):
                return self.model(pixel_values=inputs).reconstruction

        def items() -> Iterator[tuple]:
            for core in self._progress(cores, show=progress and len(cores) > 1):
                context = _grow(core, overlap, height, width)
                if self.exact:
                    context = aligned_context(context, height, width, multiple)
                yield core, context, read(context)

        # exact: one tile per forward (a batched GEMM starts each sample's rows at another alignment)
        yield from _batched(items(), 1 if self.exact else batch_size, run, self.scale, type(self.model).__name__)

    def _split_tiles(
        self,
        read: Callable[[Region], torch.Tensor],
        height: int,
        width: int,
        tile_size: int,
        batch_size: int,
        progress: bool,
    ) -> Tiles:
        """Two-stage tiling: ``forward_features`` on large LR regions, ``forward_head`` on
        ``tile_size`` tiles of their features. Same contract as ``_tiles``.

        A single-stage tile recomputes the whole receptive field (35 LR pixels for MSRResNet) on
        every side; here only the head's few pixels are recomputed per tile, and the feature stage,
        whose maps cost ``mid_channels`` floats per LR pixel, runs in regions of
        :func:`feature_region_size` LR pixels a side.
        """
        multiple = self._input_multiple()
        feature_halo, head_halo = (_round_up(halo, multiple) for halo in self.split_receptive_fields)
        regions = _cores(height, width, _round_up(feature_region_size(self.scale, tile_size, feature_halo), multiple))
        total = sum(len(_cores(y1 - y0, x1 - x0, tile_size)) for y0, y1, x0, x1 in regions)
        bar = self._progress(total=total, show=progress and total > 1)
        memory_format = self._prepare_model()

        def head(pixels: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                out = self.model.forward_head(feats.contiguous(memory_format=memory_format), pixels.contiguous(memory_format=memory_format))
            bar.update(len(feats))
            return out

        for region in regions:
            fy0, fy1, fx0, fx1 = _grow(region, head_halo, height, width)  # features the head tiles read
            iy0, iy1, ix0, ix1 = _grow((fy0, fy1, fx0, fx1), feature_halo, height, width)
            inputs = read((iy0, iy1, ix0, ix1)).to(device=self.device, dtype=self.dtype)
            inputs = inputs.contiguous(memory_format=memory_format)
            with torch.inference_mode():
                feats = self.model.forward_features(inputs)
            expected = tuple(size // multiple for size in inputs.shape[-2:])
            if feats.dim() != 4 or tuple(feats.shape[-2:]) != expected:
                kept = "keep the input's resolution" if multiple == 1 else f"divide the input's resolution by {multiple}"
                raise ValueError(
                    f"{type(self.model).__name__}.forward_features must {kept} (input_multiple() = {multiple}): it "
                    f"turned {tuple(inputs.shape)} into {tuple(feats.shape)}. Override reconstruct instead, or pass "
                    "split_tiling=False to the pipeline."
                )

            def items(region=region, feats=feats, inputs=inputs, iy0=iy0, ix0=ix0) -> Iterator[tuple]:
                m = multiple
                for y0, y1, x0, x1 in _cores(region[1] - region[0], region[3] - region[2], tile_size):
                    core = (region[0] + y0, region[0] + y1, region[2] + x0, region[2] + x1)
                    cy0, cy1, cx0, cx1 = context = _grow(core, head_halo, height, width)
                    pixels = inputs[..., cy0 - iy0 : cy1 - iy0, cx0 - ix0 : cx1 - ix0]
                    # the features of a model with input_multiple m are m times coarser (all edges are multiples of m)
                    window = feats[..., (cy0 - iy0) // m : (cy1 - iy0) // m, (cx0 - ix0) // m : (cx1 - ix0) // m]
                    yield core, context, pixels, window

            yield from _batched(items(), batch_size, head, self.scale, f"{type(self.model).__name__}.forward_head")
            del feats, inputs
        bar.close()

    def _input_multiple(self) -> int:
        from .receptive_field import _multiple

        return _multiple(self.model)

    def _auto_tile_size(self, height: int, width: int) -> int | None:
        """The tile size used when none is given: None (the whole image) unless the output has more
        than ``auto_tile_pixels`` (default ``AUTO_TILE_PIXELS``) pixels and the model tiles in two stages (as exact as the whole
        image, within ~1e-6; never in exact mode), then ``_AUTO_HEAD_TILE / scale``."""
        limit = self.auto_tile_pixels
        if limit is None or height * width * self.scale**2 <= limit or self.exact or not self.split_tiling:
            return None
        if self.split_receptive_fields is None:
            return None
        return _round_up(max(_AUTO_HEAD_TILE // self.scale, 1), self._input_multiple())

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
