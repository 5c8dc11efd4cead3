"""`evaluate`: a checkpoint on a dataset split, with fixed, adaptive or valid halting.

Fixed halting reproduces the reference evaluation (trm-spec section 4): every sample runs
`max_steps` (default N_sup) supervision steps and is judged on the last one. Adaptive
halting stops each sample when its halting head says so (`trm.eval.adaptive`); valid
halting (Sudoku and Maze) only when, in addition, its answer keeps the puzzle's rules. All
record the exact accuracy after every step and count the network calls actually made. ARC
datasets are also scored by augmentation voting (pass@K) and give a Kaggle submission.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from trm.config import HALT_MODES, HALT_THRESHOLD, ModelConfig
from trm.data.format import DatasetMetadata, Split, read_dataset
from trm.data.sampler import EvalBatch, eval_batches
from trm.errors import CheckpointError, ConfigError
from trm.eval.adaptive import AnswerCheck, RunResult, network_calls_per_step, run_steps
from trm.eval.arc import PASS_KS, ArcScorer
from trm.eval.metrics import MetricTotals, exact_match, rules_check
from trm.model.backend_choice import choose_backend
from trm.model.checkpoint import WEIGHTS, load_model
from trm.model.precision import FORWARD_DTYPES
from trm.model.trm import TRM
from trm.tasks import ARC, TASKS, Task, task_for

# Said beside the backend of every report: a figure is reproduced with the kernels it was measured with.
BACKEND_NOTE = "(the products' kernels: their rounding differs, and so can a few answers)"


@dataclass
class EvalReport:
    """Everything one evaluation measured. `to_json()` is what `trm eval` writes."""

    checkpoint: str
    data: str
    split: str
    task: str  # "sudoku", "maze", "arc" or "other"
    halt: str
    max_steps: int
    N_sup: int
    halt_threshold: float
    num_examples: int
    exact_accuracy: float
    token_accuracy: float
    halting_accuracy: float
    mean_steps: float
    exact_accuracy_per_step: list[float]
    supervision_steps: int  # samples x supervision steps computed
    network_calls_per_step: int
    network_calls: int
    wall_time_s: float
    puzzles_per_second: float
    device: str
    backend: str = ""  # the kernels the products ran on (`trm.backends`): figures can differ by them
    capped_rate: float | None = None  # adaptive, valid: samples that ran to the step cap
    valid_rate: float | None = None  # Sudoku, Maze: predictions valid by the rules
    valid_not_label_rate: float | None = None  # ... of which differ from the label
    pass_at_k: dict[int, float] | None = None  # ARC
    arc_tasks_scored: int | None = None
    model: dict[str, Any] = field(default_factory=dict)
    submission: dict | None = field(default=None, repr=False)  # ARC: written apart, not in the JSON

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("submission")
        if self.pass_at_k is not None:
            out["pass_at_k"] = {str(k): v for k, v in self.pass_at_k.items()}
        return out

    def table(self) -> str:
        """The report as a small table for the terminal."""
        title = (
            f"{self.checkpoint} on {self.data} ({self.split} split, {self.num_examples:,} examples, "
            f"{TASKS[self.task].title if self.task in TASKS else self.task}), {self.halt} halting, "
            f"at most {self.max_steps} steps "
            f"(trained with N_sup = {self.N_sup})"
        )
        rows = [
            ("exact accuracy", _pct(self.exact_accuracy)),
            ("token accuracy", _pct(self.token_accuracy)),
            ("halting accuracy", _pct(self.halting_accuracy)),
        ]
        if self.valid_rate is not None:
            rows.append(
                (
                    "valid by the rules",
                    f"{_pct(self.valid_rate)}  (valid but not the label: {_pct(self.valid_not_label_rate)})",
                )
            )
        if self.pass_at_k is not None:
            rows += [(f"ARC pass@{k}", _pct(v)) for k, v in self.pass_at_k.items()]
            rows.append(("ARC tasks scored", str(self.arc_tasks_scored)))
        rows.append(("mean steps used", f"{self.mean_steps:.2f}"))
        if self.capped_rate is not None:
            rows.append(("ran to the step cap", _pct(self.capped_rate)))
        rows += [
            (
                "network calls",
                f"{self.network_calls:,}  ({self.supervision_steps:,} sample-steps x "
                f"{self.network_calls_per_step} calls per step)",
            ),
            ("wall time", f"{self.wall_time_s:.1f} s  ({self.puzzles_per_second:,.1f} puzzles/s on {self.device})"),
            ("backend", f"{self.backend}  {BACKEND_NOTE}"),
        ]
        width = max(len(name) for name, _ in rows) + 2
        lines = [title] + [f"  {name:<{width}}{value}" for name, value in rows]
        lines.append("  exact accuracy after each step:")
        per_step = [f"{k + 1}: {_pct(a)}" for k, a in enumerate(self.exact_accuracy_per_step)]
        lines += ["    " + "  ".join(per_step[i : i + 8]) for i in range(0, len(per_step), 8)]
        return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def check_halt_mode(halt: str, task: Task | None = None, known: bool = True) -> None:
    """`halt` must be a known mode; "valid" needs a task whose answers can be checked (not ARC).
    `known` False: the data belongs to no task (it has no verifier either)."""
    if halt not in HALT_MODES:
        raise ConfigError(f"halt must be one of {', '.join(HALT_MODES)}, got '{halt}'")
    unchecked = not known if task is None else not task.has_rules
    if halt == "valid" and unchecked:
        raise ConfigError(
            f"halt 'valid' needs puzzles whose answers can be checked by their rules (Sudoku, Maze); "
            f"{task.title if task is not None else 'this dataset'} has no verifier: use 'adaptive' or 'fixed'"
        )


def check_model_fits(config: ModelConfig, metadata: DatasetMetadata, checkpoint: str, where: str) -> None:
    """A checkpoint must share the dataset's vocabulary and sequence length (and know its identifiers)."""
    if (config.vocab_size, config.seq_len) != (metadata.vocab_size, metadata.seq_len):
        raise CheckpointError(
            f"{checkpoint}: the model has vocab_size {config.vocab_size} and seq_len {config.seq_len}, but "
            f"{where} has vocab_size {metadata.vocab_size} and seq_len {metadata.seq_len}: the checkpoint "
            "was trained for another task or grid size"
        )
    if config.puzzle_emb_ndim > 0 and metadata.num_puzzle_identifiers > config.num_puzzle_identifiers:
        raise CheckpointError(
            f"{checkpoint}: the model has {config.num_puzzle_identifiers} puzzle embeddings, but {where} uses "
            f"{metadata.num_puzzle_identifiers} puzzle identifiers: it was trained on another dataset"
        )


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint a path names: a checkpoint directory of ours as it is; a training run
    directory's `best/` checkpoint, else its newest `checkpoints/step_N/`; anything else (a
    reference run or step_N file) unchanged, for `load_model` to read."""
    path = Path(path)
    if (path / WEIGHTS).exists() or not path.is_dir():
        return path
    if (path / "best" / WEIGHTS).exists():
        return path / "best"
    steps = [p for p in path.glob("checkpoints/step_*") if p.name[5:].isdigit() and (p / WEIGHTS).exists()]
    return max(steps, key=lambda p: int(p.name[5:])) if steps else path


def resolve_model(
    model: TRM | str | os.PathLike,
    device: str | torch.device | None,
    forward_dtype: str | None = None,
    cycles: int | None = None,
) -> tuple[TRM, str]:
    """A model and a name for it: load a checkpoint path, or take a model as it is.

    `forward_dtype` ("float32", "bfloat16" or "auto") overrides the checkpoint's; by default a
    checkpoint runs in its own dtype, bfloat16 becoming float32 where it is not native (`load_model`).
    `cycles` overrides the model's T, its recursion cycles per supervision step: the weights do not
    depend on T, so the same network runs deeper (or shallower) at every step."""
    if forward_dtype is not None and forward_dtype not in FORWARD_DTYPES:
        raise ConfigError(f"forward_dtype must be one of {', '.join(FORWARD_DTYPES)}, got '{forward_dtype}'")
    if cycles is not None and (isinstance(cycles, bool) or not isinstance(cycles, int) or cycles < 1):
        raise ConfigError(f"cycles (the model's T) must be a whole number of at least 1, got {cycles!r}")
    overrides = {key: value for key, value in (("forward_dtype", forward_dtype), ("T", cycles)) if value is not None}
    if isinstance(model, TRM):
        if device is not None:
            model.to(device)
        if overrides:  # the caller's weights with these settings; the caller's model keeps its own
            model = copy.copy(model)
            model.config = model.config.model_copy(update=overrides)
        return model.eval(), "model"
    path = resolve_checkpoint(model)
    return load_model(path, device=device or "cpu", **overrides), str(path)


def available_devices() -> list[str]:
    """The device names that work on this machine: cpu, cuda and cuda:N per GPU, mps."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        names.append("mps")
    return names


def check_device(device: str | torch.device | None) -> torch.device | None:
    """The device a name (such as --device's) stands for, if it exists here; else a ConfigError
    listing the devices that do."""
    if device is None:
        return None
    valid = f"valid here: {', '.join(available_devices())}"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"device '{device}' is not a device name ({valid})") from None
    if parsed.type == "cpu" or (parsed.type == "mps" and torch.backends.mps.is_available()):
        return parsed
    if parsed.type != "cuda":
        raise ConfigError(f"device '{device}' is not supported by this command ({valid})")
    if not torch.cuda.is_available():
        raise ConfigError(f"device '{device}' was asked for but CUDA is not available here ({valid})")
    if parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ConfigError(f"device '{device}': this machine has {torch.cuda.device_count()} CUDA device(s) ({valid})")
    return parsed


def evaluate(
    model: TRM | str | os.PathLike,
    data_dir: str | os.PathLike,
    *,
    split: str = "test",
    batch_size: int = 256,
    halt: str = "fixed",
    max_steps: int | None = None,
    limit: int | None = None,
    halt_threshold: float = HALT_THRESHOLD,
    device: str | torch.device | None = None,
    progress: bool = True,
    forward_dtype: str | None = None,
    arc_voting: bool = True,
    rank: int = 0,
    world_size: int = 1,
    backend: str | None = None,
    cycles: int | None = None,
) -> EvalReport:
    """Evaluate a model (or a checkpoint path) on `data_dir/split`: the one evaluation of
    `trm eval`, `trm solve`'s halting, the demo and training.

    `halt` is "fixed" (every sample runs `max_steps`, the reference's evaluation), "adaptive"
    (a sample stops when q_halt > `halt_threshold`, or at `max_steps`) or, for Sudoku and Maze,
    "valid" (a sample stops when q_halt > `halt_threshold` and its answer keeps the puzzle's
    rules, or at `max_steps`). `max_steps` defaults
    to the model's N_sup and may exceed it. `limit` evaluates only the first examples, for
    quick checks; ARC scores then cover only the tasks that got predictions. `forward_dtype`
    overrides the checkpoint's dtype (default: its own, bfloat16 running as float32 where it is
    not native). `arc_voting=False` leaves out ARC's pass@K and submission (training's
    evaluations, which `trm eval` on the checkpoint completes). `cycles` runs the model at that T
    (recursion cycles per supervision step) instead of its own.

    Several processes (training with torch.distributed) pass their `rank` and `world_size`:
    each evaluates its share of every batch and the counts are summed over all of them, so
    every process gets the report of the whole split (ARC voting needs one process).
    """
    check_halt_mode(halt)
    for name, value in (("batch_size", batch_size), ("max_steps", max_steps), ("limit", limit)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")
    check_device(device)
    model, checkpoint = resolve_model(model, device, forward_dtype, cycles)
    if backend is not None:  # "auto", "default" or "onednn"; None keeps the model's (`trm.backends`)
        model.use_backend(choose_backend(backend, model.config, batch_size, model.y_init.device, model.dtype)[0])
    root = Path(data_dir)
    data = read_dataset(root, split)
    check_model_fits(model.config, data.metadata, checkpoint, str(root / split / "dataset.json"))
    task = task_for(data.metadata.vocab_size, data.metadata.seq_len)
    check_halt_mode(halt, task, known=task is not None)
    checked = task is not None and task.has_rules
    accept = rules_check(task) if halt == "valid" else None
    max_steps = max_steps or model.config.N_sup
    if task is ARC and arc_voting and world_size > 1:
        raise ConfigError("ARC voting needs every prediction in one process: evaluate with one process")
    scorer = ArcScorer.from_dataset(root) if task is ARC and arc_voting else None
    totals = MetricTotals(max_steps, check_validity=checked, count_capped=halt != "fixed")
    run_device = next(model.parameters()).device

    total = sum(s.num_examples for s in data.sets.values())
    total = min(total, limit) if limit else total
    bar = tqdm(total=total, desc=f"evaluating ({halt} halting)", unit="puzzle", disable=not progress or rank > 0)
    supervision_steps, start = 0, time.perf_counter()
    for eval_batch, n in _batches_up_to(data, batch_size, total, rank, world_size):
        if n == 0:
            continue
        batch = {k: v[:n].to(run_device) for k, v in eval_batch.batch.items()}
        arrays = {k: v[:n].numpy() for k, v in eval_batch.batch.items()}
        result, exact_by_step = _run_batch(model, batch, max_steps, halt != "fixed", halt_threshold, accept)
        preds, q_halt, steps = (t.cpu().numpy() for t in (result.preds, result.q_halt, result.steps))
        valid = task.validity(arrays["inputs"], preds) if checked else None
        totals.update(arrays["labels"], preds, q_halt, steps, exact_by_step, valid)
        if scorer is not None:
            scorer.add_batch(arrays["puzzle_identifiers"], arrays["inputs"], preds, q_halt)
        supervision_steps += result.supervision_steps
        bar.update(n)
        so_far = max(totals.count, 1)
        bar.set_postfix_str(f"exact {totals.exact / so_far:.2%}, steps {totals.steps / so_far:.1f}")
    bar.close()
    seconds = time.perf_counter() - start
    if world_size > 1:
        supervision_steps = _sum_over_processes(totals, supervision_steps, run_device)

    arc_scores = _arc_results(scorer, limited=limit is not None) if scorer is not None else {}
    calls_per_step = network_calls_per_step(model.config)
    return EvalReport(
        checkpoint=checkpoint,
        data=str(root),
        split=split,
        task=task.name if task is not None else "other",
        halt=halt,
        max_steps=max_steps,
        N_sup=model.config.N_sup,
        halt_threshold=halt_threshold,
        num_examples=totals.count,
        supervision_steps=supervision_steps,
        network_calls_per_step=calls_per_step,
        network_calls=supervision_steps * calls_per_step,
        wall_time_s=seconds,
        puzzles_per_second=totals.count / max(seconds, 1e-9),
        device=str(run_device),
        backend=model.net.backend.name,
        model=model.config.model_dump(),
        **totals.summary(),
        **arc_scores,
    )


def _batches_up_to(
    data: Split, batch_size: int, total: int, rank: int, world_size: int
) -> Iterator[tuple[EvalBatch, int]]:
    """This process's share of the evaluation batches holding the first `total` examples (over
    all sets, in order), each with how many of its rows are among them."""
    offsets = dict(zip(data.sets, np.cumsum([0] + [s.num_examples for s in data.sets.values()])))
    for eval_batch in eval_batches(data, batch_size, rank, world_size):
        indices = offsets[eval_batch.set_name] + eval_batch.example_indices
        if len(indices) and indices[0] >= total:
            return  # this batch and all later ones lie past the limit
        yield eval_batch, int((indices < total).sum())


def _sum_over_processes(totals: MetricTotals, supervision_steps: int, device: torch.device) -> int:
    """Add up every process's counts in `totals` (in place) and `supervision_steps`: each process
    evaluated its share of the batches. The settings (max_steps and the flags) are the same on all."""
    names = [f.name for f in fields(totals) if f.name != "max_steps" and not isinstance(getattr(totals, f.name), bool)]
    parts = [np.atleast_1d(getattr(totals, name)).astype(np.float64) for name in names]
    summed = torch.from_numpy(np.concatenate([*parts, [supervision_steps]])).to(device)
    torch.distributed.all_reduce(summed)
    values = np.split(summed.cpu().numpy(), np.cumsum([len(p) for p in parts]))
    for name, value in zip(names, values):
        old = getattr(totals, name)
        setattr(totals, name, value.astype(old.dtype) if isinstance(old, np.ndarray) else type(old)(value[0]))
    return int(values[-1][0])


def _run_batch(
    model: TRM,
    batch: dict[str, torch.Tensor],
    max_steps: int,
    adaptive: bool,
    halt_threshold: float,
    accept: AnswerCheck | None = None,
) -> tuple[RunResult, np.ndarray]:
    """Run one batch and record, for every step, which samples' current answers are exact.

    A sample's answer after step k stands for all later steps until it is replaced, so a
    sample that halted keeps its last answer in the per-step accuracy. Exactness is computed
    where the batch lives; only one flag per sample and step comes back.
    """
    labels = batch["labels"]
    exact_by_step = np.zeros((max_steps, labels.shape[0]), dtype=bool)

    def on_step(step: int, rows: torch.Tensor, preds: torch.Tensor, _out) -> None:
        exact = exact_match(preds, labels[rows])
        exact_by_step[step - 1 :, rows.cpu().numpy()] = exact.cpu().numpy()

    result = run_steps(
        model, batch, max_steps, adaptive=adaptive, on_step=on_step, halt_threshold=halt_threshold, accept=accept
    )
    return result, exact_by_step


def _arc_results(scorer: ArcScorer, limited: bool) -> dict[str, Any]:
    """pass@K and the submission; over every test task, or only those seen when `limit` cut the data."""
    tasks = scorer.tasks_predicted() if limited else list(scorer.test_puzzles)
    return dict(
        pass_at_k=scorer.pass_at_k(PASS_KS, tasks),
        arc_tasks_scored=len(tasks),
        submission=scorer.submission(tasks),
    )


def write_report(report: EvalReport, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=2))
    return path
