"""The run directory: checkpoints that resume exactly, written atomically, and its lock.

    RUN_DIR/.lock                        held by the live run (its PID and host inside)
    RUN_DIR/checkpoints/step_00001000/   model.safetensors + config.json  (the evaluated weights: EMA)
                                         train_state.pt                    (everything needed to resume)
                                         checksums.json                    (SHA-256 of the three files)
    RUN_DIR/best/                        the checkpoint with the best test exact accuracy so far

Each checkpoint directory is written under a temporary name (`.step_N.tmp-*`), flushed to disk
and renamed when complete, so a run killed at any moment (kill -9 included) leaves only whole
checkpoints; the next start removes the temporary leftovers. The checksums catch what a rename
cannot: a file truncated or altered on disk afterwards. `train_state.pt` holds tensors and
plain Python values only and is read with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from trm.errors import CheckpointError, TRMError
from trm.files import atomic_directory
from trm.model.checkpoint import CONFIG, WEIGHTS, check_finite, write_model
from trm.model.trm import TRM

STATE = "train_state.pt"
CHECKSUMS = "checksums.json"
LOCK = ".lock"
_STEP_DIR = re.compile(r"step_(\d+)")
# What an interrupted write leaves: `.NAME.tmp-XXXX` (being written) or `.NAME.old-XXXX` (being replaced).
_LEFTOVER = re.compile(r"\.(step_\d+|best|config\.yaml|metrics\.jsonl)\.(tmp|old)-[A-Za-z0-9_]+")


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _STEP_DIR.fullmatch(p.name) and (p / STATE).exists()]
    return sorted(found, key=lambda p: int(_STEP_DIR.fullmatch(p.name).group(1)))


# ---------------------------------------------------------------------- atomic writes


def remove_leftovers(run_dir: Path) -> list[Path]:
    """Remove the temporary files and directories that writes killed mid-way left in the run
    directory (only names of our own pattern); returns what was removed. Call it only while
    holding the run's lock: a live run's temporaries look the same."""
    removed = []
    for parent in (run_dir, run_dir / "checkpoints"):
        if not parent.is_dir():
            continue
        for path in parent.iterdir():
            match = _LEFTOVER.fullmatch(path.name)
            if match is None:
                continue
            target = parent / match.group(1)
            if match.group(2) == "old" and not target.exists():
                os.replace(path, target)  # killed between the two renames: the old copy is whole
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed


# ---------------------------------------------------------------------- checkpoints


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def first_non_finite(tree: Any, name: str = "") -> str | None:
    """The name of the first floating-point tensor in `tree` (nested dicts and lists) that
    holds a NaN or an infinity, or None."""
    if torch.is_tensor(tree):
        return name if tree.is_floating_point() and not bool(torch.isfinite(tree).all()) else None
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, (list, tuple)):
        items = enumerate(tree)
    else:
        return None
    for key, value in items:
        found = first_non_finite(value, f"{name}.{key}" if name else str(key))
        if found is not None:
            return found
    return None


def save_checkpoint(
    run_dir: Path, step: int, state: dict[str, Any], model: TRM, keep_last: int, extra: dict[str, Any] | None = None
) -> Path:
    """Write checkpoint `step` (the evaluated `model` and the full training `state`), then
    delete all but the newest `keep_last` checkpoints. The caller has checked that both are finite."""
    target = run_dir / "checkpoints" / f"step_{step:08d}"
    with atomic_directory(target, overwrite=True) as tmp:
        write_model(model, tmp, extra)
        torch.save(state, tmp / STATE)
        sums = {name: _sha256(tmp / name) for name in (WEIGHTS, CONFIG, STATE)}
        (tmp / CHECKSUMS).write_text(json.dumps(sums, indent=2))
    for old in checkpoint_dirs(run_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def save_best(run_dir: Path, model: TRM, extra: dict[str, Any]) -> Path:
    target = run_dir / "best"
    with atomic_directory(target, overwrite=True) as tmp:
        write_model(model, tmp, extra)
    return target


def _verify_checksums(checkpoint: Path) -> None:
    path = checkpoint / CHECKSUMS
    if not path.exists():  # written before checksums were recorded: the loads below still check
        return
    try:
        sums = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: cannot be read ({e})") from None
    for name, expected in sums.items():
        if not (checkpoint / name).exists():
            raise CheckpointError(f"{checkpoint / name}: missing")
        if _sha256(checkpoint / name) != expected:
            raise CheckpointError(
                f"{checkpoint / name}: its content differs from the checksum recorded when it was written "
                "(truncated or corrupted on disk)"
            )


def load_train_state(checkpoint: Path) -> dict[str, Any]:
    """The training state of `checkpoint`, after checking that its files are whole (checksums),
    readable and hold finite values; a CheckpointError names the file and tensor otherwise."""
    _verify_checksums(checkpoint)
    weights = checkpoint / WEIGHTS
    try:
        check_finite(load_file(weights), str(weights))
    except CheckpointError:
        raise
    except Exception as e:  # safetensors raises its own error types, FileNotFoundError included
        raise CheckpointError(f"{weights}: cannot be read ({e})") from None
    path = checkpoint / STATE
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: not found; not a training checkpoint") from None
    except Exception as e:  # unpickling errors come in many types
        raise CheckpointError(f"{path}: cannot be read ({e})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not a training state (expected a dict with 'model', 'optimizer', ...)")
    bad = first_non_finite({k: state.get(k) for k in ("model", "ema", "optimizer", "ranks")})
    if bad is not None:
        raise CheckpointError(f"{path}: tensor '{bad}' holds NaN or infinite values; refusing to resume from it")
    return state


# ---------------------------------------------------------------------- one run per directory


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold RUN_DIR/.lock while the run lives, so a second run in the same directory stops at
    once. The kernel releases an flock when its process dies (kill -9 included), so a lock
    never outlives its run; the file stays, holding the last holder's PID and host."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TRMError(f"{run_dir}: cannot create the run directory ({e})") from None
    path = run_dir / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 256).decode(errors="replace").strip() or "a process that has not written its PID yet"
            raise TRMError(
                f"{run_dir}: another trm train is running in this directory ({holder}, from {path}); "
                "wait for it to end or stop it (Ctrl-C or kill saves a checkpoint), then resume with "
                f"trm train --resume {run_dir}"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"PID {os.getpid()} on {socket.gethostname()}\n".encode())
        yield
    finally:
        os.close(fd)  # releases the lock
