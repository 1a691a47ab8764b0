"""Where and in which precision pipelines run: the device, and ``dtype="auto"`` (bfloat16 where
the device computes it natively, float32 elsewhere)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

logger = logging.getLogger("hfmagic.pipelines")

__all__ = ["AUTO_DTYPE", "DTYPES", "native_bf16", "resolve_device", "resolve_dtype"]

# Names accepted for `dtype`, besides "auto" (see `_resolve_dtype`); also the CLI's --dtype choices.
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
AUTO_DTYPE = "auto"


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device`` that exists here (default: CUDA when available); ValueError
    naming the problem otherwise (an unknown name, CUDA in a CPU-only build, an index past the GPUs)."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"Unknown device {device!r} ({err}); use 'cpu', 'cuda', 'cuda:1' or 'mps'.") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: CUDA is not available here (no GPU, or a CPU-only torch build); use 'cpu'.")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible (cuda:0 ...).")
    if resolved.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r}: MPS is not available here; use 'cpu'.")
    return resolved


def _cpuinfo_flags() -> set[str]:
    """The CPU flags Linux lists in /proc/cpuinfo (empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[-1].split()}


def _cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 dot products or AMX tiles), where
    oneDNN's bf16 convolutions run ~2x faster than fp32 ones; on other CPUs bf16 is emulated and
    slower than fp32. torch's own CPU checks (private, so looked up) first, /proc/cpuinfo otherwise."""
    if not torch.backends.mkldnn.is_available():  # no oneDNN: bf16 convolutions take a slow native path
        return False
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if all(callable(check) for check in checks):
        try:
            return any(check() for check in checks)
        except RuntimeError:
            pass
    return bool(_cpuinfo_flags() & {"avx512_bf16", "amx_bf16"})


def native_bf16(device: str | torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: a CPU with AVX512-BF16 or AMX, or a CUDA GPU of
    compute capability 8.0+ (Ampere and later); ``False`` for anything else (MPS, older GPUs)."""
    device = torch.device(device)
    if device.type == "cpu":
        return _cpu_has_native_bf16()
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.get_device_capability(device) >= (8, 0)
    return False


def resolve_dtype(
    dtype: str | torch.dtype | None,
    device: torch.device | None = None,
    exact: bool = False,
    default: str = "float32",
) -> torch.dtype:
    """``dtype`` as a torch dtype (``None``: ``default``). ``"auto"`` is bfloat16 where ``device``
    computes it natively (:func:`native_bf16`) and float32 elsewhere and always when ``exact``;
    the choice is logged at INFO level. ValueError naming the choices for anything else."""
    choices = [AUTO_DTYPE, *sorted(DTYPES)]
    if dtype is None:
        dtype = default
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise ValueError(f"dtype {dtype} is not supported; choose one of {choices}.")
        return dtype
    if dtype == AUTO_DTYPE:
        device = torch.device("cpu") if device is None else torch.device(device)
        if exact:
            chosen, why = torch.float32, "exact mode computes in float32"
        elif native_bf16(device):
            chosen, why = torch.bfloat16, f"{device.type} computes bf16 natively; pass dtype='float32' for full precision"
        else:
            chosen, why = torch.float32, f"no native bf16 on this {device.type}"
        logger.info("dtype='auto' -> %s (%s).", str(chosen).removeprefix("torch."), why)
        return chosen
    if dtype not in DTYPES:
        raise ValueError(f"Unknown dtype {dtype!r}; choose one of {choices}.")
    return DTYPES[dtype]

