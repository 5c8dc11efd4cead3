"""Training configuration: a typed object, YAML files, and `key=value` overrides.

Defaults are the paper's recipe (trm-spec sections 5 and 8). A YAML file overrides the
defaults and `key=value` arguments override the file, with dots for nested fields
(`model.hidden_size=64`). Unknown keys are rejected with their name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from trm.config import ModelConfig, make_config
from trm.errors import ConfigError


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = "data/sudoku"  # dataset root with train/ and test/ (trm data ...)
    # Random augmentation of every training example as it is drawn (on top of any variants
    # stored in the dataset): "sudoku" relabels digits and permutes bands/rows/stacks/columns.
    augment: Literal["none", "sudoku"] = "none"
    eval_limit: int | None = None  # evaluate on the first N test examples only


class LogConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    every: int = 10  # optimizer steps between train-metric lines in metrics.jsonl
    tensorboard: bool | None = None  # None: when the tensorboard package is installed
    wandb: bool = False
    wandb_project: str = "trm"


class TrainConfig(BaseModel):
    """Everything a run needs; saved as `config.yaml` in its run directory."""

    model_config = ConfigDict(extra="forbid")

    name: str = "run"
    run_dir: str | None = None  # default: runs/<name>
    seed: int = 0

    data: DataConfig = Field(default_factory=DataConfig)
    # vocab_size, seq_len and num_puzzle_identifiers are taken from the dataset.
    model: ModelConfig = Field(default_factory=ModelConfig)

    # Length of training: epochs of the dataset (groups x mean examples / batch), or an
    # explicit number of optimizer steps, stopped early by a wall-clock budget if given.
    global_batch_size: int = 768
    epochs: int = 50000
    max_steps: int | None = None
    max_minutes: float | None = None

    # Weights: AdamATan2 (or AdamW), linear warm-up then cosine decay to lr * lr_min_ratio.
    optimizer: Literal["adam_atan2", "adamw"] = "adam_atan2"
    lr: float = 1e-4
    lr_min_ratio: float = 1.0
    lr_warmup_steps: int = 2000
    beta1: float = 0.9
    beta2: float = 0.95
    weight_decay: float = 1.0
    # Puzzle embeddings: sign-SGD with decoupled weight decay on the rows in the batch.
    puzzle_emb_lr: float = 1e-4
    puzzle_emb_weight_decay: float = 1.0

    ema: bool = True
    ema_rate: float = 0.999

    eval_interval: int | None = None  # optimizer steps between evaluations (None: at the end only)
    # Or in epochs, as the paper states it; also the sampler's shuffling unit, as in the reference.
    eval_interval_epochs: int | None = None
    eval_batch_size: int | None = None  # default: global_batch_size
    checkpoint_interval: int | None = None  # default: every evaluation
    checkpoint_minutes: float | None = 10.0  # also save when this much wall time passed since the last save
    keep_last: int = 2  # newest checkpoints kept (the best one is kept separately)

    device: Literal["auto", "cpu", "cuda"] = "auto"
    compile: bool = False
    threads: int | None = None  # CPU threads per process (None: torch's default)
    # Keep freed CPU memory in the process (glibc): large activations then stop page-faulting
    # every step (trm/allocator.py; 1.1-1.3x at the paper's Sudoku shape on 2 cores). The process
    # keeps its peak memory until it exits.
    reuse_cpu_memory: bool = True
    # float32 matmuls on x86-64 CPUs through oneDNN instead of PyTorch's default (MKL): about 1.15x faster
    # float32 steps at the CPU recipe's shape on the 2-core AMD machine (trm/model/layers.py;
    # bench/cpu_matmul_backends.py --rounds 5 compares the two). Same float32 results.
    onednn_float32: bool = True
    deterministic: bool = False  # torch.use_deterministic_algorithms, for bit-exact reruns

    log: LogConfig = Field(default_factory=LogConfig)

    @property
    def resolved_run_dir(self) -> Path:
        return Path(self.run_dir or os.path.join("runs", self.name))


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override '{dotted}': '{key}' is not a section")
    node[leaf] = value


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """`["lr=3e-4", "model.T=2"]` -> {"lr": 3e-4, "model": {"T": 2}} (values parsed as YAML)."""
    tree: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override '{item}' is not of the form key=value (e.g. lr=3e-4 or model.T=2)")
        try:
            value = yaml.safe_load(raw) if raw else None
        except yaml.YAMLError as e:
            raise ConfigError(f"override '{item}': value is not valid YAML ({e})") from None
        _set_dotted(tree, key.strip(), value)
    return tree


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """A config file's values; `base: other.yaml` (relative to the file) is read first and
    overridden, so ablations state only what they change."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot be read as YAML ({e})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    base = raw.pop("base", None)
    return _merge(read_yaml(path.parent / base), raw) if base else raw


def load_train_config(path: str | os.PathLike | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Defaults <- YAML file <- `key=value` overrides, validated."""
    values = read_yaml(path) if path is not None else {}
    values = _merge(values, parse_overrides(overrides or []))
    return make_config(TrainConfig, values, where=str(path or "config"))


def dump_config(config: TrainConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
