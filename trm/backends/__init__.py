"""Device-specific speed paths for the model's matrix products, chosen by name.

A backend is an object the model's layers hold and call for their products; none keeps state
in a module, so two models in one process can use different backends. The names are those of
the `backend` setting of a training config and of `--backend` on the command line:

    default  PyTorch's own kernels on every device, states laid out (B, S, D) as in the paper
    onednn   float32 products through oneDNN on x86-64 CPUs, MLP-mixer states laid out (S, B, D)
             (`trm.backends.cpu`); elsewhere its products fall back to PyTorch's kernels

"auto" is not a backend: `trm.model.backend_choice` times both on the model's shape and picks.
"""

from __future__ import annotations

from trm.backends.cpu import OneDNN, onednn_available, reuse_freed_memory, trim_freed_memory
from trm.backends.default import Backend
from trm.errors import ConfigError

BACKENDS: dict[str, type[Backend]] = {"default": Backend, "onednn": OneDNN}


def get_backend(name: str) -> Backend:
    """The backend called `name`, one of BACKENDS."""
    if name not in BACKENDS:
        raise ConfigError(f"backend: expected auto or one of {', '.join(BACKENDS)} (got {name!r})")
    return BACKENDS[name]()


__all__ = [
    "BACKENDS",
    "Backend",
    "OneDNN",
    "get_backend",
    "onednn_available",
    "reuse_freed_memory",
    "trim_freed_memory",
]
