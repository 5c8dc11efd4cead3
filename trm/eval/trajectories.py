"""Test-time scaling: many trajectories per puzzle, one answer (or several) chosen from them.

A trajectory is one run of supervision steps from the initial state on one view of a puzzle.
Trajectory 0 is the puzzle as given, run as `run_steps` runs it. Trajectory j >= 1 runs on a
random symmetry of the task (`Task.draw_symmetries`) when `views` is on, and with Gaussian
noise of standard deviation `noise` added to z before every supervision step when it is above
0; its answers are mapped back through the symmetry's inverse before anything compares them.

How a puzzle's answer is chosen (`select`):

- "verify" (tasks with rules: Sudoku, Maze): an answer that keeps the rules. A trajectory
  stops at its first valid answer and the puzzle once it has `answers` distinct valid ones;
  a trajectory without one runs to the step limit. Trajectories beyond the first start only
  for puzzles still unsolved, doubling (1, 2, 4, ... K), so the accuracy at every power of two
  below K is what a run with that K gives. With no valid answer at all: as "halt".
- "halt": every trajectory runs until its halting head says so (q_halt > `halt_threshold`,
  `wants_to_halt`) or the step limit; the answer with the highest q_halt wins.
- "vote": as "halt", then the answer most trajectories give, ties broken by mean q_halt.

Trajectories of all puzzles share batches: a pool of at most `batch_size` rows takes one
supervision step at a time, finished trajectories leave it and waiting ones take their places,
so compute follows difficulty. Each step's wall time is shared out over the puzzles whose
rows were in it, which gives every puzzle its own compute time. On a CPU, where freed memory
is kept for the next step (`trm.backends.reuse_freed_memory`), the heap is trimmed every
`TRIM_EVERY` steps: the pool's shapes change from step to step and the kept heap would grow.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from trm.backends import trim_freed_memory
from trm.config import HALT_THRESHOLD, SELECT_RULES
from trm.errors import ConfigError
from trm.eval.adaptive import wants_to_halt
from trm.model.trm import TRM
from trm.tasks import Symmetry, Task

TRIM_EVERY = 16  # steps between trims of kept CPU memory (trim_freed_memory)


@dataclass(frozen=True)
class Plan:
    """How many trajectories a puzzle gets, how they differ, how long they run and how one
    answer is chosen (see the module docstring)."""

    trajectories: int = 1
    select: str = "verify"
    noise: float = 0.0
    views: bool = True
    max_steps: int | None = None  # None: the model's N_sup
    halt_threshold: float = HALT_THRESHOLD
    answers: int = 1
    seed: int = 0
    batch_size: int = 256

    def check(self, task: Task) -> None:
        """Refuse settings that cannot work for `task`, naming the option."""
        for name in ("trajectories", "max_steps", "answers", "batch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.select not in SELECT_RULES:
            raise ConfigError(f"select must be one of {', '.join(SELECT_RULES)}, got '{self.select}'")
        if not self.noise >= 0:
            raise ConfigError(f"noise must be 0 or more (the standard deviation added to z), got {self.noise}")
        if not task.has_rules:
            raise ConfigError(
                f"{task.title} has no rules to check answers by and keeps its own voting over its dataset's "
                "variants (pass@K): trajectories, noise and select are for Sudoku and Maze"
            )
        if self.trajectories > 1 and not self.views and self.noise == 0:
            raise ConfigError(
                "with views off and no noise every trajectory would repeat the first: give noise > 0 or keep views"
            )


@dataclass
class Trajectory:
    """One trajectory's end: its answer (tokens, in the puzzle's own frame), the steps it ran,
    the q_halt logit of its last step, whether the answer keeps the rules, and whether it ended
    by its own rule (halted, valid or step limit) rather than being cut short because its
    puzzle was decided. `trace` holds every step's (answer, q_halt) when asked for."""

    index: int
    answer: np.ndarray
    steps: int
    q_halt: float
    valid: bool | None
    finished: bool = True
    trace: list[tuple[np.ndarray, float]] | None = None


@dataclass
class Answer:
    """One distinct answer of a puzzle: the trajectories that gave it (`votes`), the q_halt that
    ranks it (the highest; for "vote" the mean) and the most confident trajectory giving it."""

    answer: np.ndarray
    valid: bool | None
    q_halt: float
    votes: int
    trajectory: Trajectory


@dataclass
class Outcome:
    """A puzzle's trajectories (those started, by index), its distinct answers ranked by the rule
    (`answers[0]` is the chosen one), and what it cost."""

    trajectories: list[Trajectory]
    answers: list[Answer]
    sample_steps: int = 0
    compute_s: float = 0.0

    @property
    def chosen(self) -> Answer:
        return self.answers[0]


def rank_answers(trajectories: list[Trajectory], select: str) -> list[Answer]:
    """Distinct answers of `trajectories`, best first by rule `select` (module docstring).

    "verify" ranks the valid answers by their highest q_halt and, when none is valid, all
    answers as "halt" does; "halt" ranks by the highest q_halt; "vote" by the number of
    trajectories, then the mean q_halt.
    """
    groups: dict[bytes, list[Trajectory]] = {}
    for t in trajectories:
        groups.setdefault(np.asarray(t.answer, dtype=np.int64).tobytes(), []).append(t)
    answers = []
    for group in groups.values():
        best = max(group, key=lambda t: t.q_halt)
        q = float(np.mean([t.q_halt for t in group])) if select == "vote" else best.q_halt
        answers.append(Answer(best.answer, best.valid, q, len(group), best))
    if select == "verify" and any(a.valid for a in answers):
        answers = [a for a in answers if a.valid]
    key: Callable[[Answer], tuple] = (lambda a: (a.votes, a.q_halt)) if select == "vote" else (lambda a: (a.q_halt,))
    return sorted(answers, key=key, reverse=True)


def ks_up_to(trajectories: int) -> list[int]:
    """1, 2, 4, ... below `trajectories`, then `trajectories`: the K a run reports accuracy at."""
    ks = [1 << i for i in range(trajectories.bit_length()) if 1 << i < trajectories]
    return [*ks, trajectories]


def _stage_end(started: int, limit: int) -> int:
    """How many trajectories a growing puzzle has after its next stage: twice as many, at most `limit`."""
    return min(2 * started, limit)


@dataclass
class _Puzzle:
    symmetries: list[Symmetry | None]
    started: int = 0
    done: bool = False
    ended: list[Trajectory] = field(default_factory=list)
    sample_steps: int = 0
    compute_s: float = 0.0


class _Pool:
    """The rows stepping together: model state and, per row, its puzzle, trajectory and steps."""

    def __init__(self, model: TRM, device: torch.device) -> None:
        self.model, self.device = model, device
        self.y = self.z = self.inputs = self.ids = None
        self.puzzle = np.zeros(0, dtype=np.int64)
        self.index = np.zeros(0, dtype=np.int64)
        self.steps = np.zeros(0, dtype=np.int64)
        self.tokens = np.zeros((0, 0), dtype=np.int64)  # the rows' inputs (their views), for the rule check
        self.traces: list[list | None] = []

    def __len__(self) -> int:
        return len(self.puzzle)

    def add(self, puzzles: list[int], indices: list[int], tokens: np.ndarray, ids: np.ndarray, trace: bool) -> None:
        y, z = self.model.initial_state(len(puzzles))
        inputs = torch.from_numpy(tokens.astype(np.int32)).to(self.device)
        ids_t = torch.from_numpy(ids.astype(np.int32)).to(self.device)
        if len(self) == 0:
            self.y, self.z, self.inputs, self.ids = y.contiguous(), z.contiguous(), inputs, ids_t
            self.tokens = tokens.astype(np.int64)
        else:
            self.y, self.z = torch.cat([self.y, y]), torch.cat([self.z, z], dim=1)
            self.inputs, self.ids = torch.cat([self.inputs, inputs]), torch.cat([self.ids, ids_t])
            self.tokens = np.concatenate([self.tokens, tokens.astype(np.int64)])
        self.puzzle = np.concatenate([self.puzzle, puzzles])
        self.index = np.concatenate([self.index, indices])
        self.steps = np.concatenate([self.steps, np.zeros(len(puzzles), dtype=np.int64)])
        self.traces += [[] if trace else None for _ in puzzles]

    def keep(self, rows: np.ndarray) -> None:
        """Keep only the rows where `rows` (bool, one per row) is True."""
        if rows.all():
            return
        chosen = torch.from_numpy(np.flatnonzero(rows)).to(self.device)
        self.y, self.z = self.y[chosen], self.z[:, chosen]
        self.inputs, self.ids = self.inputs[chosen], self.ids[chosen]
        self.tokens, self.puzzle, self.index, self.steps = (
            a[rows] for a in (self.tokens, self.puzzle, self.index, self.steps)
        )
        self.traces = [t for t, k in zip(self.traces, rows) if k]


@torch.inference_mode()
def run_trajectories(
    model: TRM,
    task: Task,
    inputs: np.ndarray,
    plan: Plan,
    *,
    identifiers: np.ndarray | None = None,
    keep_traces: bool = False,
    on_done: Callable[[int, Outcome], None] | None = None,
) -> list[Outcome]:
    """Run `plan` on every puzzle of `inputs` ((N, seq_len) tokens of `task`) and return one
    `Outcome` per puzzle, in order. `identifiers` (N,) are the puzzle identifiers (default 0);
    `keep_traces` keeps every step's answer of every trajectory (for pictures); `on_done(i,
    outcome)` is called as each puzzle is decided."""
    plan.check(task)
    inputs = np.asarray(inputs)
    count = len(inputs)
    identifiers = np.zeros(count, dtype=np.int32) if identifiers is None else np.asarray(identifiers)
    device = next(model.parameters()).device
    K, growing = plan.trajectories, plan.select == "verify"
    max_steps = plan.max_steps or model.config.N_sup
    noise = torch.Generator(device=device).manual_seed(plan.seed) if plan.noise > 0 else None

    puzzles = [_Puzzle([None]) for _ in range(count)]
    queue: deque[tuple[int, int]] = deque()
    for p, puzzle in enumerate(puzzles):
        puzzle.started = 1 if growing else K
        queue.extend((p, j) for j in range(puzzle.started))

    def view(p: int, j: int) -> Symmetry | None:
        puzzle = puzzles[p]
        if len(puzzle.symmetries) < K and j > 0 and plan.views:
            rng = np.random.default_rng([plan.seed, p])
            puzzle.symmetries = [None, *task.draw_symmetries(rng, K - 1)]
        return puzzle.symmetries[j] if plan.views and j > 0 else None

    def own_frame(tokens: np.ndarray, symmetry: Symmetry | None) -> np.ndarray:
        """Tokens of a view's answer in the puzzle's own frame, as int64 whatever the task encodes to,
        so that equal answers compare (and group) equal."""
        mapped = tokens if symmetry is None else task.encode(symmetry.invert().apply(task.decode(tokens)))
        return np.array(mapped, dtype=np.int64)  # a copy: a row of the step's predictions would keep them all

    def decide(p: int) -> None:
        puzzle = puzzles[p]
        puzzle.done = True
        outcome = Outcome(
            sorted(puzzle.ended, key=lambda t: t.index),
            rank_answers(puzzle.ended, plan.select),
            puzzle.sample_steps,
            puzzle.compute_s,
        )
        outcomes[p] = outcome
        if on_done is not None:
            on_done(p, outcome)

    outcomes: list[Outcome | None] = [None] * count
    pool = _Pool(model, device)
    pool_steps = 0
    while True:
        # Fill the pool from the queue: waiting trajectories of puzzles not yet decided.
        new: list[tuple[int, int]] = []
        while queue and len(pool) + len(new) < plan.batch_size:
            p, j = queue.popleft()
            if not puzzles[p].done:
                new.append((p, j))
        if new:
            tokens = np.stack(
                [
                    inputs[p] if view(p, j) is None else task.encode(view(p, j).apply(task.decode(inputs[p])))
                    for p, j in new
                ]
            )
            ps = [p for p, _ in new]
            pool.add(ps, [j for _, j in new], tokens, identifiers[ps], keep_traces)
        if len(pool) == 0:
            break

        tick = time.perf_counter()  # the .cpu() calls below wait for the device, so this is its time too
        if noise is not None:
            noisy = torch.from_numpy(pool.index > 0).to(device)
            if noisy.any():
                shape = pool.z.shape
                sample = torch.randn(shape, generator=noise, device=device, dtype=torch.float32)
                pool.z = pool.z + (plan.noise * sample * noisy[None, :, None, None]).to(pool.z.dtype)
        data = {"inputs": pool.inputs, "puzzle_identifiers": pool.ids}
        pool.y, pool.z, out = model.supervision_step(pool.y, pool.z, data)
        pool_steps += 1
        if device.type == "cpu" and pool_steps % TRIM_EVERY == 0:
            trim_freed_memory()
        preds = out.logits.argmax(-1).cpu().numpy()
        q_halt = out.q_halt.float().cpu().numpy()
        pool.steps += 1
        at_limit = pool.steps >= max_steps
        if growing:
            valid = task.validity(pool.tokens, preds)
            ends = valid | at_limit
        else:  # rows only end here, never cut short: only their answers need the rule check
            ends = wants_to_halt(model.config, out, plan.halt_threshold).cpu().numpy() | at_limit
            valid = np.zeros(len(pool), dtype=bool)
            valid[ends] = task.validity(pool.tokens[ends], preds[ends]) if ends.any() else []
        if keep_traces:
            for r, trace in enumerate(pool.traces):
                trace.append((own_frame(preds[r], view(pool.puzzle[r], pool.index[r])), float(q_halt[r])))

        # Trajectories that ended, then the puzzles they decide or grow.
        touched = set()
        for r in np.flatnonzero(ends):
            p, j = int(pool.puzzle[r]), int(pool.index[r])
            answer = own_frame(preds[r], view(p, j))
            is_valid = bool(valid[r])
            puzzles[p].ended.append(
                Trajectory(j, answer, int(pool.steps[r]), float(q_halt[r]), is_valid, trace=pool.traces[r])
            )
            touched.add(p)
        for p in touched:
            puzzle = puzzles[p]
            # All its trajectories so far have ended (not only those in the pool: with a small
            # batch some may still wait in the queue).
            stage_over = len(puzzle.ended) == puzzle.started
            if growing:
                distinct = {t.answer.tobytes() for t in puzzle.ended if t.valid}
                if len(distinct) >= plan.answers:
                    decide(p)
                elif stage_over and puzzle.started < K:
                    end = _stage_end(puzzle.started, K)
                    queue.extendleft((p, j) for j in reversed(range(puzzle.started, end)))
                    puzzle.started = end
                elif stage_over:
                    decide(p)
            elif stage_over:
                decide(p)

        # Rows of decided puzzles still running are cut short; they keep their last answer.
        decided = np.array([puzzles[p].done for p in pool.puzzle]) & ~ends
        for r in np.flatnonzero(decided):
            p, j = int(pool.puzzle[r]), int(pool.index[r])
            answer = own_frame(preds[r], view(p, j))
            is_valid = bool(valid[r])
            outcomes[p].trajectories.append(
                Trajectory(
                    j, answer, int(pool.steps[r]), float(q_halt[r]), is_valid, finished=False, trace=pool.traces[r]
                )
            )
            outcomes[p].trajectories.sort(key=lambda t: t.index)

        seconds = time.perf_counter() - tick
        share = seconds / len(pool)
        for p, rows in zip(*np.unique(pool.puzzle, return_counts=True)):
            puzzles[p].sample_steps += int(rows)
            puzzles[p].compute_s += share * int(rows)
            if outcomes[p] is not None:  # decided in this step: its outcome gets this step's cost too
                outcomes[p].sample_steps, outcomes[p].compute_s = puzzles[p].sample_steps, puzzles[p].compute_s
        pool.keep(~(ends | decided))
    return outcomes  # type: ignore[return-value]
