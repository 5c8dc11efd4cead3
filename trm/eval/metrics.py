"""Evaluation metrics, accumulated batch by batch (trm-spec section 4, "Metrics").

The definitions are those of the training loss head (`trm.model.loss.act_loss`) on the
step each sample stopped at: token accuracy is the mean over samples of the share of their
labelled tokens predicted right, exact accuracy the share of samples whose every labelled
token is right, halting accuracy the share where (q_halt >= 0) agrees with exactness.
Samples without labelled tokens (batch padding) do not count.

Two additions: exact accuracy after every supervision step (a sample that has halted keeps
its answer for the remaining steps), and for Sudoku and Maze the share of predictions that
are valid by the puzzle's rules. A valid answer that differs from the label is counted
apart, which makes label ambiguity visible (puzzles with several solutions or several
shortest paths).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from trm.data import arc, maze, sudoku

if TYPE_CHECKING:
    import torch

IGNORE_LABEL_ID = -100
TASK_NAMES = {"sudoku": "Sudoku 9x9", "maze": "Maze", "arc": "ARC"}


def task_for(vocab_size: int, seq_len: int) -> str | None:
    """The task a vocabulary and sequence length belong to (trm-spec section 1), or None."""
    if (vocab_size, seq_len) == (sudoku.VOCAB_SIZE, sudoku.SEQ_LEN):
        return "sudoku"
    if (vocab_size, seq_len) == (arc.VOCAB_SIZE, arc.SEQ_LEN):
        return "arc"
    if vocab_size == maze.VOCAB_SIZE and math.isqrt(seq_len) ** 2 == seq_len:
        return "maze"
    return None


def exact_match(preds: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """(B,) whether every labelled token of each row is predicted right (numpy or torch)."""
    return ((preds == labels) | (labels == IGNORE_LABEL_ID)).all(-1)


def _sudoku_faults(inputs: np.ndarray, preds: np.ndarray) -> tuple[np.ndarray, ...]:
    """The rules of Sudoku checked on (B, 81) tokens: for each answer, the givens it changed
    (B, 81), the cells it left blank (B, 81), and the digits each row, column and box repeats
    (B, 27, 9; units 0-8 rows, 9-17 columns, 18-26 boxes)."""
    puzzles = sudoku.decode(inputs).reshape(-1, 9, 9)
    grids = sudoku.decode(preds).reshape(-1, 9, 9)
    changed = (puzzles != 0) & (grids != puzzles)
    blank = grids == 0
    one_hot = grids[..., None] == np.arange(1, 10)  # (B, row, column, digit)
    boxes = one_hot.reshape(-1, 3, 3, 3, 3, 9).sum((2, 4)).reshape(-1, 9, 9)
    repeats = np.concatenate([one_hot.sum(2), one_hot.sum(1), boxes], axis=1) > 1
    return changed.reshape(-1, 81), blank.reshape(-1, 81), repeats


def sudoku_validity(inputs: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """(B,) whether each prediction is a complete Sudoku solution keeping the givens: no given
    changed, no cell blank, and no row, column or box repeating a digit (so each holds 1-9)."""
    return ~np.any([fault.reshape(len(fault), -1).any(-1) for fault in _sudoku_faults(inputs, preds)], axis=0)


def _cell(index: int) -> str:
    return f"row {index // 9 + 1}, column {index % 9 + 1}"


def sudoku_problems(inputs: np.ndarray, preds: np.ndarray) -> list[str | None]:
    """For each prediction ((B, 81) tokens), the first Sudoku rule it breaks in words, or None."""
    changed, blank, repeats = _sudoku_faults(inputs, preds)
    puzzles, grids = sudoku.decode(inputs).reshape(-1, 81), sudoku.decode(preds).reshape(-1, 81)
    unit_names = ["row"] * 9 + ["column"] * 9 + ["box"] * 9
    problems: list[str | None] = []
    for k in range(len(grids)):
        if changed[k].any():
            cell = int(np.flatnonzero(changed[k])[0])
            now = "a blank" if grids[k, cell] == 0 else str(grids[k, cell])
            problems.append(f"the given {puzzles[k, cell]} at {_cell(cell)} became {now}")
        elif repeats[k].any():
            broken = [f"{unit_names[u]} {u % 9 + 1} repeats {d + 1}" for u, d in np.argwhere(repeats[k])]
            more = f" and {len(broken) - 3} more" if len(broken) > 3 else ""
            problems.append(", ".join(broken[:3]) + more)
        elif blank[k].any():
            cells = np.flatnonzero(blank[k])
            problems.append(f"{len(cells)} cell(s) left blank, the first at {_cell(int(cells[0]))}")
        else:
            problems.append(None)
    return problems


def maze_validity(inputs: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """(B,) whether each prediction marks a shortest S->G path (any one of them)."""
    return np.array([problem is None for problem in maze.path_errors(inputs, preds)], dtype=bool)


# The rules of each task with a verifier, checked on (B, L) tokens of the questions and the
# answers: every report of validity, `trm solve`'s verdict and valid halting use these.
VALIDITY = {"sudoku": sudoku_validity, "maze": maze_validity}
PROBLEMS = {"sudoku": sudoku_problems, "maze": maze.path_errors}


def rules_check(task: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """(inputs, preds) tokens of a batch on any device -> (B,) whether each answer keeps the
    task's rules, on that device: the acceptance test of valid halting (`run_steps`)."""
    import torch

    validity = VALIDITY[task]

    def keeps_the_rules(inputs: torch.Tensor, preds: torch.Tensor) -> torch.Tensor:
        valid = validity(inputs.cpu().numpy(), preds.cpu().numpy())
        return torch.from_numpy(valid).to(inputs.device)

    return keeps_the_rules


@dataclass
class MetricTotals:
    """Sums over the evaluated samples; `summary()` turns them into rates."""

    max_steps: int
    check_validity: bool = False
    count_capped: bool = False
    count: int = 0
    token_accuracy: float = 0.0
    exact: int = 0
    halting_correct: int = 0
    steps: int = 0
    capped: int = 0
    valid: int = 0
    valid_not_label: int = 0
    exact_per_step: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.exact_per_step = np.zeros(self.max_steps, dtype=np.int64)

    def update(
        self,
        labels: np.ndarray,
        preds: np.ndarray,
        q_halt: np.ndarray,
        steps: np.ndarray,
        exact_by_step: np.ndarray,
        valid: np.ndarray | None = None,
    ) -> None:
        """Add a batch: labels and final preds (B, L), q_halt and steps (B,), exact_by_step
        (max_steps, B) and, when checked, validity (B,)."""
        mask = labels != IGNORE_LABEL_ID
        counted = mask.any(-1)
        exact = exact_match(preds, labels) & counted
        right = (mask & (preds == labels)).sum(-1) / np.maximum(mask.sum(-1), 1)
        self.count += int(counted.sum())
        self.token_accuracy += float(right[counted].sum())
        self.exact += int(exact.sum())
        self.halting_correct += int(((q_halt >= 0) == exact)[counted].sum())
        self.steps += int(steps[counted].sum())
        self.capped += int((steps[counted] >= self.max_steps).sum())
        self.exact_per_step += (exact_by_step & counted).sum(-1)
        if valid is not None:
            self.valid += int((valid & counted).sum())
            self.valid_not_label += int((valid & counted & ~exact).sum())

    def summary(self) -> dict[str, float | list[float] | None]:
        n = max(self.count, 1)
        return {
            "exact_accuracy": self.exact / n,
            "token_accuracy": self.token_accuracy / n,
            "halting_accuracy": self.halting_correct / n,
            "mean_steps": self.steps / n,
            "exact_accuracy_per_step": (self.exact_per_step / n).tolist(),
            "capped_rate": self.capped / n if self.count_capped else None,
            "valid_rate": self.valid / n if self.check_validity else None,
            "valid_not_label_rate": self.valid_not_label / n if self.check_validity else None,
        }
