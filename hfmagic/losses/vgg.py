"""ImageNet VGG feature extractor for perceptual losses, in plain torch (torchvision is not needed).

The network is torchvision's ``vgg*.features`` (the same ``features.N`` indices: for VGG19
``features.34`` is conv5_4), built only up to the deepest layer a loss asks for. The conv widths come
from the checkpoint's tensors, so any VGG with the right layer pattern loads, a tiny random one in
tests included. Weights come from (see :func:`load_vgg_weights`):

- a Hub id, ``timm/vgg19.tv_in1k`` by default: timm's copy of torchvision's ImageNet weights
  (``model.safetensors``, downloaded with ``hf_hub_download``: the HF cache, ``HF_HUB_OFFLINE`` and
  ``HF_ENDPOINT`` apply);
- a local folder holding ``model.safetensors``;
- a ``.safetensors`` file, or a ``.pth``/``.pt``/``.bin`` file read with ``torch.load(weights_only=True)``
  (nothing pickled is executed), in torchvision or timm key names.

Only the ``features.*`` tensors are used (timm's ``pre_logits.*``/``head.*`` and torchvision's
``classifier.*`` are ignored). Nothing is ever fetched from torchvision's download URLs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "DEFAULT_VGG_WEIGHTS",
    "VGG_TYPES",
    "VGGFeatureExtractor",
    "load_vgg_weights",
    "vgg_layer_names",
]

DEFAULT_VGG_WEIGHTS = "timm/vgg19.tv_in1k"
# The flag of examples/train_esrgan.py that takes a VGG folder or file (named in the offline error).
VGG_FLAG = "--vgg_model_name_or_path"

# Convolutions per stage (each stage ends with a 2x2 max-pool), as torchvision's configs A, B, D, E.
_STAGES = {"vgg11": (1, 1, 2, 2, 2), "vgg13": (2, 2, 2, 2, 2), "vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
VGG_TYPES = tuple(sorted([*_STAGES, *(f"{name}_bn" for name in _STAGES)]))
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_WEIGHT_FILE = "model.safetensors"
_PICKLE_SUFFIXES = (".pth", ".pt", ".bin")


def vgg_layer_names(vgg_type: str) -> list[str]:
    """Names of ``features[i]`` for ``vgg_type``, index by index, e.g. VGG19: ``["conv1_1", "relu1_1",
    "conv1_2", "relu1_2", "pool1", "conv2_1", ...]`` (37 entries; index 34 is ``"conv5_4"``); the
    ``_bn`` types have a ``bn<s>_<c>`` after each conv."""
    if vgg_type not in VGG_TYPES:
        raise ValueError(f"Unknown vgg_type={vgg_type!r}; choose one of {list(VGG_TYPES)}.")
    batch_norm = vgg_type.endswith("_bn")
    names = []
    for stage, num_convs in enumerate(_STAGES[vgg_type.removesuffix("_bn")], start=1):
        for conv in range(1, num_convs + 1):
            names += [f"conv{stage}_{conv}", *([f"bn{stage}_{conv}"] if batch_norm else []), f"relu{stage}_{conv}"]
        names.append(f"pool{stage}")
    return names


def _guess_vgg_type(conv_indices: set[int]) -> str | None:
    for vgg_type in VGG_TYPES:
        names = vgg_layer_names(vgg_type)
        if conv_indices == {i for i, name in enumerate(names) if name.startswith("conv")}:
            return vgg_type
    return None


def _looks_like_hub_id(text: str) -> bool:
    return bool(re.fullmatch(r"[\w.-]+/[\w.-]+", text)) and not text.startswith((".", "/")) and not text.lower().endswith(
        (".safetensors", *_PICKLE_SUFFIXES)
    )


def _read_file(path: Path) -> dict[str, torch.Tensor]:
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    if suffix in _PICKLE_SUFFIXES:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # weights_only refuses pickled code: say so, keep the cause chained
            raise ValueError(
                f"Could not read {path} with torch.load(weights_only=True) ({type(err).__name__}: {err}); "
                "pass a plain state dict of tensors (torchvision's vgg19-*.pth is one) or a .safetensors file."
            ) from err
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict of VGG tensors.")
        return state
    raise ValueError(f"{path} is not a .safetensors or {'/'.join(_PICKLE_SUFFIXES)} file of VGG weights.")


def _download(repo_id: str) -> Path:
    from huggingface_hub import constants, hf_hub_download

    try:
        return Path(hf_hub_download(repo_id, _WEIGHT_FILE))
    except Exception as err:  # offline and not cached, no such repo, no network: add what to do
        offline = " (HF_HUB_OFFLINE is set and it is not in the HF cache)" if constants.HF_HUB_OFFLINE else ""
        raise OSError(
            f"Could not get {_WEIGHT_FILE} of the Hub repo {repo_id!r}{offline} ({type(err).__name__}: {err}). "
            f"Pass a local folder holding {_WEIGHT_FILE}, or a .safetensors/.pth file of ImageNet VGG weights "
            f"(torchvision or timm key names) instead: pretrained=PATH, or {VGG_FLAG} PATH for the training script."
        ) from err


def load_vgg_weights(pretrained: str | os.PathLike = DEFAULT_VGG_WEIGHTS) -> dict[str, torch.Tensor]:
    """The ``features.*`` tensors of a VGG checkpoint, keyed ``"<index>.<weight|bias|running_mean|...>"``.

    Args:
        pretrained: a Hub id (``"timm/vgg19.tv_in1k"``; its ``model.safetensors`` is downloaded, or read
            from the HF cache), a local folder holding ``model.safetensors``, or a ``.safetensors`` /
            ``.pth`` file in torchvision or timm key names.
    Raises:
        OSError: a missing path, or a Hub id that cannot be downloaded (offline and not cached).
        ValueError: a file that is not a VGG state dict.
    """
    text = os.fspath(pretrained)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / _WEIGHT_FILE).is_file():
            raise FileNotFoundError(
                f"{path} has no {_WEIGHT_FILE}; pass the folder of timm's vgg19.tv_in1k (or another VGG saved as "
                f"{_WEIGHT_FILE}), or the weight file itself."
            )
        path = path / _WEIGHT_FILE
    elif not path.is_file():
        if not _looks_like_hub_id(text):
            raise FileNotFoundError(f"No VGG weights at {text!r}: no such file or folder (and not a Hub id like {DEFAULT_VGG_WEIGHTS!r}).")
        path = _download(text)
    state = _read_file(path)
    features = {key[len("features."):]: value for key, value in state.items() if key.startswith("features.")}
    if not features:
        sample = sorted(state)[:5]
        raise ValueError(
            f"{path} has no features.<index>.* tensors (keys start {sample}); expected an ImageNet VGG checkpoint "
            "in torchvision or timm key names (features.0.weight, features.0.bias, ...)."
        )
    return features


class VGGFeatureExtractor(nn.Module):
    """torchvision's ``vgg_type.features[:num_layers]``, frozen, in eval mode, weights from ``state``.

    Args:
        state: ``features.*`` tensors without the prefix (:func:`load_vgg_weights`); conv ``i`` is
            ``state[f"{i}.weight"]`` (out, in, 3, 3) and ``state[f"{i}.bias"]``.
        vgg_type: one of :data:`VGG_TYPES` (the layer pattern the tensors must follow).
        num_layers: how many ``features`` layers to build (deepest wanted index + 1).
        use_input_norm: subtract ImageNet's mean and divide by its std first (input in [0, 1]).
        source: where the tensors came from, for error messages.
    """

    def __init__(
        self,
        state: dict[str, torch.Tensor],
        vgg_type: str = "vgg19",
        num_layers: int | None = None,
        use_input_norm: bool = True,
        source: str = "the VGG weights",
    ) -> None:
        super().__init__()
        names = vgg_layer_names(vgg_type)
        num_layers = len(names) if num_layers is None else num_layers
        if not 1 <= num_layers <= len(names):
            raise ValueError(f"num_layers={num_layers} is outside 1..{len(names)} for {vgg_type}.")
        self._check_pattern(state, names, vgg_type, source)
        self.vgg_type = vgg_type
        self.use_input_norm = use_input_norm
        layers, weights, channels = [], {}, 3
        for index, name in enumerate(names[:num_layers]):
            if name.startswith("conv"):
                weight, bias = self._conv_tensors(state, index, name, channels, vgg_type, source)
                channels = weight.shape[0]
                layers.append(nn.Conv2d(weight.shape[1], channels, 3, padding=1))
                weights.update({f"{index}.weight": weight, f"{index}.bias": bias})
            elif name.startswith("bn"):
                layers.append(nn.BatchNorm2d(channels))
                for field in ("weight", "bias", "running_mean", "running_var"):
                    tensor = state.get(f"{index}.{field}")
                    if tensor is None or tuple(tensor.shape) != (channels,):
                        raise ValueError(
                            f"{source}: features.{index}.{field} ({name}) should have shape ({channels},), "
                            f"got {None if tensor is None else tuple(tensor.shape)}."
                        )
                    weights[f"{index}.{field}"] = tensor
            elif name.startswith("relu"):
                layers.append(nn.ReLU())
            else:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.features = nn.Sequential(*layers)
        missing, unexpected = self.features.load_state_dict(weights, strict=False)
        if unexpected or [key for key in missing if not key.endswith("num_batches_tracked")]:
            raise RuntimeError(f"VGG build error: missing {missing}, unexpected {unexpected}")  # a bug, not a user error
        # ImageNet statistics for inputs in [0, 1]; not persistent: nothing of the VGG goes into checkpoints
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def _check_pattern(state: dict[str, torch.Tensor], names: list[str], vgg_type: str, source: str) -> None:
        indices = set()
        for key in state:
            head = key.split(".", 1)[0]
            if not head.isdigit():
                raise ValueError(f"{source}: features.{key} is not a torchvision VGG key (features.<index>.<name>).")
            indices.add(int(head))
        conv_indices = {int(key.split(".")[0]) for key, value in state.items() if key.endswith(".weight") and value.ndim == 4}
        wrong = sorted(i for i in indices if i >= len(names) or not names[i].startswith(("conv", "bn")))
        if wrong:
            guess = _guess_vgg_type(conv_indices)
            hint = f"; it looks like a {guess} checkpoint: pass vgg_type={guess!r}" if guess else ""
            where = ", ".join(f"features.{i} ({names[i] if i < len(names) else 'beyond the network'})" for i in wrong[:4])
            raise ValueError(
                f"{source} does not follow {vgg_type}'s layer pattern: it has weights at {where}, where {vgg_type} "
                f"has no weights (its convs are at {[i for i, n in enumerate(names) if n.startswith('conv')]}){hint}."
            )

    @staticmethod
    def _conv_tensors(state, index: int, name: str, in_channels: int, vgg_type: str, source: str):
        weight, bias = state.get(f"{index}.weight"), state.get(f"{index}.bias")
        if weight is None or bias is None:
            guess = _guess_vgg_type({int(k.split(".")[0]) for k, v in state.items() if k.endswith(".weight") and v.ndim == 4})
            hint = f"; it looks like a {guess} checkpoint: pass vgg_type={guess!r}" if guess and guess != vgg_type else ""
            raise ValueError(
                f"{source} has no features.{index}.weight/bias, which {vgg_type} needs for {name}{hint} "
                f"(a VGG checkpoint in torchvision or timm key names is expected)."
            )
        if weight.ndim != 4 or tuple(weight.shape[1:]) != (in_channels, 3, 3) or tuple(bias.shape) != (weight.shape[0],):
            raise ValueError(
                f"{source}: features.{index} ({name} of {vgg_type}) should be a 3x3 conv from {in_channels} channels "
                f"(weight (out, {in_channels}, 3, 3), bias (out,)); got weight {tuple(weight.shape)}, bias {tuple(bias.shape)}."
            )
        return weight, bias

    def train(self, mode: bool = True) -> VGGFeatureExtractor:
        """Always eval: the loss network's batch norms (``_bn`` types) keep their ImageNet statistics."""
        return super().train(False)

    def forward(self, x: torch.Tensor, layers: set[str] | list[str]) -> dict[str, torch.Tensor]:
        """x (N, 3, H, W) in [0, 1] -> ``{index: features[:index + 1](x)}`` for each index in ``layers``
        (strings such as ``"34"``; a conv index gives the output before its ReLU)."""
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        wanted = {int(layer) for layer in layers}
        deepest = max(wanted)
        if deepest >= len(self.features):
            raise ValueError(f"Layer {deepest} was asked for, but this extractor was built up to features[{len(self.features) - 1}].")
        output = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in wanted:
                output[str(index)] = x
            if index == deepest:
                break
        return output
