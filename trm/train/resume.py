"""A run directory across starts: refusing to overwrite an earlier run, the config of a run
to resume, the newest checkpoint that reads back, and the carry saved with it."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

import torch

from trm.errors import CheckpointError, TRMError
from trm.model.trm import Carry
from trm.train.checkpoint import checkpoint_dirs, load_train_state, remove_leftovers
from trm.train.config import TrainConfig, load_train_config


def prepare_run_dir(run_dir: Path, resume: bool) -> None:
    """Refuse to start a fresh run over an earlier one; remove what writes killed mid-way left."""
    metrics = run_dir / "metrics.jsonl"
    if not resume and (checkpoint_dirs(run_dir) or (run_dir / "best").is_dir()):
        raise TRMError(f"{run_dir}: already holds a run; resume it with --resume {run_dir} or choose another name")
    if not resume and metrics.exists() and metrics.stat().st_size > 0:
        raise TRMError(
            f"{metrics}: holds the metrics of an earlier run that saved no checkpoint; rerun it with "
            f"--resume {run_dir} (it starts again from step 0 and rewrites them), or delete the file, "
            "or choose another name"
        )
    for path in remove_leftovers(run_dir):
        print(f"removed {path}, left by a write that was interrupted")


def resume_config(run_dir: str | os.PathLike, overrides: list[str]) -> TrainConfig:
    """The saved config of a run, with `key=value` overrides (e.g. a longer max_steps)."""
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise TRMError(f"{run_dir}: no config.yaml; not a run directory")
    config = load_train_config(path, overrides)
    return config.model_copy(update={"run_dir": str(run_dir)})


def newest_readable_state(run_dir: Path, is_main: bool) -> tuple[dict[str, Any], Path] | None:
    """The newest checkpoint that reads back whole and finite (None when the run saved none).
    Unreadable newer ones are reported and set aside as step_N.unreadable (by the first
    process), so that they are neither resumed nor counted by keep_last."""
    found = checkpoint_dirs(run_dir)
    if not found:
        return None
    unreadable: list[tuple[Path, CheckpointError]] = []
    for checkpoint in reversed(found):
        try:
            state = load_train_state(checkpoint)
        except CheckpointError as e:
            unreadable.append((checkpoint, e))
            continue
        for bad, error in unreadable if is_main else []:
            aside = bad.with_name(f"{bad.name}.unreadable")
            with contextlib.suppress(OSError):
                os.replace(bad, aside)
            print(
                f"warning: {error}; resuming from {checkpoint}, the checkpoint before it "
                f"({bad.name} is kept as {aside.name})",
                file=sys.stderr,
            )
        return state, checkpoint
    reasons = "; ".join(str(error) for _, error in unreadable)
    raise CheckpointError(f"{run_dir}: no readable checkpoint to resume from: {reasons}")


def carry_state(carry: Carry | None) -> dict[str, Any] | None:
    """The carry (samples in flight) as CPU tensors, to save."""
    if carry is None:
        return None
    return {
        "y": carry.y.cpu(),
        "z": carry.z.cpu(),
        "steps": carry.steps.cpu(),
        "halted": carry.halted.cpu(),
        "data": {k: v.cpu() for k, v in carry.data.items()},
    }


def carry_from_state(state: dict[str, Any] | None, device: torch.device) -> Carry | None:
    """The carry `carry_state` saved, on `device`."""
    if state is None:
        return None
    return Carry(
        state["y"].to(device),
        state["z"].to(device),
        state["steps"].to(device),
        state["halted"].to(device),
        {k: v.to(device) for k, v in state["data"].items()},
    )
