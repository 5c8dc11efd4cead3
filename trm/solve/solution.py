"""What solving one puzzle gives back: the answer, its steps, and the other answers found."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from trm.eval.trajectories import Plan
from trm.tasks import Puzzle


@dataclass
class Step:
    """The answer after one supervision step, and the halting confidence sigmoid(q_halt) then."""

    answer: np.ndarray
    confidence: float


@dataclass
class Choice:
    """One distinct answer: the grid, whether it keeps the rules (None: no rules, ARC), the steps
    and confidence sigmoid(q_halt) of the trajectory (ARC: variant) that gave it, and its index."""

    answer: np.ndarray
    valid: bool | None
    steps: int
    confidence: float
    trajectory: int


@dataclass
class Solution:
    """The model's answer to one puzzle (one ARC test input).

    For ARC, `answer` and `attempts` are the voted top candidates over `variants` variants,
    `confidence` the mean confidence of the winner; `steps` and `trajectory` are those of the
    untransformed variant, `mean_steps` the mean over all variants.

    `answers` are the distinct answers given back, the chosen one (`answer`) first: with test-time
    scaling (`plan` set) up to `plan.answers` of them, the others keeping the rules; one for a
    plain run; ARC's voted attempts. `trajectories` counts the trajectories (ARC: variants) run,
    `trajectory_index` the one `answer` and `trajectory` come from, `network_calls` the calls of
    the network over all of them and `wall_time_s` the time the model took.
    """

    puzzle: Puzzle
    answer: np.ndarray
    steps: int
    confidence: float
    trajectory: list[Step]
    max_steps: int = 0  # the step cap it ran under
    halt: str = ""  # the halting rule it ran under: "fixed", "adaptive", "valid"; scaled: the select rule
    valid: bool | None = None  # Sudoku and Maze: a valid answer by the rules
    problem: str | None = None  # why it is not valid
    correct: bool | None = None  # whether it equals the known answer
    attempts: list[np.ndarray] = field(default_factory=list)
    variants: int = 1
    votes: int = 1
    mean_steps: float = 0.0
    notes: list[str] = field(default_factory=list)
    answers: list[Choice] = field(default_factory=list)
    trajectories: int = 1
    trajectory_index: int = 0
    network_calls: int = 0
    wall_time_s: float = 0.0
    plan: Plan | None = None  # the test-time scaling plan it ran under; None: one plain run


__all__ = ["Choice", "Solution", "Step"]
