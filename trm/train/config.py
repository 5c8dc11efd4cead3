"""Training configuration: a typed object, YAML files, and `key=value` overrides.

Defaults are the paper's recipe (trm-spec sections 5 and 8). A YAML file overrides the
defaults and `key=value` arguments override the file, with dots for nested fields
(`model.hidden_size=64`). Unknown keys and out-of-range values are rejected with the field's name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from trm.config import ModelConfig, make_config
from trm.data.format import DatasetMetadata
from trm.errors import ConfigError

# The YAML configs that ship with trm: configs/ of the repository, reached through the package
# (trm/configs links to it in a clone; pip install copies it in as package data).
CONFIGS = Path(__file__).resolve().parent.parent / "configs"

# Every field states its range; NaN and infinity are rejected everywhere (allow_inf_nan=False).
CHECKED = ConfigDict(extra="forbid", allow_inf_nan=False)


class DataConfig(BaseModel):
    model_config = CHECKED

    path: str = Field("data/sudoku", min_length=1)  # dataset root with train/ and test/ (trm data ...)
    # Random augmentation of every training example as it is drawn (on top of any variants
    # stored in the dataset): "sudoku" relabels digits and permutes bands/rows/stacks/columns.
    augment: Literal["none", "sudoku"] = "none"
    eval_limit: PositiveInt | None = None  # evaluate on the first N test examples only


class LogConfig(BaseModel):
    model_config = CHECKED

    every: PositiveInt = 10  # optimizer steps between train-metric lines in metrics.jsonl
    tensorboard: bool | None = None  # None: when the tensorboard package is installed
    wandb: bool = False
    wandb_project: str = Field("trm", min_length=1)


class TrainConfig(BaseModel):
    """Everything a run needs; saved as `config.yaml` in its run directory."""

    model_config = CHECKED

    name: str = "run"  # a directory name (checked below)
    run_dir: str | None = None  # default: runs/<name>
    # numpy's generators need a non-negative seed; torch.manual_seed takes at most 64 bits, and
    # the loop adds the rank to it.
    seed: int = Field(0, ge=0, lt=2**63)

    data: DataConfig = Field(default_factory=DataConfig)
    # vocab_size, seq_len and num_puzzle_identifiers are taken from the dataset.
    model: ModelConfig = Field(default_factory=ModelConfig)
    # Start from these weights instead of random ones (fine-tuning, a curriculum's next stage): a
    # model directory (model.safetensors + config.json: a shipped model, a run's best/ or one of
    # its checkpoints) or the name of a shipped model (sudoku-9x9). Its shapes must match `model`;
    # the optimizer starts fresh. Used only when a run starts, not when it resumes.
    init_from: str | None = Field(None, min_length=1)
    # With init_from naming a narrower TRM-MLP (its hidden_size a divisor of model.hidden_size):
    # start from that model widened to this one, computing the same function (trm/model/widen.py).
    init_widen: bool = False
    # Gaussian noise (a fraction of each widened weight's std) that parts the repeated channels;
    # 0 keeps the function exactly and needs a width at which the channel MLP gains hidden units.
    init_widen_noise: NonNegativeFloat = 0.0

    # Length of training: epochs of the dataset (groups x mean examples / batch), or an
    # explicit number of optimizer steps, stopped early by a wall-clock budget if given.
    global_batch_size: PositiveInt = 768
    epochs: PositiveInt = 50000
    max_steps: PositiveInt | None = None
    max_minutes: PositiveFloat | None = None

    # Weights: AdamATan2 (or AdamW), linear warm-up then cosine decay to lr * lr_min_ratio.
    optimizer: Literal["adam_atan2", "adamw"] = "adam_atan2"
    lr: PositiveFloat = 1e-4
    lr_min_ratio: float = Field(1.0, ge=0, le=1)
    lr_warmup_steps: NonNegativeInt = 2000
    beta1: float = Field(0.9, ge=0, lt=1)  # Adam's moment decay rates
    beta2: float = Field(0.95, ge=0, lt=1)
    weight_decay: NonNegativeFloat = 1.0
    # Puzzle embeddings: sign-SGD with decoupled weight decay on the rows in the batch
    # (lr 0 freezes them).
    puzzle_emb_lr: NonNegativeFloat = 1e-4
    puzzle_emb_weight_decay: NonNegativeFloat = 1.0

    # Deep supervision of the answer from this supervision step on: a sample's earlier steps add
    # no cross-entropy, only the halting terms (1: every step, the paper's recipe). Meant for
    # puzzles the model cannot answer within a few steps, where training on every step made our
    # models worse; measured on them from step 9, it did not stop that decline
    # (experiments/sudoku-hard/README.md, attempt 6).
    answer_loss_from_step: PositiveInt = 1

    ema: bool = True
    ema_rate: float = Field(0.999, ge=0, lt=1)  # 1 would never move from the initial weights

    eval_interval: PositiveInt | None = None  # optimizer steps between evaluations (None: at the end only)
    # Or in epochs, as the paper states it; also the sampler's shuffling unit, as in the reference.
    eval_interval_epochs: PositiveInt | None = None
    eval_batch_size: PositiveInt | None = None  # default: global_batch_size
    checkpoint_interval: PositiveInt | None = None  # default: every evaluation
    checkpoint_minutes: PositiveFloat | None = 10.0  # also save when this much wall time passed since the last save
    keep_last: PositiveInt = 2  # newest checkpoints kept (the best one is kept separately)

    device: Literal["auto", "cpu", "cuda"] = "auto"
    compile: bool = False
    threads: PositiveInt | None = None  # CPU threads per process (None: torch's default)
    # Keep freed CPU memory in the process (glibc): large activations then stop page-faulting
    # every step (trm/backends/cpu.py; 1.1-1.3x at the paper's Sudoku shape on 2 cores). The process
    # keeps its peak memory until it exits.
    reuse_cpu_memory: bool = True
    # Kernels for the model's products (trm/backends): "default" (PyTorch's), "onednn" (x86-64 CPUs:
    # oneDNN float32 matmuls, sequence-major MLP mixer; same results within float32 rounding), or
    # "auto": on CPU the faster of the two, timed on this model's shape at start-up.
    backend: Literal["auto", "default", "onednn"] = "auto"
    deterministic: bool = False  # torch.use_deterministic_algorithms, for bit-exact reruns

    log: LogConfig = Field(default_factory=LogConfig)

    @field_validator("name")
    @classmethod
    def _directory_name(cls, name: str) -> str:
        # The run directory defaults to runs/<name>, so the name must stay one directory below.
        if name in ("", ".", "..") or any(c in name for c in "/\\\0"):
            raise ValueError(
                f"expected a directory name: not empty, '.' or '..', without '/', '\\' or NUL (got {name!r})"
            )
        return name

    @model_validator(mode="after")
    def _answer_loss_within_supervision(self) -> TrainConfig:
        if self.answer_loss_from_step > self.model.N_sup:
            raise ValueError(
                f"answer_loss_from_step: {self.answer_loss_from_step} is past the last supervision step "
                f"(model.N_sup = {self.model.N_sup}): the answer would never be trained"
            )
        return self

    @property
    def resolved_run_dir(self) -> Path:
        return Path(self.run_dir or os.path.join("runs", self.name))

    def schedule(self, train: DatasetMetadata) -> tuple[int, int]:
        """(optimizer steps of the run, steps between evaluations) on the training split `train`:
        max_steps, or the reference's estimate from epochs; eval_interval, or from
        eval_interval_epochs, or once at the end."""
        total = self.max_steps if self.max_steps is not None else self._steps_for_epochs(self.epochs, train)
        if self.eval_interval:
            return total, self.eval_interval
        return total, self._steps_for_epochs(self.eval_interval_epochs, train) if self.eval_interval_epochs else total

    def _steps_for_epochs(self, epochs: int, train: DatasetMetadata) -> int:
        """Optimizer steps in `epochs` epochs, estimated as the reference does."""
        return max(1, int(epochs * train.total_groups * train.mean_puzzle_examples / self.global_batch_size))


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    *parents, leaf = dotted.split(".")
    if not all(key.strip() for key in (*parents, leaf)):
        raise ConfigError(f"override '{dotted}': empty key in the dotted name")
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
    return _read_with_bases(Path(path), ())


def _read_with_bases(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """`chain` holds the files whose `base:` led here, to report a cycle instead of recursing."""
    raw = _read_mapping(path)
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str) or not base.strip() or "\0" in base:
        raise ConfigError(
            f"{path}: base: expected the path of another config file, relative to this one (got {base!r})"
        )
    base_path = path.parent / base
    chain = (*chain, path)
    seen = [os.path.realpath(p) for p in chain]  # realpath, unlike resolve, allows symlink loops
    if os.path.realpath(base_path) in seen:
        cycle = chain[seen.index(os.path.realpath(base_path)) :]
        raise ConfigError(f"{path}: base files form a cycle: {' -> '.join(map(str, (*cycle, base_path)))}")
    if not base_path.exists():
        raise ConfigError(f"{path}: base file {base_path} not found")
    return _merge(_read_with_bases(base_path, chain), raw)


def _read_mapping(path: Path) -> dict[str, Any]:
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a config file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (expected UTF-8 YAML)") from None
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot be read as YAML ({e})") from None
    if raw is None:  # an empty file (or only comments)
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level, got a {type(raw).__name__}")
    return raw


def shipped_configs() -> list[Path]:
    """Every YAML config that ships with trm, in path order (paper runs, then the folders)."""
    if not CONFIGS.is_dir():
        raise ConfigError(
            f"{CONFIGS}: the shipped configs are missing from this installation of trm; "
            "reinstall it from a clone of the repository (pip install .)"
        )
    return sorted(CONFIGS.rglob("*.yaml"), key=lambda p: (len(p.relative_to(CONFIGS).parts), p))


def find_config(path: str | os.PathLike) -> Path:
    """The config file `path` names: as it is, or where it is missing, a shipped one named as in
    the repository (`configs/cpu/sudoku-mlp.yaml` works from any directory)."""
    path = Path(path)
    if not path.exists() and not path.is_absolute() and path.parts[:1] == ("configs",):
        shipped = CONFIGS.joinpath(*path.parts[1:])
        if shipped.is_file():
            return shipped
    return path


def load_train_config(path: str | os.PathLike | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Defaults <- YAML file (`find_config`) <- `key=value` overrides, validated."""
    values = read_yaml(find_config(path)) if path is not None else {}
    values = _merge(values, parse_overrides(overrides or []))
    return make_config(TrainConfig, values, where=str(path or "config"))


def dump_config(config: TrainConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
