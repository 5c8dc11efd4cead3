"""A run directory across starts: refusing to overwrite an earlier run, the config of a run
to resume, the newest checkpoint that reads back, the trainer's state saved in it (weights, EMA,
optimizer, sampler, random generators and the carry of every process) and restored from it."""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from trm.errors import CheckpointError, TRMError
from trm.model.trm import Carry
from trm.train.checkpoint import STATE, checkpoint_dirs, load_train_state, remove_leftovers
from trm.train.config import TrainConfig, load_train_config

if TYPE_CHECKING:
    from trm.train.loop import Trainer


@dataclass
class Progress:
    step: int = 0
    train_seconds: float = 0.0  # training time so far, evaluation and checkpoints excluded
    best_exact: float = -1.0


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


def kept_auto_choices(found: tuple[dict[str, Any], Path] | None, config: TrainConfig, device: torch.device) -> dict:
    """What "auto" chose when a resumed run started (saved in its checkpoints by `training_state`)
    for the settings the config still leaves to "auto": kept, so that the run goes on computing
    with the same kernels and dtype instead of choosing anew. Nothing on another kind of device
    (CPU to GPU), where the run cannot continue exactly anyway and auto chooses again."""
    saved = found[0].get("auto", {}) if found else {}
    if saved.get("device") != device.type:
        return {}
    still_auto = {"forward_dtype": config.model.forward_dtype == "auto", "backend": config.backend == "auto"}
    return {name: value for name, value in saved.items() if still_auto.get(name)}


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


def training_state(trainer: Trainer) -> dict[str, Any]:
    """Everything a checkpoint needs to continue the run exactly (a collective when distributed)."""
    local = {
        "carry": carry_state(trainer.carry),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state() if trainer.device.type == "cuda" else None,
    }
    ranks = [local]
    if trainer.dist.enabled:
        ranks = [None] * trainer.dist.world_size
        torch.distributed.all_gather_object(ranks, local)
    return {
        "step": trainer.progress.step,
        "train_seconds": trainer.progress.train_seconds,
        "best_exact": trainer.progress.best_exact,
        "model": {k: v.cpu() for k, v in trainer.model.state_dict().items()},
        "ema": {k: v.cpu() for k, v in trainer.ema.state_dict().items()} if trainer.ema else None,
        "optimizer": trainer.optimizer.state_dict(),
        "sampler": trainer.sampler.state_dict(),
        "world_size": trainer.dist.world_size,
        "ranks": ranks,
        "auto": trainer.auto_choices,  # what backend and forward_dtype "auto" chose, kept on resume
    }


def restore_training_state(trainer: Trainer, found: tuple[dict[str, Any], Path] | None) -> None:
    """Continue from `found`, the newest readable checkpoint of the trainer's run directory
    (`newest_readable_state`), or from the start when it is None."""
    if found is None:  # killed before its first checkpoint: the same run again from the start
        if trainer.dist.is_main:
            print(f"{trainer.run_dir}: no checkpoint saved yet; starting again from step 0")
        return
    state, checkpoint = found
    try:
        trainer.model.load_state_dict(state["model"])
        if trainer.ema is not None and state["ema"] is not None:
            trainer.ema.load_state_dict(state["ema"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.sampler.load_state_dict(state["sampler"])
    except (CheckpointError, RuntimeError, KeyError, ValueError) as e:
        raise CheckpointError(
            f"{checkpoint / STATE}: does not fit the run's config with the overrides given "
            f"(only settings that keep the model's shapes can change on resume): {' '.join(str(e).split())}"
        ) from None
    trainer.progress = Progress(state["step"], state["train_seconds"], state["best_exact"])
    if state["world_size"] == trainer.dist.world_size:
        mine = state["ranks"][trainer.dist.rank]
        torch.set_rng_state(mine["torch_rng"])
        if mine["cuda_rng"] is not None and trainer.device.type == "cuda":
            torch.cuda.set_rng_state(mine["cuda_rng"])
        trainer.carry = carry_from_state(mine["carry"], trainer.device)
    elif trainer.dist.is_main:
        print(
            f"resuming on {trainer.dist.world_size} processes instead of {state['world_size']}: "
            "in-flight samples restart"
        )


def way_back(run_dir: Path, lr: float) -> str:
    """Where a diverged run can continue from, as it stands on disk."""
    lower = f"lr={lr / 3:g}"
    found = checkpoint_dirs(run_dir)
    if found:
        return (
            f"The last checkpoint, {found[-1]}, was checked to be finite when saved: resume from it "
            f"with a lower learning rate, e.g. trm train --resume {run_dir} {lower}"
        )
    return (
        f"No checkpoint was saved before: start again with a lower learning rate, e.g. "
        f"trm train --resume {run_dir} {lower} (it restarts from step 0)"
    )
