"""Training checkpoints that resume exactly, written atomically.

    RUN_DIR/checkpoints/step_00001000/   model.safetensors + config.json  (the evaluated weights: EMA)
                                         train_state.pt                    (everything needed to resume)
    RUN_DIR/best/                        the checkpoint with the best test exact accuracy so far

Each checkpoint directory is written under a temporary name and renamed when complete, so a
run killed at any moment (kill -9 included) leaves only whole checkpoints. `train_state.pt`
holds tensors and plain Python values only and is read with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import torch

from trm.data.format import atomic_directory
from trm.errors import CheckpointError
from trm.model.checkpoint import write_model
from trm.model.trm import TRM

STATE = "train_state.pt"
_STEP_DIR = re.compile(r"step_(\d+)")


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _STEP_DIR.fullmatch(p.name) and (p / STATE).exists()]
    return sorted(found, key=lambda p: int(_STEP_DIR.fullmatch(p.name).group(1)))


def save_checkpoint(run_dir: Path, step: int, state: dict[str, Any], model: TRM, keep_last: int,
                    extra: dict[str, Any] | None = None) -> Path:
    """Write checkpoint `step` (the evaluated `model` and the full training `state`), then
    delete all but the newest `keep_last` checkpoints."""
    target = run_dir / "checkpoints" / f"step_{step:08d}"
    with atomic_directory(target, overwrite=True) as tmp:
        write_model(model, tmp, extra)
        torch.save(state, tmp / STATE)
    for old in checkpoint_dirs(run_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def save_best(run_dir: Path, model: TRM, extra: dict[str, Any]) -> Path:
    target = run_dir / "best"
    with atomic_directory(target, overwrite=True) as tmp:
        write_model(model, tmp, extra)
    return target


def load_train_state(checkpoint: Path) -> dict[str, Any]:
    path = checkpoint / STATE
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: not found; not a training checkpoint") from None
    except Exception as e:  # unpickling errors come in many types
        raise CheckpointError(f"{path}: cannot be read ({e})") from None
