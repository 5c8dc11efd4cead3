"""Keep freed CPU memory in the process, so large tensors do not page-fault on every step.

PyTorch allocates CPU tensors with the C library's malloc. glibc serves any block above its
mmap threshold (at most 32 MiB) with a fresh mmap and gives it back to the kernel on free, so
each new large activation is faulted in page by page and zeroed by the kernel, every step. At
the paper's Sudoku shape (D=512, batch 64) that is over a million page faults and about 7 s of
kernel time per training step on 2 cores. Serving every block from the heap and never
trimming it keeps the memory of one step ready for the next: the process holds on to its peak
working set (which it needs again at the next step anyway) instead of returning it.
"""

from __future__ import annotations

import ctypes
import sys

# mallopt(3) parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

_state: bool | None = None


def reuse_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory for reuse: no mmap per block, no trimming.

    Process-wide and idempotent. Returns True when the setting is in force, False where it
    does not apply (not Linux, or a C library other than glibc).
    """
    global _state
    if _state is None:
        _state = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL("libc.so.6")
                mallopt = libc.mallopt
            except (OSError, AttributeError):  # musl and others: leave their allocator alone
                return False
            mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
            _state = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, -1) == 1
    return _state
