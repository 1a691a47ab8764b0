"""MMagic's own MSRResNet and EDSRNet modules, run from MMagic's source files, as the speed reference.

``import mmagic`` pulls in mmcv (compiled ops that do not build against every torch), so the four
files that define these networks (``archs/sr_backbone.py``, ``archs/upsample.py``,
``editors/srgan/sr_resnet.py``, ``editors/edsr/edsr_net.py``) are executed as they are, with
``make_layer`` / ``default_init_weights`` taken from MMagic's ``models/utils/model_utils.py`` and
three stand-ins that do not touch the forward pass: mmengine's ``BaseModule`` (an ``nn.Module``
holding ``init_cfg``), the ``MODELS`` registry decorator and mmengine's init functions (the weights
are replaced by hfmagic's anyway). The source is read from, in this order: the ``source`` argument
or ``$HFMAGIC_MMAGIC_SOURCE`` (a wheel, e.g. from ``pip download --no-deps mmagic==1.2.0``, or a
folder holding ``mmagic/``), or an installed ``mmagic`` package (found, not imported).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
import types
import zipfile
from pathlib import Path

import torch
from torch import nn

__all__ = ["find_mmagic_source", "load_mmagic_networks", "mmagic_twin"]

_FILES = {
    "mmagic.models.archs.sr_backbone": "mmagic/models/archs/sr_backbone.py",
    "mmagic.models.archs.upsample": "mmagic/models/archs/upsample.py",
    "mmagic.models.editors.srgan.sr_resnet": "mmagic/models/editors/srgan/sr_resnet.py",
    "mmagic.models.editors.edsr.edsr_net": "mmagic/models/editors/edsr/edsr_net.py",
}
_UTILS = "mmagic/models/utils/model_utils.py"


def find_mmagic_source(source: str | os.PathLike | None = None) -> Path | None:
    """The wheel or folder to read MMagic's source from, or ``None`` when there is none."""
    source = source or os.environ.get("HFMAGIC_MMAGIC_SOURCE")
    if source:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"MMagic source {path}: no such wheel or folder (pip download --no-deps mmagic==1.2.0).")
        return path
    spec = importlib.util.find_spec("mmagic")  # locates the package without running its __init__
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).parent
    return None


def _read(source: Path, names: list[str]) -> dict[str, str]:
    if source.is_file():
        with zipfile.ZipFile(source) as wheel:
            return {name: wheel.read(name).decode() for name in names}
    root = source.parent if source.name == "mmagic" else source
    return {name: (root / name).read_text() for name in names}


def _stub(name: str, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = []  # a package, so that relative imports below it resolve
    module.__dict__.update(attributes)
    return module


class _BaseModule(nn.Module):
    """mmengine.model.BaseModule minus its init_cfg machinery."""

    def __init__(self, init_cfg=None):
        super().__init__()
        self.init_cfg = init_cfg


# mmagic.registry.MODELS: its decorator returns the class as it is
_REGISTRY = types.SimpleNamespace(register_module=lambda *args, **kwargs: (lambda cls: cls))


def _exec_modules(path: Path, files: dict[str, str], texts: dict[str, str], stubs: dict[str, types.ModuleType]) -> dict:
    """Run MMagic's ``files`` (module name -> path in the source) in order, with the ``stubs`` standing
    in for mmengine/mmcv/mmagic packages only while their imports run (``sys.modules`` is restored).
    Each module's public names are re-exported by its package stub, as the package's __init__ does.
    Returns the loaded modules by name."""
    saved = {name: sys.modules.get(name) for name in [*stubs, *files]}
    sys.modules.update(stubs)
    try:
        loaded = {}
        for name, file in files.items():
            module = types.ModuleType(name)
            module.__file__ = f"{path}!{file}"
            module.__package__ = name.rpartition(".")[0]
            sys.modules[name] = module
            exec(compile(texts[file], module.__file__, "exec"), module.__dict__)  # noqa: S102  (MMagic's own code)
            loaded[name] = module
            package = stubs[module.__package__]
            for attr, value in vars(module).items():
                if not attr.startswith("_") and not hasattr(package, attr):
                    setattr(package, attr, value)
        return loaded
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _utils_functions(text: str, namespace: dict) -> None:
    """Execute only ``make_layer`` and ``default_init_weights`` from MMagic's model_utils.py."""
    tree = ast.parse(text)
    keep = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in ("make_layer", "default_init_weights")]
    exec(compile(ast.Module(body=keep, type_ignores=[]), _UTILS, "exec"), namespace)  # noqa: S102  (MMagic's own code)


def load_mmagic_networks(source: str | os.PathLike | None = None) -> types.SimpleNamespace | None:
    """``namespace(MSRResNet=..., EDSRNet=...)``: MMagic's classes, or ``None`` without a source."""
    path = find_mmagic_source(source)
    if path is None:
        return None
    texts = _read(path, [*_FILES.values(), _UTILS])

    def kaiming_init(module, a=0, mode="fan_out", nonlinearity="relu", bias=0, distribution="normal"):
        nn.init.kaiming_normal_(module.weight, a=a, mode=mode, nonlinearity=nonlinearity)
        if getattr(module, "bias", None) is not None:
            nn.init.constant_(module.bias, bias)

    def constant_init(module, val, bias=0):
        nn.init.constant_(module.weight, val)
        if getattr(module, "bias", None) is not None:
            nn.init.constant_(module.bias, bias)

    utils = _stub("mmagic.models.utils")
    exec_globals = {"nn": nn, "kaiming_init": kaiming_init, "constant_init": constant_init, "_BatchNorm": nn.modules.batchnorm._BatchNorm}
    _utils_functions(texts[_UTILS], exec_globals)
    utils.make_layer, utils.default_init_weights = exec_globals["make_layer"], exec_globals["default_init_weights"]
    stubs = {
        "mmengine": _stub("mmengine"),
        "mmengine.model": _stub("mmengine.model", BaseModule=_BaseModule),
        "mmagic": _stub("mmagic"),
        "mmagic.registry": _stub("mmagic.registry", MODELS=_REGISTRY),
        "mmagic.models": _stub("mmagic.models"),
        "mmagic.models.utils": utils,
        "mmagic.models.archs": _stub("mmagic.models.archs"),
        "mmagic.models.editors": _stub("mmagic.models.editors"),
        "mmagic.models.editors.srgan": _stub("mmagic.models.editors.srgan"),
        "mmagic.models.editors.edsr": _stub("mmagic.models.editors.edsr"),
    }
    # mmagic.models.archs re-exports PixelShufflePack and ResidualBlockNoBN (from upsample, sr_backbone)
    loaded = _exec_modules(path, _FILES, texts, stubs)
    return types.SimpleNamespace(
        MSRResNet=loaded["mmagic.models.editors.srgan.sr_resnet"].MSRResNet,
        EDSRNet=loaded["mmagic.models.editors.edsr.edsr_net"].EDSRNet,
        source=str(path),
    )


def mmagic_twin(model: nn.Module, networks: types.SimpleNamespace | None) -> tuple[nn.Module, str]:
    """MMagic's module for an hfmagic MSRResNet/EDSR with the same weights, device and dtype, and a
    label; without MMagic's source (``networks`` is ``None``) or for another model, the bare
    ``nn.Module`` copy of ``_common`` (the same layers, written to MMagic's structure)."""
    from _common import bare_copy

    config = model.config
    kind = type(model).__name__
    if networks is None:
        return bare_copy(model), "bare copy (MMagic's layers; MMagic's source not found)"
    if kind not in ("MSRResNet", "EDSR") or getattr(config, "upsample_lrelu", False):
        return bare_copy(model), f"bare copy (MMagic's layers; no MMagic module loaded for {kind})"
    common = {
        "in_channels": config.in_channels,
        "out_channels": config.out_channels,
        "mid_channels": config.mid_channels,
        "num_blocks": config.num_blocks,
        "upscale_factor": config.upscale_factor,
    }
    if kind == "MSRResNet":
        twin = networks.MSRResNet(**common)
    else:
        twin = networks.EDSRNet(**common, res_scale=config.res_scale, rgb_mean=list(config.rgb_mean), rgb_std=list(config.rgb_std))
    # MMagic's names are hfmagic's (what hfmagic.convert relies on): a strict load checks it
    state = {k: v for k, v in model.state_dict().items() if k in twin.state_dict()}
    twin.load_state_dict(state, strict=True)
    param = next(model.parameters())
    return twin.to(device=param.device, dtype=param.dtype).eval(), f"MMagic's own module ({networks.source})"
