"""`evaluate_trajectories`: test-time scaling on a dataset, scored against its labels.

Every example of a split is a puzzle; each gets the trajectories of a `Plan`
(`trm.eval.trajectories`) and the answer its selection rule picks. The report gives that
answer's exact accuracy, the share of puzzles where some trajectory was right (pass@K, an
upper bound no rule without labels can reach, not an accuracy), the valid rate, what was spent
(trajectories, supervision steps and network calls per puzzle, wall time, each puzzle's share
of it), and the accuracy at K = 1, 2, 4, ... from the same run: "verify" grows a puzzle's
trajectories by doubling, so the first k of them are exactly what a run with K = k starts;
"halt" and "vote" run every trajectory to its end, so both rules are scored at every k.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from trm.config import IGNORE_LABEL_ID
from trm.data.format import read_dataset
from trm.errors import ConfigError
from trm.eval.adaptive import network_calls_per_step
from trm.eval.evaluate import BACKEND_NOTE, check_device, check_model_fits, resolve_model
from trm.eval.trajectories import Outcome, Plan, ks_up_to, rank_answers, run_trajectories
from trm.model.backend_choice import choose_backend
from trm.tasks import task_for


def _exact(answer: np.ndarray, label: np.ndarray) -> bool:
    return bool(((answer == label) | (label == IGNORE_LABEL_ID)).all())


def accuracy_at(outcomes: list[Outcome], labels: np.ndarray, select: str, k: int) -> float:
    """Exact accuracy when only each puzzle's first `k` trajectories count, chosen by `select`."""
    right = 0
    for outcome, label in zip(outcomes, labels):
        first = [t for t in outcome.trajectories if t.index < k]
        right += _exact(rank_answers(first, select)[0].answer, label)
    return right / max(len(outcomes), 1)


@dataclass
class ScalingReport:
    """What a test-time scaling run measured. `to_json()` is what `trm eval` writes."""

    checkpoint: str
    data: str
    split: str
    task: str
    plan: dict[str, Any]
    num_puzzles: int
    exact_accuracy: float  # the selected answer equals the label
    pass_at_k: float  # some trajectory's answer equals the label: an upper bound, not an accuracy
    valid_rate: float  # the selected answer keeps the rules
    valid_not_label_rate: float  # ... but differs from the label (several solutions or shortest paths)
    accuracy_at_k: dict[str, dict[int, float]]  # rule -> K -> exact accuracy from this run
    mean_trajectories: float  # trajectories started per puzzle
    mean_steps: float  # supervision steps per puzzle, over all its trajectories
    network_calls_per_step: int
    network_calls: int
    wall_time_s: float
    puzzles_per_second: float
    time_per_puzzle_s: dict[str, float]  # each puzzle's share of the batches it ran in: median, mean, p90, max
    device: str
    backend: str = ""  # the kernels the products ran on (`trm.backends`): figures can differ by them
    model: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["accuracy_at_k"] = {rule: {str(k): v for k, v in by_k.items()} for rule, by_k in self.accuracy_at_k.items()}
        return out

    def table(self) -> str:
        """The report as a small table for the terminal."""
        p = self.plan
        views = "random symmetries" if p["views"] else "the puzzle as given"
        title = (
            f"{self.checkpoint} on {self.data} ({self.split} split, {self.num_puzzles:,} puzzles): "
            f"{p['trajectories']} trajectories ({views}, noise {p['noise']:g}), select by {p['select']}, "
            f"at most {p['max_steps']} steps, seed {p['seed']}"
        )
        t = self.time_per_puzzle_s
        rows = [
            (f"exact accuracy ({p['select']})", _pct(self.exact_accuracy)),
            ("pass@K: some trajectory right", f"{_pct(self.pass_at_k)}  (judged by the labels: not an accuracy)"),
            ("valid by the rules", f"{_pct(self.valid_rate)}  (not the label: {_pct(self.valid_not_label_rate)})"),
            ("trajectories per puzzle", f"{self.mean_trajectories:.2f}"),
            ("steps per puzzle", f"{self.mean_steps:.1f}  (all its trajectories)"),
            ("network calls", f"{self.network_calls:,}  ({self.network_calls_per_step} per step)"),
            ("wall time", f"{self.wall_time_s:.1f} s  ({self.puzzles_per_second:,.2f} puzzles/s on {self.device})"),
            ("backend", f"{self.backend}  {BACKEND_NOTE}"),
            ("time per puzzle", f"median {t['median']:.3f} s, mean {t['mean']:.3f} s, 90% {t['p90']:.3f} s"),
        ]
        width = max(len(name) for name, _ in rows) + 2
        lines = [title] + [f"  {name:<{width}}{value}" for name, value in rows]
        for rule, by_k in self.accuracy_at_k.items():
            lines.append(f"  exact accuracy ({rule}) with the first K trajectories:")
            lines.append("    " + "  ".join(f"K={k}: {_pct(a)}" for k, a in by_k.items()))
        return "\n".join(lines)


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def score(
    outcomes: list[Outcome],
    labels: np.ndarray,
    plan: Plan,
    wall_time_s: float,
    calls_per_step: int,
) -> dict[str, Any]:
    """The measured part of a `ScalingReport` (every field after `plan`) from a run's outcomes."""
    chosen = [o.chosen for o in outcomes]
    exact = np.array([_exact(a.answer, label) for a, label in zip(chosen, labels)])
    some_right = np.array([any(_exact(t.answer, label) for t in o.trajectories) for o, label in zip(outcomes, labels)])
    valid = np.array([bool(a.valid) for a in chosen], dtype=bool)  # checked by the engine on each answer
    rules = ["verify"] if plan.select == "verify" else ["halt", "vote"]
    steps = np.array([o.sample_steps for o in outcomes])
    times = np.array([o.compute_s for o in outcomes]) if outcomes else np.zeros(1)
    n = max(len(outcomes), 1)
    return dict(
        num_puzzles=len(outcomes),
        exact_accuracy=float(exact.sum() / n),
        pass_at_k=float(some_right.sum() / n),
        valid_rate=float(valid.sum() / n),
        valid_not_label_rate=float((valid & ~exact).sum() / n),
        accuracy_at_k={
            rule: {k: accuracy_at(outcomes, labels, rule, k) for k in ks_up_to(plan.trajectories)} for rule in rules
        },
        mean_trajectories=float(np.mean([len(o.trajectories) for o in outcomes])) if outcomes else 0.0,
        mean_steps=float(steps.sum() / n),
        network_calls_per_step=calls_per_step,
        network_calls=int(steps.sum()) * calls_per_step,
        wall_time_s=wall_time_s,
        puzzles_per_second=len(outcomes) / max(wall_time_s, 1e-9),
        time_per_puzzle_s=dict(
            median=float(np.median(times)),
            mean=float(times.mean()),
            p90=float(np.quantile(times, 0.9)),
            max=float(times.max()),
        ),
    )


def read_examples(data_dir: Path, split: str, limit: int | None) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """(metadata, inputs, labels, puzzle identifiers) of the first `limit` examples of every set, in order."""
    data = read_dataset(data_dir, split)
    inputs, labels, ids = [], [], []
    for arrays in data.sets.values():
        examples = np.arange(arrays.num_examples)
        puzzles = np.searchsorted(arrays.puzzle_indices, examples, side="right") - 1
        inputs.append(arrays.inputs)
        labels.append(arrays.labels)
        ids.append(arrays.puzzle_identifiers[puzzles])
    inputs, labels, ids = (np.concatenate(a)[:limit] for a in (inputs, labels, ids))
    return data.metadata, inputs, labels, ids


def evaluate_trajectories(
    model: Any,
    data_dir: str | os.PathLike,
    plan: Plan,
    *,
    split: str = "test",
    limit: int | None = None,
    device: str | torch.device | None = None,
    forward_dtype: str | None = None,
    backend: str | None = None,
    progress: bool = True,
    cycles: int | None = None,
) -> ScalingReport:
    """Run `plan` on the puzzles of `data_dir/split` (the first `limit`) with a model or a
    checkpoint path, and score the chosen answers against the labels. A plan whose `max_steps`
    is None runs the model's N_sup steps (the report's plan gives the number used). `cycles`
    runs the model at that T instead of its own."""
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be at least 1, got {limit}")
    check_device(device)
    model, checkpoint = resolve_model(model, device, forward_dtype, cycles)
    if plan.max_steps is None:
        plan = replace(plan, max_steps=model.config.N_sup)
    root = Path(data_dir)
    metadata, inputs, labels, ids = read_examples(root, split, limit)
    check_model_fits(model.config, metadata, checkpoint, str(root / split / "dataset.json"))
    task = task_for(metadata.vocab_size, metadata.seq_len)
    if task is None:
        raise ConfigError(f"{root}: vocab_size {metadata.vocab_size} and seq_len {metadata.seq_len} belong to no task")
    plan.check(task)  # before the backend is timed: a plan that cannot run is refused at once
    if backend is not None:
        model.use_backend(choose_backend(backend, model.config, plan.batch_size, model.y_init.device, model.dtype)[0])
    bar = tqdm(
        total=len(inputs),
        desc=f"solving ({plan.trajectories} trajectories, {plan.select})",
        unit="puzzle",
        disable=not progress,
    )
    right, done = [0], [0]

    def on_done(i: int, outcome: Outcome) -> None:
        right[0] += _exact(outcome.chosen.answer, labels[i])
        done[0] += 1
        bar.update(1)
        bar.set_postfix_str(f"exact {right[0] / done[0]:.2%}")

    start = time.perf_counter()
    outcomes = run_trajectories(model, task, inputs, plan, identifiers=ids, on_done=on_done)
    seconds = time.perf_counter() - start
    bar.close()
    measured = score(outcomes, labels, plan, seconds, network_calls_per_step(model.config))
    return ScalingReport(
        checkpoint=checkpoint,
        data=str(root),
        split=split,
        task=task.name,
        plan=asdict(plan),
        device=str(next(model.parameters()).device),
        backend=model.net.backend.name,
        model=model.config.model_dump(),
        **measured,
    )
