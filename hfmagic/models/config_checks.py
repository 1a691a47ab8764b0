"""Type and range checks of the fields hfmagic's configs declare (a config takes any value; a wrong
one would otherwise fail later, inside a layer, with a message about tensor sizes)."""

from __future__ import annotations

import dataclasses
import numbers
import operator

__all__ = ["check_int_fields"]


def _declared_by_hfmagic(config_class: type, name: str) -> bool:
    """Whether the class that declares field ``name`` is one of hfmagic's (a user's subclass may mean
    anything by its own fields, e.g. ``window_size = -1`` or ``None``)."""
    for cls in config_class.__mro__:
        if name in vars(cls).get("__annotations__", {}):
            return cls.__module__.startswith("hfmagic.")
    return False


def check_int_fields(config) -> None:
    """Every ``int`` field hfmagic's config classes declare must hold an integer (numpy's too, stored
    as int; not a bool, not 2.0): at least 1 for sizes, channels, scales and factors, at least 0 for
    counts (``num_*``, e.g. ``num_blocks``)."""
    for field in dataclasses.fields(config):
        if field.type not in ("int", int) or not _declared_by_hfmagic(type(config), field.name):
            continue
        value = getattr(config, field.name)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"{type(config).__name__}.{field.name} must be an int, got {value!r} ({type(value).__name__}).")
        value = operator.index(value)
        setattr(config, field.name, value)  # a plain int (numpy's would not serialise to JSON)
        if any(word in field.name for word in ("channels", "size", "scale", "factor")):
            least = 1
        elif field.name.startswith("num_"):
            least = 0
        else:
            continue
        if value < least:
            raise ValueError(f"{type(config).__name__}.{field.name} must be >= {least}, got {value}.")
