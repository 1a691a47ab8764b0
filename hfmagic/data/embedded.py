"""Photographs shipped with hfmagic (``hfmagic/assets/``), for offline examples and smoke runs.

Four training photos and one validation photo (public domain / CC0, taken from scikit-image's
data folder; sources and licences in ``hfmagic/assets/README.md``). Every path returned here is a
plain folder of PNG files, so it works wherever a folder of images is accepted
(``build_sr_dataset``, ``load_eval_set``, ``hfmagic upscale``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["embedded_image", "embedded_image_names", "embedded_sr_train_dir", "embedded_sr_validation_dir"]


def _assets() -> Path:
    # hfmagic is installed as files (setup.cfg package_data), so the traversable is a real path
    return Path(str(resources.files("hfmagic") / "assets"))


def embedded_sr_train_dir() -> Path:
    """Folder of the 4 embedded training photos (RGB and grayscale PNG, 150-320 px a side)."""
    return _assets() / "sr" / "train"


def embedded_sr_validation_dir() -> Path:
    """Folder of the embedded validation photo (``astronaut.png``, 256x256 RGB)."""
    return _assets() / "sr" / "validation"


def embedded_image_names() -> list[str]:
    """Names (file stems) of every embedded photo, e.g. ``["astronaut", "camera", ...]``."""
    return sorted(p.stem for p in (_assets() / "sr").glob("*/*.png"))


def embedded_image(name: str) -> Path:
    """Path of the embedded photo ``name`` (e.g. ``"astronaut"``)."""
    for path in (_assets() / "sr").glob(f"*/{name}.png"):
        return path
    raise FileNotFoundError(f"No embedded image named {name!r}; choose one of {embedded_image_names()}.")
