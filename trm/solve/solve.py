"""One puzzle in, the answer, the steps used and the halting confidence out.

The task comes from the checkpoint: vocab 11 and length 81 is 9x9 Sudoku, vocab 6 and
length N*N an NxN maze, vocab 12 and length 900 ARC (trm-spec section 1). The puzzle is
read and checked against that task before the model sees it:

- Sudoku: 81 characters, digits 1-9 and '.' or '0' for blanks (a string, or a file holding
  one); givens that contradict each other are refused.
- Maze: a text file of N lines of N characters `#` wall, ` ` or `.` open, `S` start, `G` goal
  (or one line of N*N characters, as in the Maze-Hard CSV files).
- ARC: a task JSON ({"train": [...], "test": [...]}) or a Kaggle challenges file with
  `task_id`; every test input is solved. An ARC model knows a task through the puzzle
  embedding of its variants, so `data_dir` (the dataset it was trained with) supplies the
  identifiers; every variant of the task is run and the answers are voted on as in
  evaluation (`trm.eval.arc`). Without it the task is run once with the blank identifier.

Solving runs the supervision steps (`trm.eval.adaptive`) and keeps every step's answer, for
watching the model think (`trm.solve.render`). By default a Sudoku or a maze halts by the
"valid" rule: when its halting head says so and its answer keeps the puzzle's rules (checked
by `trm.eval.metrics`, as evaluation checks them), so a confident but broken answer is not
taken while steps remain; ARC, which has no such check, halts by the model's own "adaptive"
rule. An answer that still breaks a rule at the step cap comes back with `valid` False and
the rule it breaks in `problem`.

Test-time scaling (`trajectories`, `noise`, `select`, `answers`; Sudoku and Maze) runs many
trajectories of the puzzle (`trm.eval.trajectories`, in `trm.solve.scaled`) instead: the
answer is the one `select` chooses, and up to `answers` distinct answers that keep the rules
come back, most confident first.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trm.config import ModelConfig
from trm.data.format import read_identifiers
from trm.errors import CheckpointError, ConfigError, DataError
from trm.eval.adaptive import network_calls_per_step, run_steps
from trm.eval.arc import sigmoid, vote
from trm.eval.evaluate import check_device, check_halt_mode, resolve_model
from trm.eval.metrics import rules_check
from trm.eval.trajectories import Plan
from trm.model.trm import TRM
from trm.solve.puzzles import read_puzzles
from trm.solve.scaled import solve_scaled
from trm.solve.solution import Choice, Solution, Step
from trm.tasks import ARC, Puzzle, Task, task_for
from trm.tasks.arc import VARIANT_SEPARATOR, parse_variant_name, to_original
from trm.tasks.grids import IDENTITY, Transform

# --- Reading puzzles ------------------------------------------------------------------------


def model_task(model: TRM, checkpoint: str) -> Task:
    """The task a checkpoint solves, from its vocabulary and sequence length."""
    cfg = model.config
    task = task_for(cfg.vocab_size, cfg.seq_len)
    if task is None:
        raise CheckpointError(
            f"{checkpoint}: vocab_size {cfg.vocab_size} and seq_len {cfg.seq_len} match no puzzle this "
            "command can read (Sudoku 9x9: 11 and 81; NxN maze: 6 and N*N; ARC: 12 and 900)"
        )
    return task


def check_puzzle_fits(puzzle: Puzzle, task: Task, config: ModelConfig, checkpoint: str) -> None:
    """The checkpoint must be made for this kind (and size) of puzzle."""
    shape = f"vocab_size {config.vocab_size}, seq_len {config.seq_len}"
    if puzzle.task is not task:
        raise CheckpointError(
            f"{checkpoint}: solves {task.title} puzzles ({shape}), but {puzzle.name} is a {puzzle.task.title} puzzle"
        )
    if task.encode(puzzle.grid).size != config.seq_len:
        raise CheckpointError(
            f"{checkpoint}: solves {task.title} puzzles of {config.seq_len} tokens ({shape}), but {puzzle.name} is "
            f"{puzzle.grid.shape[0]}x{puzzle.grid.shape[1]}"
        )


# --- Running the model ----------------------------------------------------------------------


@dataclass(frozen=True)
class Halting:
    """How long each run goes: "fixed", "adaptive" or "valid" mode, the step cap, the q_halt
    threshold, and the task whose rules "valid" checks."""

    mode: str
    max_steps: int
    threshold: float = 0.0
    task: Task | None = None


@dataclass
class _Runs:
    preds: np.ndarray  # (R, L)
    q_halt: np.ndarray  # (R,)
    steps: np.ndarray  # (R,)
    trace: list[tuple[np.ndarray, float]]  # row 0 after every step: (tokens, q_halt logit)


def _run(model: TRM, inputs: np.ndarray, identifiers: np.ndarray, halting: Halting, batch_size: int) -> _Runs:
    """Run rows of tokens in chunks, keeping every step of row 0."""
    device = next(model.parameters()).device
    trace: list[tuple[np.ndarray, float]] = []

    def on_step(step: int, rows: torch.Tensor, preds: torch.Tensor, out) -> None:
        if rows[0] == 0:
            trace.append((preds[0].cpu().numpy(), float(out.q_halt[0])))

    parts = []
    for start in range(0, len(inputs), batch_size):
        chunk = slice(start, start + batch_size)
        batch = {
            "inputs": torch.from_numpy(inputs[chunk].astype(np.int32)).to(device),
            "puzzle_identifiers": torch.from_numpy(identifiers[chunk].astype(np.int32)).to(device),
        }
        trace_here = on_step if start == 0 else None
        result = run_steps(
            model,
            batch,
            halting.max_steps,
            adaptive=halting.mode != "fixed",
            on_step=trace_here,
            halt_threshold=halting.threshold,
            accept=rules_check(halting.task) if halting.mode == "valid" else None,
        )
        parts.append([t.cpu().numpy() for t in (result.preds, result.q_halt, result.steps)])
    preds, q_halt, steps = (np.concatenate(p) for p in zip(*parts))
    return _Runs(preds, q_halt, steps, trace)


def _solve_grid(model: TRM, puzzle: Puzzle, halting: Halting) -> Solution:
    """A task with rules (Sudoku, Maze): one row, one answer, judged by the task's verifier."""
    task = puzzle.task
    tokens = task.encode(puzzle.grid)
    tick = time.perf_counter()
    runs = _run(model, tokens[None], np.zeros(1, dtype=np.int32), halting, 1)
    wall = time.perf_counter() - tick
    answer = task.decode(runs.preds[0])
    problem = task.verify(puzzle, answer)
    trajectory = [Step(task.decode(t), float(sigmoid(q))) for t, q in runs.trace]
    steps, confidence = int(runs.steps[0]), float(sigmoid(runs.q_halt[0]))
    return Solution(
        puzzle=puzzle,
        answer=answer,
        steps=steps,
        confidence=confidence,
        trajectory=trajectory,
        max_steps=halting.max_steps,
        halt=halting.mode,
        valid=problem is None,
        problem=problem,
        attempts=[answer],
        mean_steps=float(runs.steps[0]),
        answers=[Choice(answer, problem is None, steps, confidence, 0)],
        network_calls=steps * network_calls_per_step(model.config),
        wall_time_s=wall,
    )


def arc_variants(
    model: TRM, task_id: str, data_dir: str | os.PathLike | None
) -> tuple[list[tuple[int, Transform]], list[str]]:
    """(identifier, transform) of every variant of `task_id`, the untransformed one first, and notes."""
    if data_dir is None:
        notes = []
        if model.config.puzzle_emb_ndim > 0:
            notes.append(
                "no --data given: the task runs once with the blank puzzle identifier; an ARC model knows a task "
                "through the embeddings of its variants, so pass the dataset it was trained with"
            )
        return [(0, IDENTITY)], notes
    names = read_identifiers(data_dir)
    prefix = task_id + VARIANT_SEPARATOR
    found = [(i, parse_variant_name(n)[1]) for i, n in enumerate(names) if n == task_id or n.startswith(prefix)]
    if not found:
        raise DataError(
            f"{Path(data_dir) / 'identifiers.json'}: has no task {task_id!r}; an ARC model only knows the tasks whose "
            "demonstrations it was trained on (leave out --data to run it with the blank identifier)"
        )
    largest = max(i for i, _ in found)
    if model.config.puzzle_emb_ndim > 0 and largest >= model.config.num_puzzle_identifiers:
        raise CheckpointError(
            f"{data_dir}: identifier {largest} is beyond the model's {model.config.num_puzzle_identifiers} puzzle "
            "embeddings: the checkpoint was trained on another dataset"
        )
    found.sort(key=lambda v: not v[1].is_identity)
    return found, []


def _solve_arc(
    model: TRM, puzzle: Puzzle, variants: list[tuple[int, Transform]], halting: Halting, batch_size: int
) -> Solution:
    """Run the test input in every variant, map the answers back and vote (trm.eval.arc)."""
    inputs = np.stack([ARC.encode(t.apply(puzzle.grid)) for _, t in variants])
    identifiers = np.array([i for i, _ in variants], dtype=np.int32)
    tick = time.perf_counter()
    runs = _run(model, inputs, identifiers, halting, batch_size)
    wall = time.perf_counter() - tick
    originals = [to_original(p, t) for p, (_, t) in zip(runs.preds, variants)]
    ranked = vote(zip(originals, sigmoid(runs.q_halt).tolist()))
    first = variants[0][1]
    trajectory = [Step(to_original(t, first), float(sigmoid(q))) for t, q in runs.trace]
    answer = ranked[0].grid
    return Solution(
        puzzle=puzzle,
        answer=answer,
        steps=int(runs.steps[0]),
        confidence=ranked[0].confidence,
        trajectory=trajectory,
        max_steps=halting.max_steps,
        halt=halting.mode,
        correct=None if puzzle.label is None else bool(np.array_equal(answer, puzzle.label)),
        attempts=[c.grid for c in ranked[:2]],
        variants=len(variants),
        votes=ranked[0].votes,
        mean_steps=float(runs.steps.mean()),
        answers=[_arc_choice(c.grid, c.confidence, originals, runs) for c in ranked[:2]],
        trajectories=len(variants),
        network_calls=int(runs.steps.sum()) * network_calls_per_step(model.config),
        wall_time_s=wall,
    )


def _arc_choice(grid: np.ndarray, confidence: float, originals: list[np.ndarray], runs: _Runs) -> Choice:
    """A voted ARC candidate, with the steps and index of the most confident variant that gave it."""
    givers = [i for i, o in enumerate(originals) if o.shape == grid.shape and np.array_equal(o, grid)]
    best = max(givers, key=lambda i: runs.q_halt[i])
    return Choice(grid, None, int(runs.steps[best]), confidence, best)


def solve(
    model: TRM | str | os.PathLike,
    puzzle: str | os.PathLike | Puzzle,
    *,
    halt: str | None = None,
    max_steps: int | None = None,
    halt_threshold: float = 0.0,
    data_dir: str | os.PathLike | None = None,
    task_id: str | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    forward_dtype: str | None = None,
    trajectories: int = 1,
    noise: float = 0.0,
    select: str | None = None,
    views: bool = True,
    seed: int = 0,
    answers: int = 1,
    cycles: int | None = None,
) -> list[Solution]:
    """Solve a puzzle with a model (or a checkpoint path): one Solution per question.

    `puzzle` is a Sudoku string, the path of a maze text file or of an ARC task JSON (all its
    test inputs are solved: one Solution each), or a `Puzzle`. `halt` is "adaptive" (stop when
    q_halt > `halt_threshold`, at most `max_steps`, default N_sup), "valid" (Sudoku and Maze:
    stop when q_halt > `halt_threshold` and the answer keeps the puzzle's rules, at most
    `max_steps`) or "fixed" (always `max_steps`); by default "valid" where the task has rules
    to check (Sudoku, Maze) and "adaptive" for ARC.
    For ARC, `data_dir` is the dataset the model was trained with (its identifiers.json).
    `forward_dtype` overrides the checkpoint's dtype and `cycles` its T, the recursion cycles per
    supervision step (see `trm.eval.evaluate.resolve_model`).

    Test-time scaling (Sudoku, Maze) is asked for by `trajectories` > 1, `noise` > 0, a `select`
    rule or `answers` > 1: the puzzle runs as `trajectories` trajectories (`trm.eval.trajectories`;
    `views`, `noise` and `seed` say how they differ), `select` ("verify" by default, "halt" or
    "vote") chooses the answer, and up to `answers` distinct answers that keep the rules come
    back. `halt` is the rule of one plain run and is refused with these; `batch_size` is the
    trajectories stepping together.
    """
    if halt is not None:
        check_halt_mode(halt)
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"max_steps must be at least 1, got {max_steps}")
    if answers < 1:
        raise ConfigError(f"answers must be at least 1, got {answers}")
    scaling = trajectories > 1 or noise > 0 or select is not None or answers > 1
    if scaling and halt is not None:
        raise ConfigError(
            f"--halt {halt} is the halting rule of one plain run; with --trajectories, --noise, --select or "
            "--answers every trajectory stops at its first answer that keeps the rules (or when its halting "
            "head says so, for --select halt and vote), and --select chooses the answer: leave out --halt"
        )
    check_device(device)
    model, checkpoint = resolve_model(model, device, forward_dtype, cycles)
    task = model_task(model, checkpoint)
    if scaling and not task.has_rules:
        raise ConfigError(
            f"{task.title} has no rules to check answers by and keeps its own voting over the task's variants: "
            "--trajectories, --noise, --select and --answers are for Sudoku and Maze"
        )
    puzzles = read_puzzles(puzzle, task_id)
    for p in puzzles:
        check_puzzle_fits(p, task, model.config, checkpoint)
    steps = max_steps or model.config.N_sup
    if scaling:
        plan = Plan(trajectories, select or "verify", noise, views, steps, halt_threshold, answers, seed, batch_size)
        plan.check(task)
        return [solve_scaled(model, p, plan) for p in puzzles]
    halt = halt or ("valid" if task.has_rules else "adaptive")
    check_halt_mode(halt, task)
    halting = Halting(halt, steps, halt_threshold, task)
    if task.has_rules:
        return [_solve_grid(model, p, halting) for p in puzzles]
    if data_dir is not None and puzzles[0].arc_task is None:
        raise ConfigError("an ARC Puzzle needs its task id (Puzzle.arc_task) to find its variants in data_dir")
    variants, notes = arc_variants(model, puzzles[0].arc_task, data_dir)
    solutions = [_solve_arc(model, p, variants, halting, batch_size) for p in puzzles]
    for s in solutions:
        s.notes += notes
    return solutions
