"""Receptive-field arithmetic for SR models' ``receptive_field`` / ``split_receptive_fields``.

An SR network is a chain of operations from the LR grid to the HR grid. Walking the chain
backwards from the HR pixels of one LR pixel gives the LR interval that can influence them; its
radius is the context a tile needs for its centre to be exact. A model describes itself as lists
of the operations below (one list per branch that is summed at the end) and calls
:func:`chain_halo`. The tests check every formula against a NaN probe of the real network.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

__all__ = ["Back", "conv", "shuffle", "resize", "chain_halo"]

# An operation walked backwards: the output interval [lo, hi] -> the input interval it reads.
Back = Callable[[int, int], tuple[int, int]]


def conv(radius: int) -> Back:
    """A same-padded convolution with kernel ``2 * radius + 1``."""
    return lambda lo, hi: (lo - radius, hi + radius)


def shuffle(factor: int) -> Back:
    """A pixel shuffle by ``factor``: output pixel q comes from input pixel q // factor."""
    return lambda lo, hi: (lo // factor, hi // factor)


def resize(factor: int, taps_before: int, taps_after: int) -> Back:
    """``F.interpolate(scale_factor=factor, align_corners=False)``: output pixel q reads input
    pixels around ``floor((q + 0.5) / factor - 0.5)`` (bilinear: +0..1, bicubic: -1..+2)."""

    def source(q: int) -> int:
        return math.floor(Fraction(2 * q + 1, 2 * factor) - Fraction(1, 2))

    return lambda lo, hi: (source(lo) - taps_before, source(hi) + taps_after)


def chain_halo(scale: int, *branches: list[Back]) -> int:
    """LR context (pixels on each side) that the HR pixels of one LR pixel depend on, through
    every branch (each a list of operations from input to output, ``scale`` = their total factor)."""
    halo = 0
    for ops in branches:
        lo, hi = 0, scale - 1  # the HR pixels of LR pixel 0
        for back in reversed(ops):
            lo, hi = back(lo, hi)
        halo = max(halo, -lo, hi)
    return halo


def upsampling_stages(scale: int) -> list[int]:
    """The x2 / x3 pixel-shuffle stages of MMagic's upsamplers: x2 stages for powers of two, else one."""
    return [2] * int(math.log2(scale)) if scale & (scale - 1) == 0 else [scale]
