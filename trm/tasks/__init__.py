"""The puzzle tasks (Sudoku, Maze, ARC) behind one small interface; numpy only, no torch.

Everything that differs between tasks lives in its module and is reached through `Task`:
data builders, evaluation, `trm solve` and the pictures ask the task rather than compare its
name. `TASKS` is the explicit registry; `task_for` finds a model's task from its vocabulary
and sequence length (trm-spec section 1).

Grids are what a task's `decode` gives and its `encode` takes: Sudoku digits (9, 9) with
0 = blank, maze tokens (N, N), ARC colours (up to 30x30). Tokens are flat (seq_len,) rows; the
batched rule checks take (B, seq_len) tokens of questions and answers.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from trm.tasks.arc import ARC
from trm.tasks.common import Cells, Puzzle
from trm.tasks.maze import MAZE
from trm.tasks.sudoku import SUDOKU


class Symmetry(Protocol):
    """A symmetry of a task: maps grids (the task's decoded form; Sudoku and Maze also take a
    batch with leading axes) to grids of the same puzzle up to relabelling, and can be undone.
    For a task with rules, a valid answer stays valid under every symmetry."""

    def apply(self, grids: np.ndarray) -> np.ndarray: ...

    def invert(self) -> Symmetry: ...


class Task(Protocol):
    """One kind of puzzle.

    - `name` is the registry key (and the `task` field of evaluation reports), `title` what
      people read; `vocab_size` the model's vocabulary; `cell_pixels` the picture's cell size
      (None: scaled to the grid).
    - `parse(text, where)` reads a puzzle as a user writes it, raising `trm.errors.DataError`
      that names `where` and what is wrong.
    - `encode(grid)` gives the (seq_len,) tokens, `decode(tokens)` the grid back.
    - `has_rules` says whether answers can be checked without a label. If so, `verify(puzzle,
      answer)` gives the rule the answer breaks, in words, or None; `validity(inputs, preds)`
      and `problems(inputs, preds)` do the same for (B, seq_len) tokens ((B,) bools, B reasons).
      ARC has none of the three (they are None).
    - `one_line(grid)` is an answer as one line of text to paste elsewhere (None: no such form);
      `json_form(grid)` the grid as `trm solve --json` writes it (Sudoku's 81 digits, a maze's
      lines, ARC's rows of colours).
    - `draw_symmetry(rng)` draws a random `Symmetry` from a numpy Generator;
      `draw_symmetries(rng, count)` draws `count` for the views of test-time scaling, all
      different from the identity and from each other as far as the task has enough; the
      first m of them are what `count` = m draws (a run with fewer trajectories is a prefix).
    - `terminal_lines` and `cells` draw a grid of a puzzle (`previous`: the grid one step
      before, to show what changed) as text and for the shared picture renderer.
    """

    name: str
    title: str
    has_rules: bool
    vocab_size: int
    cell_pixels: int | None

    def fits(self, vocab_size: int, seq_len: int) -> bool: ...

    def parse(self, text: str, where: str) -> Puzzle: ...

    def encode(self, grid: np.ndarray) -> np.ndarray: ...

    def decode(self, tokens: np.ndarray) -> np.ndarray: ...

    def verify(self, puzzle: Puzzle, answer: np.ndarray) -> str | None: ...

    def validity(self, inputs: np.ndarray, preds: np.ndarray) -> np.ndarray: ...

    def problems(self, inputs: np.ndarray, preds: np.ndarray) -> list[str | None]: ...

    def one_line(self, grid: np.ndarray) -> str | None: ...

    def json_form(self, grid: np.ndarray) -> str | list: ...

    def draw_symmetry(self, rng: np.random.Generator) -> Symmetry: ...

    def draw_symmetries(self, rng: np.random.Generator, count: int) -> list[Symmetry]: ...

    def terminal_lines(
        self, puzzle: Puzzle, grid: np.ndarray, previous: np.ndarray | None = None, colour: bool = True
    ) -> list[str]: ...

    def cells(self, puzzle: Puzzle, grid: np.ndarray, previous: np.ndarray | None = None) -> Cells: ...


TASKS: dict[str, Task] = {"sudoku": SUDOKU, "maze": MAZE, "arc": ARC}


def task_for(vocab_size: int, seq_len: int) -> Task | None:
    """The task a vocabulary and sequence length belong to (trm-spec section 1), or None."""
    return next((task for task in TASKS.values() if task.fits(vocab_size, seq_len)), None)


__all__ = ["ARC", "MAZE", "SUDOKU", "TASKS", "Cells", "Puzzle", "Symmetry", "Task", "task_for"]
