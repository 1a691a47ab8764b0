"""Model cards and Hub helpers: what ``push_to_hub`` uploads besides the weights.

Every hfmagic model's ``save_pretrained`` writes a ``README.md`` card into the folder when it has
none (a card the user wrote is never overwritten), and its ``push_to_hub`` uploads
``config.json`` + ``model.safetensors`` + that card in one commit. The card's YAML carries
``library_name: hfmagic``, tags, the ``pipeline_tag`` (``image-to-image`` for super-resolution,
``unconditional-image-generation`` for GANs) and, when metrics are known, a ``model-index``.

A GAN repo holds the generator at its root and the discriminator under ``discriminator/``::

    save_gan_pretrained(generator, discriminator, "out")          # or push_gan_to_hub(..., "me/dcgan")
    DCGANGenerator.from_pretrained("out")
    DCGANDiscriminator.from_pretrained("out", subfolder="discriminator")

The same layout holds a super-resolution GAN (SRGAN, ESRGAN): the SR generator at the root, its
stand-alone discriminator (a config with ``hub_kind = "discriminator"``, e.g. ModifiedVGG) under
``discriminator/``. A stand-alone discriminator's card reads what it scores from its config class:
``input_range`` (e.g. ``(0.0, 1.0)``), ``card_input_shape`` / ``card_output_shape`` (with
``{field}`` filled from the config) and ``example_image_size``.

A metric is a dict ``{"dataset": "Set5", "name": "PSNR", "value": 30.22, "type": "psnr",
"split": "test"}``, optionally with ``"config"`` (e.g. ``"RGB, crop_border=4"``), ``"args"``,
``"dataset_id"`` (the Hub id the model-index names as the dataset's ``type``, e.g.
``"eugenesiow/Set5"``, or ``"imagefolder"`` for a local folder, whose name then becomes the
``config``; default: ``"dataset"``) and
``"bicubic"`` (the same metric of plain bicubic upscaling on the same images).

The ``model-index`` holds the model's own results only: the Hub shows them as this model's scores
(leaderboards, the evaluation widget), so the bicubic baseline is not a result there; it appears in
the card's "## Evaluation" table, in a ``bicubic`` column next to the model's value, with the gain.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData
from huggingface_hub.errors import EntryNotFoundError
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel


__all__ = [
    "model_card",
    "write_model_card",
    "add_metrics_to_card",
    "save_gan_pretrained",
    "push_folder_to_hub",
    "push_model_to_hub",
    "explain_network_errors",
    "push_gan_to_hub",
    "save_pretrained_with_card",
]

CARD_NAME = "README.md"
DISCRIMINATOR_SUBFOLDER = "discriminator"

# What each kind of model is on the Hub: (tag, pipeline_tag, task name in the model-index).
_KINDS = {
    "super-resolution": ("super-resolution", "image-to-image", "Image Super-Resolution"),
    "gan": ("gan", "unconditional-image-generation", "Unconditional Image Generation"),
    # a stand-alone discriminator scores images: no Hub task fits, so no pipeline_tag and no results
    "discriminator": ("discriminator", None, None),
}
_METRIC_KEYS = ("dataset", "name", "value")


# ------------------------------------------------------------------------------ building cards
def _kind(config: PretrainedConfig) -> str:
    """The config class's ``hub_kind`` (set by hfmagic's config base classes), a key of ``_KINDS``."""
    kind = getattr(type(config), "hub_kind", None)
    if kind not in _KINDS:
        raise ValueError(
            f"No model card template for {type(config).__name__} (model_type={config.model_type!r}): hfmagic "
            f"writes cards for configs whose class attribute hub_kind is one of {sorted(_KINDS)} "
            "(SuperResolutionConfig and the GAN configs set it)."
        )
    return kind


def _config_of(model: PreTrainedModel | PretrainedConfig) -> PretrainedConfig:
    if isinstance(model, PreTrainedModel):
        return model.config
    if isinstance(model, PretrainedConfig):
        return model
    raise TypeError(f"Expected an hfmagic model or its config, got {type(model).__name__}.")


def _class_name(model: PreTrainedModel | PretrainedConfig, config: PretrainedConfig) -> str:
    if isinstance(model, PreTrainedModel):
        return type(model).__name__
    architectures = getattr(config, "architectures", None) or []
    return architectures[0] if architectures else type(config).__name__.removesuffix("Config")


def _eval_results(metrics: list[dict], task_type: str | None, task_name: str | None) -> list[EvalResult]:
    if task_type is None:
        raise ValueError(
            "A discriminator's card holds no evaluation results (it scores images; no Hub task fits): put the "
            "GAN's metrics on its generator's card."
        )
    if not isinstance(metrics, (list, tuple)):
        raise ValueError(f"metrics must be a list of dicts such as {{'dataset': 'Set5', 'name': 'PSNR', 'value': 30.2}}, got {type(metrics).__name__}.")
    results = []
    for metric in metrics:
        missing = [key for key in _METRIC_KEYS if not isinstance(metric, dict) or metric.get(key) is None]
        if missing:
            raise ValueError(
                f"Metric {metric!r} lacks {missing}: each metric needs 'dataset', 'name' and 'value' "
                "(and optionally 'type', 'split', 'config', 'args'), e.g. "
                "{'dataset': 'Set5', 'name': 'PSNR', 'value': 30.22, 'type': 'psnr', 'split': 'test'}."
            )
        try:
            value = float(metric["value"])
        except (TypeError, ValueError):
            raise ValueError(f"Metric {metric!r} has a non-numeric value; pass a number such as 30.22.") from None
        dataset_type = str(metric.get("dataset_id") or metric["dataset"])
        results.append(
            EvalResult(
                task_type=task_type,
                task_name=task_name,
                dataset_type=dataset_type,
                dataset_name=str(metric["dataset"]),
                # huggingface_hub groups results by (type, config, split): local folders, all of type
                # "imagefolder", are told apart by their name as the config
                dataset_config=metric.get("dataset_config") or (str(metric["dataset"]) if dataset_type == "imagefolder" else None),
                dataset_split=metric.get("split"),
                metric_type=str(metric.get("type") or str(metric["name"]).lower()),
                metric_name=str(metric["name"]),
                metric_value=value,
                metric_config=metric.get("config"),
                metric_args=metric.get("args"),
            )
        )
    return results


def _details(
    kind: str, class_name: str, config: PretrainedConfig, num_parameters: int | None, license: str | None = None
) -> list[str]:
    lines = [f"- **Architecture:** `{class_name}` (`model_type: {config.model_type}`)"]
    mmagic_module = getattr(type(config), "mmagic_module", None)  # MMagic's module with the same weights
    if mmagic_module:
        lines.append(
            f"- **Same layers, parameter names and outputs as** MMagic's `{mmagic_module}` "
            "(its checkpoints convert with `hfmagic convert`)"
        )
    if kind == "super-resolution":
        scale = config.upscale_factor
        lines.append(f"- **Task:** x{scale} single-image super-resolution")
        lines.append(
            f"- **Input:** `pixel_values` (N, {config.in_channels}, H, W), RGB float in [0, 1]; "
            f"**output:** `reconstruction` (N, {config.out_channels}, {scale}H, {scale}W)"
        )
    elif kind == "discriminator":
        cls = type(config)
        low, high = cls.input_range
        lines.append("- **Task:** scoring images as real or fake, the adversarial term of GAN training")
        lines.append(
            f"- **Input:** `pixel_values` {cls.card_input_shape.format(**config.to_dict())}, float in "
            f"[{low:g}, {high:g}]; **output:** real/fake logits {cls.card_output_shape.format(**config.to_dict())} "
            "(no sigmoid)"
        )
    else:
        size = config.image_size
        lines.append("- **Task:** unconditional image generation")
        lines.append(
            f"- **Output:** (N, {config.num_channels}, {size}, {size}) images in [-1, 1] from "
            f"{config.noise_size}-d standard normal noise"
        )
    if num_parameters is not None:
        lines.append(f"- **Parameters:** {num_parameters:,}")
    if license:
        lines.append(f"- **License:** `{license}`")
    return lines


def _title(kind: str, class_name: str, config: PretrainedConfig, classes: dict, datasets, training_data) -> str:
    """A descriptive title: architecture, scale or size, and the training data when known, e.g.
    "MSRResNet x4 trained on DIV2K" or "DCGAN 64x64 trained on pcuenq/lsun-bedrooms"."""
    if kind == "super-resolution":
        title = f"{class_name} x{config.upscale_factor}"
    elif kind == "discriminator":
        title = class_name
    else:
        is_generator = class_name != classes.get("discriminator")
        name = class_name.removesuffix("Generator") if is_generator else class_name
        title = f"{name or class_name} {config.image_size}x{config.image_size}"
    data = training_data or ", ".join(datasets or [])
    if data:
        return f"{title} trained on {data}"
    return f"{title} {_TITLE_SUFFIX[kind]}"


def _discriminator_usage(config: PretrainedConfig, class_name: str, repo_id: str, subfolder: str | None) -> str:
    """Loading and running a stand-alone discriminator (``hub_kind = "discriminator"``), on images in
    its config's ``input_range``."""
    cls = type(config)
    low, high = cls.input_range
    size, channels = cls.example_image_size, config.in_channels
    images = "torch.rand" if (low, high) == (0.0, 1.0) else f"{low:g} + {high - low:g} * torch.rand"
    where = f'"{repo_id}", subfolder="{subfolder}"' if subfolder else f'"{repo_id}"'
    return (
        f'discriminator = {class_name}.from_pretrained({where})\n'
        f"images = {images}(2, {channels}, {size}, {size})   # float in [{low:g}, {high:g}]\n"
        "with torch.no_grad():\n"
        f"    logits = discriminator(images)   # {cls.card_output_shape.format(**config.to_dict())}, real/fake logits\n"
    )


_TITLE_SUFFIX = {"super-resolution": "super-resolution model", "gan": "GAN", "discriminator": "GAN discriminator"}


def _usage(
    kind: str,
    class_name: str,
    classes: dict,
    repo_id: str,
    discriminator_subfolder: str | None,
    config: PretrainedConfig | None = None,
    discriminator: tuple[PretrainedConfig, str] | None = None,
) -> str:
    """The card's usage snippet; ``classes`` is the GAN config's ``card_classes`` (the names of its
    discriminator and pipeline classes); ``discriminator`` the (config, class name) of a stand-alone
    discriminator saved under ``discriminator_subfolder`` next to a super-resolution generator."""
    if kind == "discriminator":
        return (
            "```python\nimport torch\n"
            f"from hfmagic import {class_name}\n\n" + _discriminator_usage(config, class_name, repo_id, None) + "```"
        )
    if kind == "super-resolution":
        extra = ""
        if discriminator_subfolder and discriminator is not None:
            d_config, d_name = discriminator
            extra = (
                "\n# the discriminator, e.g. to resume adversarial (SRGAN/ESRGAN) training:\n"
                f"from hfmagic import {d_name}\n\n"
                + _discriminator_usage(d_config, d_name, repo_id, discriminator_subfolder)
            )
        return (
            "```python\n"
            "import torch\n"
            f"from hfmagic import {class_name}, SuperResolutionPipeline\n\n"
            f'model = {class_name}.from_pretrained("{repo_id}")\n'
            "with torch.no_grad():\n"
            "    sr = model(torch.rand(1, 3, 32, 32)).reconstruction   # RGB in [0, 1]\n\n"
            "# or on images, tiled for large photos:\n"
            f'pipe = SuperResolutionPipeline.from_pretrained("{repo_id}")\n'
            'pipe("photo.png", tile_size=256).save("photo_sr.png")   # one image in, one PIL image out\n'
            f"{extra}"
            "```\n\n"
            f"From the command line: `hfmagic upscale photo.png --model {repo_id} --output out/`."
        )
    discriminator, pipeline = classes.get("discriminator", "Discriminator"), classes.get("pipeline", "Pipeline")
    if class_name == discriminator:
        return (
            "```python\n"
            f"from hfmagic import {discriminator}\n\n"
            f'discriminator = {discriminator}.from_pretrained("{repo_id}")\n'
            "logits = discriminator(images)   # images (N, C, S, S) in [-1, 1] -> (N, 1)\n"
            "```"
        )
    text = (
        "```python\n"
        "import torch\n"
        f"from hfmagic import {class_name}, {pipeline}\n\n"
        f'generator = {class_name}.from_pretrained("{repo_id}")\n'
        "images = generator(num_batches=4, generator=torch.Generator().manual_seed(0))   # in [-1, 1]\n\n"
        "# or as PIL images:\n"
        f'pil_images = {pipeline}.from_pretrained("{repo_id}")(num_images=4, seed=0)\n'
    )
    if discriminator_subfolder:
        text += (
            "\n# the discriminator, e.g. to resume adversarial training:\n"
            f"from hfmagic import {discriminator}\n"
            f'discriminator = {discriminator}.from_pretrained("{repo_id}", subfolder="{discriminator_subfolder}")\n'
        )
    return text + "```\n\n" + f"From the command line: `hfmagic sample --model {repo_id} --num-images 16 --output out/ --grid`."


def _results_table(metrics: list[dict]) -> str:
    """The card's results as a Markdown table; with ``bicubic`` and ``gain`` (model - bicubic)
    columns when any metric has a bicubic baseline."""
    if not any(m.get("bicubic") is not None for m in metrics):
        rows = ["| dataset | split | metric | value | setting |", "|---|---|---|---|---|"]
        for m in metrics:
            rows.append(f"| {m['dataset']} | {m.get('split') or ''} | {m['name']} | {float(m['value']):.4f} | {m.get('config') or ''} |")
        return "\n".join(rows)
    rows = ["| dataset | split | metric | value | bicubic | gain | setting |", "|---|---|---|---|---|---|---|"]
    for m in metrics:
        value, baseline = float(m["value"]), m.get("bicubic")
        bicubic, gain = ("", "") if baseline is None else (f"{float(baseline):.4f}", f"{value - float(baseline):+.4f}")
        rows.append(f"| {m['dataset']} | {m.get('split') or ''} | {m['name']} | {value:.4f} | {bicubic} | {gain} | {m.get('config') or ''} |")
    return "\n".join(rows)


_BICUBIC_NOTE = (
    "*bicubic*: plain MATLAB-bicubic upscaling of the same low-resolution images, scored the same way; "
    "*gain*: the model's value minus bicubic's. The metadata (model-index) lists the model's values only."
)


def _table_baselines(text: str) -> dict[tuple, float]:
    """The bicubic values of a card's "## Evaluation" table written by :func:`_results_table`, keyed
    by (dataset, split, metric name, setting): they are not in the model-index, so a merge reads them here."""
    section = re.search(r"^## Evaluation[ \t]*\n+((?:\|.*(?:\n|$))+)", text, flags=re.M)
    if not section:
        return {}
    lines = section.group(1).strip().splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    if "bicubic" not in header:
        return {}
    baselines = {}
    for line in lines[2:]:
        row = dict(zip(header, (cell.strip() for cell in line.strip().strip("|").split("|"))))
        with contextlib.suppress(KeyError, ValueError):
            key = (row["dataset"], row["split"] or None, row["metric"], row["setting"] or None)
            baselines[key] = float(row["bicubic"])
    return baselines


def model_card(
    model: PreTrainedModel | PretrainedConfig,
    *,
    metrics: list[dict] | None = None,
    datasets: list[str] | None = None,
    sample_image: str | None = None,
    extra_text: str = "",
    repo_id: str | None = None,
    tags: list[str] | None = None,
    license: str | None = None,
    discriminator_subfolder: str | None = None,
    training_data: str | None = None,
    load_path: str | None = None,
    discriminator: PreTrainedModel | PretrainedConfig | None = None,
) -> ModelCard:
    """Build the model card of an hfmagic model (or of its config).

    Args:
        model: a super-resolution or DCGAN model, or its config.
        metrics: results for the ``model-index``, e.g. ``[{"dataset": "Set5", "name": "PSNR",
            "value": 30.22, "type": "psnr", "split": "test", "config": "RGB, crop_border=4"}]``.
        datasets: Hub ids of the training data, listed in the YAML ``datasets`` (and named in the title).
        sample_image: path (relative to the repo) or URL of an image shown in the card.
        extra_text: Markdown appended at the end (training recipe, license notes, ...).
        repo_id: the repo the usage snippet loads from.
        tags: extra tags besides ``hfmagic``, the kind, the architecture and ``mmagic``.
        license: a Hub license id (``apache-2.0``, ...) of the weights, when known (left out otherwise:
            hfmagic's own Apache-2.0 covers its code, not weights of unknown origin).
        discriminator_subfolder: for a GAN repo, where the discriminator lives (mentioned in the card).
        training_data: what the model was trained on, for the title when it is not a Hub dataset
            of ``datasets`` (e.g. a local folder's name).
        load_path: where the usage snippet loads from without ``repo_id`` (``write_model_card``
            passes the folder); without either, a marked placeholder.
        discriminator: with ``discriminator_subfolder``, the discriminator saved there (or its
            config), which the snippet of a super-resolution GAN's card loads (``save_gan_pretrained``
            passes it).
    Returns:
        a ``huggingface_hub.ModelCard``; ``card.data`` holds the YAML metadata.
    """
    config = _config_of(model)
    kind = _kind(config)
    kind_tag, pipeline_tag, task_name = _KINDS[kind]
    class_name = _class_name(model, config)
    shown_id = repo_id or load_path or "path/to/model-folder-or-repo-id"
    card_tags = ["hfmagic", kind_tag, config.model_type, "mmagic"] + (["gan"] if kind == "discriminator" else [])
    card_tags += [t for t in (tags or []) if t not in card_tags]
    eval_results = _eval_results(metrics, pipeline_tag, task_name) if metrics else None
    data = ModelCardData(
        library_name="hfmagic",
        pipeline_tag=pipeline_tag,
        tags=card_tags,
        datasets=list(datasets) if datasets else None,
        license=license,
        model_name=(repo_id.split("/")[-1] if repo_id else class_name) if eval_results else None,
        eval_results=eval_results,
    )
    num_parameters = sum(p.numel() for p in model.parameters()) if isinstance(model, PreTrainedModel) else None
    classes = getattr(type(config), "card_classes", {})
    title = _title(kind, class_name, config, classes, datasets, training_data)
    what = "super-resolution model" if kind == "super-resolution" else "GAN generator"
    if class_name == classes.get("discriminator") or kind == "discriminator":
        what = "GAN discriminator"
    parts = [
        f"# {title}",
        f"A {what} (`{class_name}`) for **hfmagic**, MMagic's models as "
        "Hugging Face `PreTrainedModel`s (`from_pretrained`, `push_to_hub`, Accelerate training).",
        "## Model details\n\n" + "\n".join(_details(kind, class_name, config, num_parameters, license)),
    ]
    if discriminator_subfolder:
        parts.append(
            f"This repo holds the generator at its root and the discriminator under `{discriminator_subfolder}/`."
        )
    if sample_image:
        parts.append(f"![samples]({sample_image})")
    d_info = None
    if discriminator is not None and getattr(type(_config_of(discriminator)), "hub_kind", None) == "discriminator":
        d_info = (_config_of(discriminator), _class_name(discriminator, _config_of(discriminator)))
    parts.append(
        "## How to use\n\n" + _usage(kind, class_name, classes, shown_id, discriminator_subfolder, config, d_info)
    )
    if datasets:
        parts.append("## Training data\n\n" + "\n".join(f"- [{d}](https://huggingface.co/datasets/{d})" for d in datasets))
    if metrics:
        table = _results_table(metrics)
        parts.append("## Evaluation\n\n" + table + ("\n\n" + _BICUBIC_NOTE if "| bicubic |" in table else ""))
    if extra_text:
        parts.append(extra_text.strip())
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(parts) + "\n")


def write_model_card(folder: str | os.PathLike, model: PreTrainedModel | PretrainedConfig, **card_kwargs) -> Path:
    """Write ``model_card(model, **card_kwargs)`` to ``folder/README.md`` (replacing any card there).

    A ``sample_image`` that is a local file outside ``folder`` is copied into it, so the card's
    link works once the folder is uploaded. Returns the card's path.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sample = card_kwargs.get("sample_image")
    if sample and os.path.isfile(sample):
        sample_path = Path(sample).resolve()
        if folder.resolve() not in sample_path.parents:
            shutil.copyfile(sample_path, folder / sample_path.name)
            card_kwargs["sample_image"] = sample_path.name
        else:
            card_kwargs["sample_image"] = sample_path.relative_to(folder.resolve()).as_posix()
    path = folder / CARD_NAME
    if not card_kwargs.get("repo_id"):  # the snippet loads the folder (a path of this machine, as given)
        card_kwargs.setdefault("load_path", folder.as_posix())
    model_card(model, **card_kwargs).save(path)
    return path


def _result_key(result: EvalResult) -> tuple:
    # the name too: local folders share the dataset type "imagefolder"
    return (result.task_type, result.dataset_type, result.dataset_name, result.dataset_config, result.dataset_split,
            result.metric_type, result.metric_config)


def _with_results_table(text: str, results: list[EvalResult], new_metrics: list[dict] = ()) -> str:
    """The card body with its "## Evaluation" table showing ``results`` (the section hfmagic writes;
    added at the end when the card has no such heading; prose under a heading of the author's own,
    without a table, is left alone). Bicubic baselines come from ``new_metrics``, else from the old table."""
    baselines = _table_baselines(text)
    for m in new_metrics:
        key = (str(m["dataset"]), m.get("split"), str(m["name"]), m.get("config"))
        if m.get("bicubic") is not None:
            baselines[key] = float(m["bicubic"])
        else:  # a new value without a baseline: an old baseline may not belong to it
            baselines.pop(key, None)
    table = _results_table(
        [
            {"dataset": r.dataset_name, "split": r.dataset_split, "name": r.metric_name, "value": r.metric_value,
             "config": r.metric_config,
             "bicubic": baselines.get((r.dataset_name, r.dataset_split, r.metric_name, r.metric_config))}
            for r in results
        ]
    )
    note = "\n" + _BICUBIC_NOTE + "\n" if "| bicubic |" in table and _BICUBIC_NOTE not in text else ""
    section = re.search(r"^## Evaluation[ \t]*\n+((?:\|.*(?:\n|$))+)", text, flags=re.M)
    if section:
        return text[: section.start(1)] + table + "\n" + note + text[section.end(1):]
    if re.search(r"^## Evaluation", text, flags=re.M):
        return text
    return text.rstrip("\n") + "\n\n## Evaluation\n\n" + table + "\n" + note


def add_metrics_to_card(
    folder: str | os.PathLike, metrics: list[dict], *, tags: list[str] | None = None, model_name: str | None = None
) -> None:
    """Merge ``metrics`` into the ``model-index`` of ``folder/README.md`` and its "## Evaluation" table.

    A result for the same (dataset, split, metric type, config) replaces the old value; others are
    appended. Without a card, one is created from ``folder/config.json``. ``tags`` are added too.
    ``model_name`` names the model-index entry when the card has none (default: the folder's name).
    """
    folder = Path(folder)
    path = folder / CARD_NAME
    if not path.is_file():
        config_path = folder / "config.json"
        if not config_path.is_file():
            raise FileNotFoundError(
                f"{folder} has neither {CARD_NAME} nor config.json: save the model there first "
                "(model.save_pretrained(folder)), then add metrics."
            )
        write_model_card(folder, AutoConfig.from_pretrained(folder), metrics=metrics, tags=tags)
        return
    card = ModelCard.load(path)
    pipeline_tag = card.data.get("pipeline_tag")
    if not pipeline_tag:  # a hand-written card: the folder's config says what the model does
        if not (folder / "config.json").is_file():
            raise ValueError(
                f"{path} has no pipeline_tag and {folder} no config.json, so the task of the results is unknown: "
                "add `pipeline_tag: image-to-image` (or unconditional-image-generation) to the card's YAML."
            )
        pipeline_tag = _KINDS[_kind(AutoConfig.from_pretrained(folder))][1]
    task_name = next((name for _, tag, name in _KINDS.values() if tag == pipeline_tag), pipeline_tag)
    new = _eval_results(metrics, pipeline_tag, task_name)
    merged = {_result_key(r): r for r in (card.data.eval_results or [])}
    merged.update({_result_key(r): r for r in new})
    card.data.eval_results = list(merged.values())
    if not card.data.model_name:
        card.data.model_name = model_name or folder.resolve().name
    card.text = _with_results_table(card.text, card.data.eval_results, metrics)
    card.save(path)
    if tags:
        _add_tags(folder, tags)


def _add_tags(folder: Path, tags: list[str]) -> None:
    card = ModelCard.load(folder / CARD_NAME)
    card.data.tags = list(card.data.tags or []) + [t for t in tags if t not in (card.data.tags or [])]
    card.save(folder / CARD_NAME)


# ------------------------------------------------------------------------------ saving
def _saves_on_this_rank(model: PreTrainedModel, is_main_process: bool) -> bool:
    should_save = getattr(model, "should_save_on_this_rank", None)  # also False off rank 0 under torch.distributed
    return should_save(is_main_process) if should_save is not None else is_main_process


def save_pretrained_with_card(
    model: PreTrainedModel,
    save: Callable[..., Any],
    save_directory: str | os.PathLike,
    *args,
    **kwargs,
) -> None:
    """What hfmagic models' ``save_pretrained`` does: transformers' ``save`` (the parent method),
    then a card when ``save_directory`` has no ``README.md`` (main process only), with the card
    fields given (``metrics``, ``datasets``, ``sample_image``, ``extra_text``, ``license``, ``tags``);
    into an existing card ``metrics`` and ``tags`` are merged, the other fields are refused.

    With ``push_to_hub=True`` the folder is then uploaded with one commit, card included
    (transformers would replace the card with its own generic one).
    """
    push = kwargs.pop("push_to_hub", False)
    hub_kwargs = {key: kwargs.pop(key) for key in ("repo_id", "commit_message", "create_pr", "private", "revision") if key in kwargs}
    card_kwargs = {key: kwargs.pop(key) for key in _CARD_FIELDS if key in kwargs}  # transformers would drop them
    card = Path(save_directory) / CARD_NAME
    if card.exists() and set(card_kwargs) - {"metrics", "tags"}:
        raise ValueError(
            f"{card} already exists, so {sorted(set(card_kwargs) - {'metrics', 'tags'})} cannot go into a new card "
            "(metrics and tags are merged into an existing one): delete the card first, or write it with "
            "hfmagic.hub.write_model_card(folder, model, ...)."
        )
    is_main_process = args[0] if args else kwargs.get("is_main_process", True)
    save(save_directory, *args, **kwargs)
    if not _saves_on_this_rank(model, is_main_process):
        return
    if not card.exists():
        write_model_card(save_directory, model, repo_id=hub_kwargs.get("repo_id"), **card_kwargs)
    elif card_kwargs:
        _merge_into_card(Path(save_directory), card_kwargs.get("metrics"), card_kwargs.get("tags"), hub_kwargs.get("repo_id"))
    if push:
        repo_id = hub_kwargs.pop("repo_id", None) or Path(save_directory).resolve().name
        push_folder_to_hub(save_directory, repo_id, token=kwargs.get("token"), **hub_kwargs)


def save_gan_pretrained(
    generator: PreTrainedModel,
    discriminator: PreTrainedModel,
    save_directory: str | os.PathLike,
    *,
    is_main_process: bool = True,
    **card_kwargs,
) -> None:
    """Save a GAN as one repo folder: the generator at the root, the discriminator under
    ``discriminator/``, and a card ``README.md`` at the root.

    ``DCGANGenerator.from_pretrained(save_directory)`` and
    ``DCGANDiscriminator.from_pretrained(save_directory, subfolder="discriminator")`` load them back.
    An existing root ``README.md`` is kept (``metrics`` are merged into it). ``card_kwargs`` go to
    :func:`model_card` (``metrics``, ``datasets``, ``sample_image``, ``extra_text``, ``repo_id``, ...).
    """
    for name, net in (("generator", generator), ("discriminator", discriminator)):
        if not isinstance(net, PreTrainedModel):
            raise TypeError(f"{name} must be an hfmagic PreTrainedModel (the GAN's {name} class), got {type(net).__name__}.")
    g_cfg, d_cfg = generator.config, discriminator.config
    for field in ("image_size", "num_channels"):
        if getattr(g_cfg, field, None) != getattr(d_cfg, field, None):
            raise ValueError(
                f"generator and discriminator disagree on {field} ({getattr(g_cfg, field, None)} vs "
                f"{getattr(d_cfg, field, None)}): they must come from the same config."
            )
    # a super-resolution GAN: the discriminator scores the generator's output
    g_out, d_in = getattr(g_cfg, "out_channels", None), getattr(d_cfg, "in_channels", None)
    if g_out is not None and d_in is not None and g_out != d_in:
        raise ValueError(
            f"the generator draws {g_out}-channel images but the discriminator scores {d_in}-channel ones "
            "(out_channels vs in_channels): build them for the same images."
        )
    save_directory = Path(save_directory)
    # transformers' own save_pretrained (no per-network card): the one card goes at the root, below.
    PreTrainedModel.save_pretrained(generator, save_directory, is_main_process=is_main_process)
    PreTrainedModel.save_pretrained(discriminator, save_directory / DISCRIMINATOR_SUBFOLDER, is_main_process=is_main_process)
    if not _saves_on_this_rank(generator, is_main_process):
        return
    if (save_directory / CARD_NAME).exists():
        _merge_into_card(save_directory, card_kwargs.get("metrics"), card_kwargs.get("tags"), card_kwargs.get("repo_id"))
    else:
        write_model_card(
            save_directory, generator, discriminator_subfolder=DISCRIMINATOR_SUBFOLDER, discriminator=discriminator, **card_kwargs
        )


# ------------------------------------------------------------------------------ pushing
def _is_network_error(error: BaseException) -> bool:
    """The Hub could not be reached (not: the Hub answered with an error, or a local file is missing)."""
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(error, HfHubHTTPError):  # an answer (401, 404...): its own message says what is wrong
        return False
    # OfflineModeIsEnabled is a ConnectionError; the HTTP client's transport errors (httpx's
    # ConnectError, timeouts) share a base class named TransportError
    return isinstance(error, (ConnectionError, TimeoutError)) or any(
        cls.__name__ == "TransportError" for cls in type(error).__mro__
    )


@contextlib.contextmanager
def explain_network_errors(action: str, fix: str):
    """Inside the block, a failure to reach the Hub becomes a ``ConnectionError`` that says what could
    not be done (``action``), which endpoint was tried, the client's error, and ``fix``. HTTP errors
    from the Hub itself (a bad token, a missing repo) pass through unchanged."""
    try:
        yield
    except Exception as error:
        if not _is_network_error(error):
            raise
        from huggingface_hub import constants

        offline = " (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else ""
        raise ConnectionError(
            f"Could not {action}: the Hub at {constants.ENDPOINT} is unreachable{offline} "
            f"({type(error).__name__}: {error}). {fix}"
        ) from error


def push_folder_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str | None = "Upload with hfmagic",
    revision: str | None = None,
    create_pr: bool = False,
) -> str:
    """Create ``repo_id`` if needed (``exist_ok``) and upload ``folder`` in one commit.

    Files already on the Hub with the same content are skipped by the client; files of the repo that
    are not in ``folder`` stay. Returns the repo URL.
    """
    folder = Path(folder)
    if not folder.is_dir() or not any(folder.iterdir()):
        raise FileNotFoundError(f"{folder} is not a folder with files to upload: save the model there first.")
    api = HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True)
    if revision is not None and not revision.startswith("refs/pr/"):
        api.create_branch(url.repo_id, branch=revision, exist_ok=True)
    api.upload_folder(
        repo_id=url.repo_id, folder_path=folder, commit_message=commit_message or "Upload with hfmagic",
        revision=revision, create_pr=create_pr,
    )
    return str(url)


_CARD_FIELDS = ("metrics", "datasets", "sample_image", "extra_text", "license", "tags", "training_data")


def _check_card_kwargs(card_kwargs: dict) -> None:
    unknown = sorted(set(card_kwargs) - set(_CARD_FIELDS))
    if unknown:
        raise TypeError(f"Unexpected argument(s) {unknown}: push helpers take the card fields {list(_CARD_FIELDS)}.")


def _fetch_remote_card(api: HfApi, repo_id: str, revision: str | None, folder: Path) -> bool:
    """Copy the repo's README.md into ``folder``; False when the repo has none."""
    try:
        path = api.hf_hub_download(repo_id, CARD_NAME, revision=revision)
    except EntryNotFoundError:
        return False
    shutil.copyfile(path, folder / CARD_NAME)
    return True


def _merge_into_card(folder: Path, metrics: list[dict] | None, tags: list[str] | None, repo_id: str | None) -> None:
    """Add new results and tags to an existing card, leaving everything else as its author wrote it
    (the model-index is named after ``repo_id`` when it had no name, not after a temporary folder)."""
    if metrics:
        add_metrics_to_card(folder, metrics, tags=tags, model_name=repo_id.split("/")[-1] if repo_id else None)
    elif tags:
        _add_tags(folder, tags)


def push_model_to_hub(
    model: PreTrainedModel,
    repo_id: str,
    *,
    commit_message: str | None = None,
    commit_description: str | None = None,
    private: bool | None = None,
    token: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    max_shard_size: int | str = "50GB",
    tags: list[str] | None = None,
    **card_kwargs,
):
    """What hfmagic models' ``push_to_hub`` does: one commit with ``config.json``,
    ``model.safetensors`` and the card.

    A repo that already has a ``README.md`` keeps it (``metrics`` and ``tags`` are merged into it);
    otherwise the card is ``model_card(model, repo_id=repo_id, tags=tags, **card_kwargs)``.
    Returns the ``huggingface_hub.CommitInfo``.
    """
    _check_card_kwargs(card_kwargs)
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    if revision is not None and not revision.startswith("refs/pr/"):
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hfmagic-push-") as tmp:
        folder = Path(tmp)
        # A card already on the Hub is kept (and completed); otherwise ours goes in before
        # save_pretrained, which then leaves it alone.
        has_card = _fetch_remote_card(api, repo_id, revision, folder)
        if not has_card:
            write_model_card(folder, model, repo_id=repo_id, tags=tags, **card_kwargs)
        model.save_pretrained(folder, max_shard_size=max_shard_size)
        if has_card:
            _merge_into_card(folder, card_kwargs.get("metrics"), tags, repo_id)
        return api.upload_folder(
            repo_id=repo_id, folder_path=folder, commit_message=commit_message or f"Upload {type(model).__name__}",
            commit_description=commit_description, revision=revision, create_pr=create_pr,
        )


def push_gan_to_hub(
    generator: PreTrainedModel,
    discriminator: PreTrainedModel,
    repo_id: str,
    *,
    commit_message: str = "Upload GAN with hfmagic",
    private: bool | None = None,
    token: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    **card_kwargs,
):
    """Push a GAN in the layout of :func:`save_gan_pretrained` (generator at the root, discriminator
    under ``discriminator/``, card at the root) in one commit. Returns the ``CommitInfo``."""
    _check_card_kwargs(card_kwargs)
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    if revision is not None and not revision.startswith("refs/pr/"):
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    card_kwargs.setdefault("repo_id", repo_id)
    with tempfile.TemporaryDirectory(prefix="hfmagic-push-") as tmp:
        folder = Path(tmp)
        _fetch_remote_card(api, repo_id, revision, folder)  # kept by save_gan_pretrained when present
        save_gan_pretrained(generator, discriminator, folder, **card_kwargs)
        return api.upload_folder(
            repo_id=repo_id, folder_path=folder, commit_message=commit_message, revision=revision, create_pr=create_pr
        )
