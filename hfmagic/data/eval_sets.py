"""The standard SR evaluation sets as (name, LR, HR) uint8 pairs.

``load_eval_set`` reads:

- ``"Set5"``, ``"Set14"``, ``"BSD100"``, ``"Urban100"`` (any case): the tarballs
  ``data/<Name>_HR.tar.gz`` and ``data/<Name>_LR_x{s}.tar.gz`` of the ``eugenesiow/<Name>`` Hub
  dataset repos, downloaded with ``hf_hub_download`` (cached; works offline once cached);
- a folder holding such a pair of tarballs;
- a folder with HR images and an LR folder for the scale: DIV2K's ``DIV2K_valid_HR`` +
  ``DIV2K_valid_LR_bicubic/X{s}`` (pass the parent or the HR folder), ``<Name>_HR`` +
  ``<Name>_LR_x{s}``, or ``HR`` + ``LR_bicubic/X{s}``;
- any other folder of images: HR only, LR made with MATLAB bicubic (:func:`~hfmagic.data.imresize`,
  rounded to uint8 as MATLAB does) after cropping HR to a multiple of the scale.

HR and LR files are paired by name (``0801.png`` ~ ``0801x4.png``, ``baby_HR.png`` ~
``baby_LR.png``); an HR image is cropped to ``scale x`` its LR's size when it has up to
``scale - 1`` extra rows/columns (MMagic's ``modcrop``), any other size difference is an error.
"""

from __future__ import annotations

import os
import re
import tarfile
from typing import Any, Iterator, NamedTuple, Sequence

import numpy as np

from .images import IMAGE_EXTENSIONS, image_size, load_rgb
from .imresize import imresize

__all__ = ["load_eval_set", "EvalPair", "EvalSet", "BENCHMARK_REPOS"]

# Benchmark name (lower case) -> (Hub dataset repo, file prefix)
BENCHMARK_REPOS = {
    "set5": ("eugenesiow/Set5", "Set5"),
    "set14": ("eugenesiow/Set14", "Set14"),
    "bsd100": ("eugenesiow/BSD100", "BSD100"),
    "urban100": ("eugenesiow/Urban100", "Urban100"),
}


class EvalPair(NamedTuple):
    """One evaluation image: ``lr`` uint8 (h, w, 3) and ``hr`` uint8 (h*s, w*s, 3), RGB."""

    name: str
    lr: np.ndarray
    hr: np.ndarray


def _is_image(name: str) -> bool:
    base = os.path.basename(name)
    return base.lower().endswith(IMAGE_EXTENSIONS) and not base.startswith(".") and "__MACOSX" not in name


def _match_key(name: str, scale: int) -> str:
    """File name -> the key HR and LR files share: lower-case stem without HR/LR/x{s} tags."""
    key = os.path.splitext(os.path.basename(name))[0].lower()
    key = re.sub(rf"_srf_{scale}_(hr|lr)$", "", key)  # SelfExSR: baby_SRF_4_HR
    key = re.sub(rf"[_-]?(lr|hr)?(_?bicubic)?[_-]?x{scale}$", "", key)  # DIV2K: 0801x4; foo_LR_x4
    key = re.sub(r"[_-](hr|lr)$", "", key)  # baby_HR / baby_LR
    return key


class EvalSet(Sequence[EvalPair]):
    """A list-like evaluation set: ``len``, indexing and iteration give :class:`EvalPair`; images are
    decoded when accessed (sizes were checked from the headers when the set was built)."""

    def __init__(self, name: str, scale: int, entries: list[tuple[str, Any, Any]]):
        self.name = name
        self.scale = scale
        self._entries = entries  # (name, hr source, lr source or None), sources are paths or bytes
        for key, hr, lr in entries:
            if lr is not None:
                self._check_sizes(key, self._read(key, image_size, hr), self._read(key, image_size, lr))

    def _read(self, key: str, read, source):
        """``read(source)`` (decode or header), with a broken file named by set and image."""
        try:
            return read(source)
        except (OSError, SyntaxError) as err:
            where = source if isinstance(source, (str, os.PathLike)) else key
            raise ValueError(f"{self.name}: image {where!r} cannot be read ({err}). Fix or remove it.") from err

    def _check_sizes(self, key: str, hr_hw: tuple[int, int], lr_hw: tuple[int, int]) -> None:
        s = self.scale
        if not all(l * s <= h < (l + 1) * s for h, l in zip(hr_hw, lr_hw)):
            raise ValueError(
                f"{self.name}: image {key!r} has HR {hr_hw[0]}x{hr_hw[1]} and LR {lr_hw[0]}x{lr_hw[1]} (HxW), "
                f"which is not a x{s} pair (HR must be {lr_hw[0] * s}x{lr_hw[1] * s}, up to {s - 1} extra pixels). "
                "Check the scale and that the HR and LR files belong together."
            )

    @property
    def names(self) -> list[str]:
        return [entry[0] for entry in self._entries]

    def hr_sizes(self) -> list[tuple[str, tuple[int, int]]]:
        """``(name, (H, W))`` of every HR image, from the file headers (nothing decoded)."""
        return [(key, self._read(key, image_size, hr)) for key, hr, _ in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        key, hr_source, lr_source = self._entries[index]
        s = self.scale
        hr = self._read(key, load_rgb, hr_source)
        if lr_source is None:
            hr = hr[: hr.shape[0] - hr.shape[0] % s, : hr.shape[1] - hr.shape[1] % s]
            if min(hr.shape[:2]) == 0:
                raise ValueError(f"{self.name}: image {key!r} is smaller than the scale {s}.")
            lr = imresize(hr, 1.0 / s, round_uint8=True)
        else:
            lr = self._read(key, load_rgb, lr_source)
            hr = np.ascontiguousarray(hr[: lr.shape[0] * s, : lr.shape[1] * s])
        return EvalPair(key, lr, hr)

    def __iter__(self) -> Iterator[EvalPair]:
        for index in range(len(self)):
            yield self[index]

    def __repr__(self) -> str:
        return f"EvalSet({self.name!r}, scale={self.scale}, {len(self)} images)"


def _pair_up(name: str, scale: int, hr: dict[str, Any], lr: dict[str, Any] | None, where: str) -> EvalSet:
    """hr/lr: file name -> source. Pairs them by match key; missing partners are an error."""

    def keyed(files: dict[str, Any], kind: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for file_name, source in files.items():
            key = _match_key(file_name, scale)
            if key in out:
                raise ValueError(f"{where}: two {kind} files map to the name {key!r} (one is {file_name!r}).")
            out[key] = source
        return out

    hr_keyed = keyed(hr, "HR")
    if not hr_keyed:
        raise ValueError(f"{where}: no HR images found.")
    if lr is None:
        return EvalSet(name, scale, [(key, hr_keyed[key], None) for key in sorted(hr_keyed)])
    lr_keyed = keyed(lr, "LR")
    missing_lr = sorted(set(hr_keyed) - set(lr_keyed))
    missing_hr = sorted(set(lr_keyed) - set(hr_keyed))
    if missing_lr or missing_hr:
        raise ValueError(
            f"{where}: HR and LR x{scale} images do not pair up by name; "
            f"HR without LR: {missing_lr[:10]}, LR without HR: {missing_hr[:10]}."
        )
    return EvalSet(name, scale, [(key, hr_keyed[key], lr_keyed[key]) for key in sorted(hr_keyed)])


def _read_tarball(path: str) -> dict[str, bytes]:
    """Image members of a .tar(.gz) -> encoded bytes (small: the benchmark sets are a few MB)."""
    images = {}
    with tarfile.open(path, "r:*") as archive:
        for member in archive:
            if member.isfile() and _is_image(member.name):
                images[member.name] = archive.extractfile(member).read()
    return images


def _images_in(folder: str) -> dict[str, str]:
    return {name: os.path.join(folder, name) for name in sorted(os.listdir(folder)) if _is_image(name)}


def _find_lr_folder(roots: list[str], scale: int, prefix: str = "") -> str | None:
    """A folder for LR x{scale} images below any of ``roots`` (depth <= 3): ``X{s}`` inside a folder
    whose name contains "LR" (DIV2K), or a folder named ``..._LR_x{s}`` / ``LR_bicubic_x{s}``.
    When several qualify, those whose path contains ``prefix`` (e.g. "DIV2K_valid") win."""
    pattern = re.compile(rf"(.*[_-])?lr([_-]?bicubic)?[_-]?x{scale}", re.IGNORECASE)
    found = []
    for root in roots:
        base_depth = root.rstrip(os.sep).count(os.sep)
        for folder, subfolders, _ in os.walk(root):
            if folder.count(os.sep) - base_depth >= 3:
                subfolders[:] = []
            name, parent = os.path.basename(folder), os.path.basename(os.path.dirname(folder))
            if pattern.fullmatch(name) or (name.lower() == f"x{scale}" and "lr" in parent.lower()):
                found.append((folder, os.path.relpath(folder, root)))
    if len({folder for folder, _ in found}) > 1 and prefix:
        found = [(f, rel) for f, rel in found if prefix.lower() in rel.lower()] or found
    found = sorted({os.path.normpath(folder) for folder, _ in found})
    if len(found) > 1:
        raise ValueError(f"Several LR x{scale} folders found: {found}; pass the HR folder of one set only.")
    return found[0] if found else None


def _from_folder(path: str, scale: int) -> EvalSet:
    name = os.path.basename(os.path.normpath(path))
    entries = os.listdir(path)
    hr_tars = [m for m in (re.fullmatch(r"(.+)_HR\.(tar\.gz|tgz|tar)", e, re.IGNORECASE) for e in sorted(entries)) if m]
    if len(hr_tars) > 1:
        raise ValueError(f"{path} holds several HR tarballs ({[m.group(0) for m in hr_tars]}); keep one set per folder.")
    if hr_tars:
        prefix = hr_tars[0].group(1)
        lr_tar = next((e for e in entries if re.fullmatch(rf"{re.escape(prefix)}_LR_x{scale}\.(tar\.gz|tgz|tar)", e, re.IGNORECASE)), None)
        if lr_tar is None:
            raise FileNotFoundError(f"{path} has {hr_tars[0].group(0)} but no {prefix}_LR_x{scale}.tar.gz for scale {scale}.")
        hr = _read_tarball(os.path.join(path, hr_tars[0].group(0)))
        lr = _read_tarball(os.path.join(path, lr_tar))
        return _pair_up(prefix, scale, hr, lr, path)

    hr_images = _images_in(path)
    if hr_images:
        hr_folder = path
        # An HR folder next to its LR folders (DIV2K_valid_HR beside DIV2K_valid_LR_bicubic/X4).
        search = [path] + ([os.path.dirname(os.path.abspath(path))] if re.search(r"hr$", name, re.IGNORECASE) else [])
        prefix = re.sub(r"[_-]?hr$", "", name, flags=re.IGNORECASE)
    else:
        candidates = [e for e in sorted(entries) if os.path.isdir(os.path.join(path, e)) and re.fullmatch(r"(.*[_-])?hr", e, re.IGNORECASE)]
        if len(candidates) != 1:
            raise ValueError(
                f"{path} holds no images and {'several' if candidates else 'no'} HR folders ({candidates}); "
                "pass a folder of HR images or a folder with one '<name>_HR' (or 'HR') sub-folder."
            )
        hr_folder = os.path.join(path, candidates[0])
        hr_images = _images_in(hr_folder)
        search = [path]
        prefix = re.sub(r"[_-]?hr$", "", candidates[0], flags=re.IGNORECASE)
    lr_folder = _find_lr_folder(search, scale, prefix)
    lr_images = _images_in(lr_folder) if lr_folder else None
    return _pair_up(name, scale, hr_images, lr_images, hr_folder)


def _download_benchmark(key: str, scale: int, cache_dir: str | None) -> EvalSet:
    from huggingface_hub import hf_hub_download

    repo_id, prefix = BENCHMARK_REPOS[key]
    files = {}
    for kind, filename in (("hr", f"data/{prefix}_HR.tar.gz"), ("lr", f"data/{prefix}_LR_x{scale}.tar.gz")):
        try:
            files[kind] = hf_hub_download(repo_id, filename, repo_type="dataset", cache_dir=cache_dir)
        except Exception as err:  # add what to do; the cause (network, missing scale) stays chained
            raise OSError(
                f"Could not get {filename} from the Hub dataset {repo_id} ({type(err).__name__}: {err}). "
                f"{prefix} has LR tarballs for x2, x3 and x4; offline, download {prefix}_HR.tar.gz and "
                f"{prefix}_LR_x{scale}.tar.gz elsewhere and pass the folder holding them instead of the name "
                "(load_eval_set(folder, scale), hfmagic evaluate --dataset FOLDER, train_sr.py --validation_dataset FOLDER)."
            ) from err
    return _pair_up(prefix, scale, _read_tarball(files["hr"]), _read_tarball(files["lr"]), repo_id)


def load_eval_set(name_or_path: str | os.PathLike, scale: int, *, cache_dir: str | os.PathLike | None = None) -> EvalSet:
    """Load an SR evaluation set as a list-like :class:`EvalSet` of ``EvalPair(name, lr, hr)``,
    ``lr``/``hr`` RGB uint8 (h, w, 3) / (h*scale, w*scale, 3), sorted by name.

    Args:
        name_or_path: ``"Set5"``, ``"Set14"``, ``"BSD100"``, ``"Urban100"`` (Hub tarballs), or a
            local folder (see the module docstring for the layouts understood).
        scale: upscale factor (the benchmarks ship x2, x3, x4).
        cache_dir: Hub cache folder for the tarballs (default: the HF cache).

    Example::

        for name, lr, hr in load_eval_set("Set5", 4):
            ...  # lr (h, w, 3), hr (4h, 4w, 3), uint8
    """
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive int; got {scale!r}.")
    path = os.fspath(name_or_path)
    if os.path.isdir(path):
        return _from_folder(path, scale)
    if path.lower() in BENCHMARK_REPOS:
        return _download_benchmark(path.lower(), scale, os.fspath(cache_dir) if cache_dir else None)
    raise FileNotFoundError(
        f"{path!r} is neither a folder nor a known benchmark; use one of "
        f"{[prefix for _, prefix in BENCHMARK_REPOS.values()]} or a folder of HR images."
    )
