"""What every task shares: a puzzle as the user sees it, how a grid is drawn, terminal colours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from trm.tasks import Task

RGB = tuple[int, int, int]


@dataclass
class Puzzle:
    """A question as the user sees it.

    `grid` is what the task's `decode` gives: Sudoku digits (9x9, 0 = blank), maze tokens
    (NxN) or ARC colours; `label` the answer when the source gives it (ARC test outputs),
    `arc_task` the ARC task id the puzzle belongs to.
    """

    task: Task
    grid: np.ndarray
    name: str
    label: np.ndarray | None = None
    arc_task: str | None = None


@dataclass(frozen=True)
class Cells:
    """A grid as the shared picture renderer draws it: a fill colour per cell, optional text
    per cell ('' for none) in a colour per cell, an outline round each cell, and heavier lines
    every `box` cells (Sudoku's 3x3 boxes; 0 for none)."""

    fill: list[list[RGB]]
    text: list[list[str]] | None = None
    text_colour: list[list[RGB]] | None = None
    outline: RGB | None = None
    box: int = 0


# Terminal colours (24-bit ANSI), for the tasks' terminal renderings.
RESET = "\x1b[0m"


def fg(rgb: RGB, bold: bool = False) -> str:
    return f"\x1b[{'1;' if bold else ''}38;2;{rgb[0]};{rgb[1]};{rgb[2]}m"


def bg(rgb: RGB) -> str:
    return f"\x1b[48;2;{rgb[0]};{rgb[1]};{rgb[2]}m"
