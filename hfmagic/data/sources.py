"""Open any image dataset source as a ``datasets`` object, for the SR and GAN data alike."""

from __future__ import annotations

import glob
import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import datasets

__all__ = ["load_image_dataset"]

logger = logging.getLogger(__name__)


def _is_save_to_disk_folder(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "dataset_dict.json")) or (
        os.path.isfile(os.path.join(path, "state.json")) and os.path.isfile(os.path.join(path, "dataset_info.json"))
    )


def _pick_split(dataset_dict: Any, split: str, source: str, lenient: bool):
    if split in dataset_dict:
        return dataset_dict[split]
    names = list(dataset_dict)
    if lenient and len(names) == 1:
        # A local folder or file holds one split (imagefolder calls it "train"): it is the one asked for.
        logger.info("%s has a single split %r; using it as split %r.", source, names[0], split)
        return dataset_dict[names[0]]
    raise ValueError(f"{source!r} has no split {split!r}; available splits: {names}. Pass split=... accordingly.")


def _load(source: Any, split: str, data_files: Any, streaming: bool):
    import datasets

    if isinstance(source, (datasets.Dataset, datasets.IterableDataset)):
        return source
    if isinstance(source, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        return _pick_split(source, split, "the DatasetDict", lenient=False)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be a path, a Hub dataset id or a datasets object, got {type(source).__name__}.")
    source = os.fspath(source)
    if os.path.isdir(source):
        if _is_save_to_disk_folder(source):
            loaded = datasets.load_from_disk(source)
            return _pick_split(loaded, split, source, lenient=True) if isinstance(loaded, datasets.DatasetDict) else loaded
        if data_files is None and glob.glob(os.path.join(source, "**", "*.parquet"), recursive=True):
            loaded = datasets.load_dataset(source, streaming=streaming)
        else:
            try:
                loaded = datasets.load_dataset(
                    "imagefolder", data_dir=source, data_files=data_files, drop_labels=True, streaming=streaming
                )
            except Exception as err:  # datasets' ways of saying that there is no image file in it
                empty = type(err).__name__ in ("EmptyDatasetError", "DataFilesNotFoundError")
                if not (empty or "corresponds to no data" in str(err)):
                    raise
                raise ValueError(
                    f"The folder {source!r} holds no image files (.png, .jpg, ... anywhere below it): put the images "
                    "there, or pass a parquet file, a save_to_disk folder or a Hub dataset id."
                ) from err
        return _pick_split(loaded, split, source, lenient=True)
    if os.path.isfile(source) or glob.has_magic(source):
        if not source.endswith(".parquet"):
            raise ValueError(
                f"{source!r} is a file or pattern that is not .parquet; pass a parquet file/glob, a folder of "
                "images, a save_to_disk folder or a Hub dataset id."
            )
        if glob.has_magic(source) and not glob.glob(source, recursive=True):
            raise FileNotFoundError(f"No file matches {source!r}.")
        return datasets.load_dataset("parquet", data_files={split: source}, split=split, streaming=streaming)
    if source.startswith((".", "/", "~")) or source.count("/") > 1 or os.sep in source.replace("/", ""):
        raise FileNotFoundError(f"{source!r} does not exist (and is not a Hub dataset id like 'org/name').")
    return datasets.load_dataset(source, split=split, data_files=data_files, streaming=streaming)


def load_image_dataset(
    source: "str | os.PathLike | datasets.Dataset | datasets.DatasetDict",
    *,
    split: str = "train",
    data_files: Any = None,
    streaming: bool = False,
) -> "datasets.Dataset | datasets.IterableDataset":
    """Load ``source`` as a ``datasets.Dataset`` (an ``IterableDataset`` when ``streaming``), detecting what it is:

    - a ``datasets.Dataset``/``IterableDataset`` (returned as is) or ``DatasetDict`` (``[split]``);
    - a folder written by ``save_to_disk`` (``Dataset`` or ``DatasetDict``);
    - a folder holding ``.parquet`` files (anywhere below it), e.g. from ``hfmagic prepare-div2k``;
    - any other folder: ``imagefolder`` with ``drop_labels=True`` (sub-folder names are not labels);
    - a ``.parquet`` file or a glob such as ``"shards/*.parquet"``;
    - otherwise a Hub dataset id (``load_dataset(source, split=split, data_files=data_files)``).

    A local folder or file with a single split is returned whatever ``split`` says. With
    ``streaming=True`` files are read lazily, for datasets too big for the disk.
    """
    import datasets

    dataset = _load(source, split, data_files, streaming)
    if streaming and isinstance(dataset, datasets.Dataset):
        dataset = dataset.to_iterable_dataset()
    return dataset
