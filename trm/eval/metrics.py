"""Evaluation metrics, accumulated batch by batch (trm-spec section 4, "Metrics").

The definitions are those of the training loss head (`trm.model.loss.act_loss`) on the
step each sample stopped at: token accuracy is the mean over samples of the share of their
labelled tokens predicted right, exact accuracy the share of samples whose every labelled
token is right, halting accuracy the share where (q_halt >= 0) agrees with exactness.
Samples without labelled tokens (batch padding) do not count.

Two additions: exact accuracy after every supervision step (a sample that has halted keeps
its answer for the remaining steps), and for tasks with rules (Sudoku, Maze) the share of
predictions that are valid by the puzzle's rules (`trm.tasks`). A valid answer that differs from the label is counted
apart, which makes label ambiguity visible (puzzles with several solutions or several
shortest paths).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from trm.config import IGNORE_LABEL_ID
from trm.tasks import Task

if TYPE_CHECKING:
    import torch


def exact_match(preds: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """(B,) whether every labelled token of each row is predicted right (numpy or torch)."""
    return ((preds == labels) | (labels == IGNORE_LABEL_ID)).all(-1)


def rules_check(task: Task) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """(inputs, preds) tokens of a batch on any device -> (B,) whether each answer keeps the
    task's rules (`task.validity`, which needs `task.has_rules`), on that device: the
    acceptance test of valid halting (`run_steps`)."""
    import torch

    validity = task.validity

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
