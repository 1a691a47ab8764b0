"""Type and range checks shared by hfmagic's configs (a config takes any value; a wrong one would
otherwise fail later, inside a layer, with a message about tensor sizes)."""

from __future__ import annotations

import dataclasses

from transformers import PretrainedConfig

__all__ = ["check_int_fields"]

_BASE_FIELDS = {f.name for f in dataclasses.fields(PretrainedConfig)} if dataclasses.is_dataclass(PretrainedConfig) else set()


def check_int_fields(config: PretrainedConfig) -> None:
    """Every field a config class declares as ``int`` must hold an int (not a bool, not 2.0), at least 1
    for sizes, channels, scales and factors, at least 0 for counts (``num_*``, e.g. ``num_blocks``)."""
    for field in dataclasses.fields(config):
        if field.type != "int" or field.name in _BASE_FIELDS:
            continue
        value = getattr(config, field.name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{type(config).__name__}.{field.name} must be an int, got {value!r} ({type(value).__name__}).")
        if any(word in field.name for word in ("channels", "size", "scale", "factor")):
            least = 1
        elif field.name.startswith("num_"):
            least = 0
        else:
            continue  # a user's field may mean anything by a negative value
        if value < least:
            raise ValueError(f"{type(config).__name__}.{field.name} must be >= {least}, got {value}.")
