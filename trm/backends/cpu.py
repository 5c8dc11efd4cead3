"""The CPU backend: oneDNN float32 products and a sequence-major MLP mixer, plus glibc's malloc
told to keep freed memory.

Three measured effects on x86-64 CPUs (bench/cpu_matmul_backends.py, bench/cpu_step_breakdown.py):
- PyTorch sends float32 matmuls to MKL; at this model's narrow shapes oneDNN's float32 kernels
  are up to 1.4x faster on some CPUs. Both compute in full float32. Input gradients go through
  oneDNN too; weight gradients (long reductions over tokens, where oneDNN is no faster) do not.
- The MLP mixer's blocks work on (S, B, D) states instead of (B, S, D): seen as an (S, B*D)
  matrix the token mixer is two plain products from the left, and seen as (S*B, D) so is the
  channel MLP, with no transposed copies in between.
- glibc serves each large block with a fresh mmap, so every step's activations page-fault in
  again (`reuse_freed_memory`; `trim_freed_memory` for work whose shapes change every step).
Which of this backend and the default is faster depends on the shape and the machine:
`trm.model.backend_choice` times both.
"""

from __future__ import annotations

import ctypes
import platform
import sys

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import register_flop_formula

from trm.backends.default import Backend


def onednn_available() -> bool:
    """oneDNN's float32 matmul is in this build, on an x86-64 CPU (where it was measured to help)."""
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    return x86 and torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


@torch.library.custom_op("trm::onednn_matmul_nt", mutates_args=())
def onednn_matmul_nt(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b.T for 2-D float32 CPU tensors, by oneDNN's float32 matmul (any strides)."""
    a, b = (t if 1 in t.stride() else t.contiguous() for t in (a, b))  # row- or column-major as they are
    return torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], None)


@onednn_matmul_nt.register_fake
def _(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a.new_empty(a.shape[0], b.shape[0])


def _onednn_matmul_nt_backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    a, b = ctx.saved_tensors
    grad_a = onednn_matmul_nt(grad, b.t()) if ctx.needs_input_grad[0] else None  # grad @ b
    # grad^T @ a by PyTorch's default: for the linear layers this is the weight gradient, a long
    # reduction over tokens, where oneDNN is no faster.
    grad_b = grad.t() @ a if ctx.needs_input_grad[1] else None
    return grad_a, grad_b


def _onednn_matmul_nt_setup(ctx, inputs: tuple[torch.Tensor, torch.Tensor], output: torch.Tensor) -> None:
    ctx.save_for_backward(*inputs)


onednn_matmul_nt.register_autograd(_onednn_matmul_nt_backward, setup_context=_onednn_matmul_nt_setup)


@register_flop_formula(torch.ops.trm.onednn_matmul_nt)
def _(a_shape: torch.Size, b_shape: torch.Size, *args, **kwargs) -> int:
    return 2 * a_shape[0] * a_shape[1] * b_shape[0]


class LeftMatmul(torch.autograd.Function):
    """w @ x, with the weight gradient computed as (x @ grad^T)^T.

    The same product as autograd's grad @ x^T, transposed: for the token mixer's (2*inner, S)
    weight, oneDNN computes it 1.6x faster with the wide dimension last (bfloat16, 2 CPU cores).
    """

    @staticmethod
    def forward(ctx, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(w, x)
        return w @ x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w, x = ctx.saved_tensors
        return (x @ grad.t()).t(), w.t() @ grad


class OneDNN(Backend):
    """oneDNN float32 products on x86-64 CPUs and sequence-major MLP-mixer blocks.

    Products of other dtypes or devices, or without oneDNN, take PyTorch's kernels (still in
    the sequence-major layout, which needs no kernel of its own).
    """

    name = "onednn"
    sequence_major = True

    def __init__(self) -> None:
        self.available = onednn_available()

    def _float32(self, x: torch.Tensor) -> bool:
        return self.available and x.dtype == torch.float32 and x.device.type == "cpu"

    def linear(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        if not self._float32(x):
            return super().linear(x, weight, bias)
        out = onednn_matmul_nt(x.reshape(-1, x.shape[-1]), weight).view(*x.shape[:-1], -1)
        return out if bias is None else out + bias

    def token_swiglu(self, gate_up: torch.Tensor, down: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """down @ (silu(gate) * value) with [gate; value] = gate_up @ t, for a (features, tokens) t:
        the token mixer, its weights multiplied from the left."""
        if self._float32(t):
            gate, value = onednn_matmul_nt(gate_up, t.t()).chunk(2, dim=0)
            return onednn_matmul_nt(down, (F.silu(gate) * value).t())
        gate, value = LeftMatmul.apply(gate_up.to(t.dtype), t).chunk(2, dim=0)
        return down.to(t.dtype) @ (F.silu(gate) * value)


# mallopt(3) parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

_kept = False  # reuse_freed_memory is in force in this process


def _libc() -> ctypes.CDLL | None:
    """glibc, on Linux; None elsewhere (musl and others keep their own allocator's ways)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def reuse_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory for reuse: no mmap per block, no trimming.

    PyTorch allocates CPU tensors with the C library's malloc. glibc serves any block above its
    mmap threshold (at most 32 MiB) with a fresh mmap and gives it back to the kernel on free, so
    each new large activation is faulted in page by page and zeroed by the kernel, every step. At
    the paper's Sudoku shape (D=512, batch 64) that is over a million page faults and about 7 s of
    kernel time per training step on 2 cores. Serving every block from the heap and never trimming
    it keeps the memory of one step ready for the next: the process holds on to its peak working
    set (which it needs again at the next step anyway) instead of returning it.

    Process-wide; calling it again changes nothing. Returns True when the setting is in force,
    False where it does not apply (not Linux, or a C library other than glibc).
    """
    global _kept
    libc = _libc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _kept = _kept or (mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, -1) == 1)
    return _kept


def trim_freed_memory() -> bool:
    """Give the free pages of the heap back to the kernel, where `reuse_freed_memory` is in force.

    Kept memory is reused as long as each step asks for blocks of the sizes the step before freed.
    When the sizes change from step to step (the trajectories' pool, where rows leave and others
    join, `trm.eval.trajectories`), a new block does not always fit the gaps between blocks still in
    use, the heap grows, and with trimming off it never shrinks: 64 trajectories on each of 1,000
    Sudokus grew past 24 GB. Trimmed every 16 steps, the same run stayed at about 1 GB; the price is
    faulting in one step's pages again now and then (a 1,000-puzzle point that stops at valid
    answers took 425 s trimmed against 407 s untrimmed, 2 cores, another day).

    Returns True when memory was trimmed (or nothing was left to trim), False where the setting is
    not in force (then glibc trims by itself).
    """
    libc = _libc() if _kept else None
    if libc is None:
        return False
    libc.malloc_trim.argtypes, libc.malloc_trim.restype = (ctypes.c_size_t,), ctypes.c_int
    libc.malloc_trim(0)
    return True
