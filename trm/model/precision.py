"""Which dtype the forward pass runs in: float32, bfloat16, or "auto" (bfloat16 where it is native).

bfloat16 halves memory traffic and, on hardware with native bfloat16 matmuls (CUDA GPUs from
Ampere on, x86 CPUs with AVX512-BF16 or AMX), doubles the matmul rate. Elsewhere the CPU libraries
emulate it: on a 2-core AVX2 machine a bfloat16 matmul at this model's shapes ran 10x slower
than float32. "auto" picks bfloat16 only where it is native, from the CPU's instruction sets (not
a timing), so one machine always makes the same choice.
"""

from __future__ import annotations

import functools

import torch

FORWARD_DTYPES = ("float32", "bfloat16", "auto")


@functools.cache
def _cpu_has_native_bfloat16() -> bool:
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # x86 only; absent elsewhere
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


@functools.cache
def _cuda_has_native_bfloat16(index: int | None) -> bool:
    if not torch.cuda.is_available():
        return False
    major, _ = torch.cuda.get_device_capability(index)
    return major >= 8  # Ampere and later; older GPUs emulate bfloat16


def native_bfloat16(device: str | torch.device) -> bool:
    """Whether `device` multiplies bfloat16 matrices natively (faster than float32)."""
    device = torch.device(device)
    if device.type == "cuda":
        return _cuda_has_native_bfloat16(device.index)
    if device.type == "cpu":
        return _cpu_has_native_bfloat16()
    return False


def resolve_forward_dtype(name: str, device: str | torch.device) -> str:
    """A config's forward_dtype as run on `device`: "auto" becomes "bfloat16" or "float32"."""
    if name not in FORWARD_DTYPES:
        raise ValueError(f"forward_dtype must be one of {', '.join(FORWARD_DTYPES)}, not {name!r}")
    if name == "auto":
        return "bfloat16" if native_bfloat16(device) else "float32"
    return name


def inference_dtype(name: str, device: str | torch.device) -> str:
    """The dtype to run a trained model in on `device` when the user asked for none: the
    checkpoint's own, except that bfloat16 becomes float32 where bfloat16 is not native (there
    float32 is both faster and more precise)."""
    name = resolve_forward_dtype(name, device)
    return "float32" if name == "bfloat16" and not native_bfloat16(device) else name
