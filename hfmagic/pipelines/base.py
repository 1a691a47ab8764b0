"""What hfmagic's pipelines share as diffusers pipelines (:class:`HFMagicPipeline`): saving in diffusers'
layout, reading that layout back without running code from the repo, the one component's device and
dtype, progress bars.

How a saved pipeline loads, and why this way. ``save_pretrained`` writes diffusers' layout
(``model_index.json`` + one folder per component, holding the model's ``config.json`` and
``model.safetensors``). diffusers 0.42 loads a component named ``[library, class]`` in
``model_index.json`` only when the class derives from a base class that diffusers looks up *in that
library's namespace* (``LOADABLE_CLASSES`` in ``diffusers/pipelines/pipeline_loading_utils.py``):
hfmagic's models derive from transformers' ``PreTrainedModel`` but are not attributes of
``transformers``; a transformers Auto class (``["transformers", "AutoModel"]``) is refused, being no
``PreTrainedModel`` subclass; a module path (what ``register_modules`` records) is resolved from
``sys.modules`` only and then checked against base classes looked up in that module, which no
diffusers document promises. The pipeline class itself is looked up in the ``diffusers`` namespace
unless ``_class_name`` names a file of the repo. Patching diffusers' private tables would break on
its next release. diffusers' documented mechanism for pipelines and components that it does not ship
is "community pipelines and components" (docs: using-diffusers/custom_pipeline_overview, "Community
components"): ``_class_name`` is ``[file, class]`` with ``file.py`` at the repo root, each custom
component's entry is ``[file, class]`` with ``file.py`` in the component's folder, and
``DiffusionPipeline.from_pretrained(..., trust_remote_code=True)`` imports them. The files written
here hold one import each, of the class from the installed hfmagic package (that page: the file "can
contain whatever package you want to use as long as it's installed by the user"); the weights stay a
plain transformers model folder. The pipeline classes' own ``from_pretrained`` reads the same layout
(and plain model repos) with transformers' loaders and runs nothing from the repo.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import torch
from diffusers import DiffusionPipeline
from huggingface_hub.errors import EntryNotFoundError
from tqdm.auto import tqdm

from ..logging_utils import has_progress_callback, progress_bar
from .device import resolve_device

__all__ = ["HFMagicPipeline", "pipeline_index"]

# Keyword arguments of from_pretrained that say where and how to fetch files (for model_index.json).
HUB_OPTIONS = ("revision", "token", "cache_dir", "local_files_only", "force_download", "proxies")

_LOADER_NOTE = (
    "# Written by hfmagic: diffusers' DiffusionPipeline.from_pretrained(..., trust_remote_code=True) imports\n"
    "# this file to find the class below, which comes from the installed package (pip install hfmagic);\n"
    "# the file holds no model code. hfmagic's own <Pipeline>.from_pretrained does not read it.\n"
)


def _import_file(folder: Path, stem: str, cls: type) -> None:
    """Write ``folder/stem.py``: one import of ``cls`` from its installed module."""
    text = _LOADER_NOTE + f"from {cls.__module__} import {cls.__name__}\n\n__all__ = [{cls.__name__!r}]\n"
    (folder / f"{stem}.py").write_text(text)


def pipeline_index(model_id_or_path: str | os.PathLike, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The ``model_index.json`` of a saved pipeline (a local folder or a Hub repo), or ``None`` when
    there is none (a plain model folder or repo, or nothing readable: the model loader then reports
    the real problem). ``kwargs``: from_pretrained's, of which the Hub options are used."""
    path = Path(model_id_or_path)
    if path.is_dir():
        index = path / (kwargs.get("subfolder") or "") / "model_index.json"
        return json.loads(index.read_text()) if index.is_file() else None
    if path.exists() or str(model_id_or_path).count("/") > 1:
        return None  # a file, or not a Hub id
    from huggingface_hub import hf_hub_download

    options = {k: kwargs[k] for k in HUB_OPTIONS if k in kwargs}
    try:
        file = hf_hub_download(str(model_id_or_path), "model_index.json", subfolder=kwargs.get("subfolder"), **options)
    except (EntryNotFoundError, OSError, ValueError):  # not a pipeline repo, or no repo: the model loader says which
        return None
    return json.loads(Path(file).read_text())


def component_of(index: dict[str, Any], name: str, model_id_or_path) -> str:
    """The folder of component ``name`` in a saved pipeline (its name), or ValueError naming what the
    index holds instead (e.g. a GAN pipeline given to the SR pipeline)."""
    if not isinstance(index.get(name), list):
        held = ", ".join(k for k, v in index.items() if isinstance(v, list) and not k.startswith("_")) or "nothing"
        pipeline = index.get("_class_name")
        pipeline = pipeline[-1] if isinstance(pipeline, list) else pipeline
        raise ValueError(
            f"{model_id_or_path!s} is a saved {pipeline} with components [{held}], not one with a {name!r} "
            f"component: load it with {pipeline}.from_pretrained."
        )
    return name


class HFMagicPipeline(DiffusionPipeline):
    """A diffusers ``DiffusionPipeline`` around one hfmagic model, the component named by
    ``component_name``: ``device``/``dtype`` are that model's, ``to()`` moves it, ``save_pretrained``
    writes diffusers' layout plus the import files that ``DiffusionPipeline.from_pretrained(...,
    trust_remote_code=True)`` needs (see the module docstring)."""

    component_name: ClassVar[str] = "model"

    @property
    def _component(self) -> torch.nn.Module:
        return getattr(self, self.component_name)

    @property
    def device(self) -> torch.device:
        """The device of the pipeline's model (moved with ``.to(device)``)."""
        return next(self._component.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the pipeline's model (changed with ``.to(dtype)``)."""
        return next(self._component.parameters()).dtype

    def _check_device(self, device: torch.device) -> None:
        """Refuse a device the pipeline cannot run on (ValueError); a hook for subclasses."""

    def to(self, *args, **kwargs) -> HFMagicPipeline:
        """diffusers' ``to(device)``, ``to(dtype)``, ``to(device, dtype)``: moves the model (in place)
        and returns the pipeline. The device is checked first (ValueError for one that does not exist
        here); float16 and bfloat16 run on CPU too, so diffusers' warning about them is off."""
        device = kwargs.get("device")
        for arg in args:
            if arg is not None and not isinstance(arg, torch.dtype):
                device = arg
        if device is not None:
            self._check_device(resolve_device(device))
        kwargs.setdefault("silence_dtype_warnings", True)
        super().to(*args, **kwargs)
        return self

    def _progress(self, iterable=None, total: int | None = None, show: bool = True):
        """``self.progress_bar`` (diffusers' tqdm, configured by ``set_progress_bar_config``) when
        ``show``, otherwise a silent one with the same interface."""
        if not show:
            return tqdm(iterable, total=total, disable=True)
        if has_progress_callback():  # e.g. the demo's page: hfmagic's bar calls it on every step
            desc = getattr(self, "_progress_bar_config", {}).get("desc") or "tiles"
            return progress_bar(iterable, total=total, desc=desc)
        return self.progress_bar(iterable=iterable, total=total)

    def _weights_to_save(self) -> torch.nn.Module:
        """The model that ``save_pretrained`` writes (the SR pipeline's float32 original under "auto")."""
        return self._component

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        safe_serialization: bool = True,
        variant: str | None = None,
        max_shard_size: int | str | None = None,
        push_to_hub: bool = False,
        **kwargs,
    ) -> None:
        """diffusers' ``save_pretrained``: ``model_index.json`` and the component's folder (``config.json``
        + ``model.safetensors``), plus two one-line import files that let ``DiffusionPipeline.from_pretrained
        (folder_or_repo, trust_remote_code=True)`` find the classes. ``push_to_hub=True`` (with ``repo_id``,
        ``token``, ``private``, ``commit_message``, ``create_pr``) then uploads the folder's contents."""
        if not hasattr(self._weights_to_save(), "save_pretrained"):  # e.g. transformers' Swin2SR, wrapped
            raise ValueError(
                f"This pipeline's model ({type(self._component).__name__}) is not saved as a pipeline: save the model "
                "itself (its save_pretrained; for Swin2SR `pipe.model.model.save_pretrained(folder)`), and "
                "SuperResolutionPipeline.from_pretrained(folder) loads it back."
            )
        hub_kwargs = {k: kwargs.pop(k) for k in ("repo_id", "commit_message", "private", "token", "create_pr") if k in kwargs}
        super().save_pretrained(
            save_directory, safe_serialization=safe_serialization, variant=variant, max_shard_size=max_shard_size, **kwargs
        )
        folder = Path(save_directory)
        name = self.component_name
        weights = self._weights_to_save()
        if weights is not self._component:
            weights.save_pretrained(folder / name, safe_serialization=safe_serialization, variant=variant)
        index_path = folder / self.config_name
        index = json.loads(index_path.read_text())
        pipeline_file = f"pipeline_{type(self).__module__.rsplit('.', 1)[-1]}"
        component_file = type(weights).__module__.rsplit(".", 1)[-1]
        index["_class_name"] = [pipeline_file, type(self).__name__]
        index[name] = [component_file, type(weights).__name__]
        _import_file(folder, pipeline_file, type(self))
        _import_file(folder / name, component_file, type(weights))
        index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        if push_to_hub:
            repo_id = hub_kwargs.pop("repo_id", folder.resolve().name)
            self.push_to_hub(repo_id, safe_serialization=safe_serialization, variant=variant, **hub_kwargs)
