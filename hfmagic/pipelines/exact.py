"""Exact mode: the policy that makes tiled output bitwise equal to the whole-image output on CPU.

Four causes make a CPU kernel compute a pixel differently depending on the tensor's shape (all
measured; see :class:`~hfmagic.pipelines.SuperResolutionPipeline`): oneDNN's convolutions,
PyTorch's interpolations, the alignment at which MKL's GEMM rows start, and MKL's per-thread
chunks of few-channel convolutions. :func:`exact_kernels` switches the first, second and fourth
off while the model runs; :func:`aligned_context` sizes the two corner tiles against the third;
:func:`memory_format` keeps exact mode in NCHW, where the alignment argument holds.
"""

from __future__ import annotations

import contextlib
import warnings

import torch

from ..layers import exact_interpolation

__all__ = ["aligned_context", "exact_kernels", "memory_format"]

# Exact mode makes a corner tile's pixel count congruent to the image's modulo this many elements
# (32 floats = 128 bytes: a multiple of every SIMD width and cache line), so that the BLAS rows of
# the tile and of the whole image start at the same alignment.
_EXACT_ALIGN = 32
# Exact mode runs convolutions to fewer output channels than this on one thread.
_EXACT_SINGLE_THREAD_CHANNELS = 16


def exact_kernels(model: torch.nn.Module, exact: bool = True) -> contextlib.AbstractContextManager:
    """The context ``model`` runs in: exact mode switches oneDNN off (PyTorch's native
    convolution), the interpolations to their position-invariant form
    (:func:`hfmagic.layers.exact_interpolation`), and convolutions to few channels to one thread;
    all restored on exit. ``exact=False``: a no-op context."""
    if not exact:
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

    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d) and module.out_channels < _EXACT_SINGLE_THREAD_CHANNELS:
            stack.callback(module.register_forward_pre_hook(before).remove)
            stack.callback(module.register_forward_hook(after).remove)
    return stack


def memory_format(device: torch.device, channels_last: bool, exact: bool) -> torch.memory_format:
    """channels_last (NHWC) where the backend has fast NHWC convolutions: oneDNN on CPU (1.1-1.5x
    faster for these networks, see benchmarks/RESULTS.md) and cuDNN. PyTorch's native CPU
    convolution (oneDNN switched off, as in exact mode) stays NCHW: there its GEMM rows are
    channel planes, which :func:`aligned_context` can align; in NHWC the rows are pixels, and the
    3-channel first convolution rounds differently for different shapes (measured)."""
    if not channels_last or exact:
        return torch.contiguous_format
    if device.type == "cuda" or (device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        return torch.channels_last
    return torch.contiguous_format


def aligned_context(
    context: tuple[int, int, int, int], height: int, width: int, multiple: int = 1
) -> tuple[int, int, int, int]:
    """Grow a tile context that holds the image's first or last pixel (inward, within the image)
    until its pixel count is congruent to the image's modulo ``_EXACT_ALIGN``.

    Under PyTorch's native convolution a tile's channel planes are rows of one GEMM; MKL computes
    the first elements of a row that starts unaligned (and the last of one that ends so) in a
    separate loop that rounds differently. The planes of the whole image and of a tile start at
    the same alignment exactly when their pixel counts agree modulo the SIMD width. Only the two
    corner tiles keep such edge pixels (elsewhere they lie in the discarded overlap), so only those
    grow: by less than ``_EXACT_ALIGN`` pixels a side in practice, up to the whole image at worst.

    For a model that pixel-unshuffles its input by ``multiple`` (all edges are multiples of it), the
    convolutions see ``multiple`` x ``multiple`` blocks as pixels: the alignment is counted in blocks.
    """
    if multiple > 1:
        y0, y1, x0, x1 = aligned_context(tuple(v // multiple for v in context), height // multiple, width // multiple)
        return y0 * multiple, y1 * multiple, x0 * multiple, x1 * multiple
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
