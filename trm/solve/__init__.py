"""Inference on one puzzle: `solve` (answer, steps used, halting confidence) and its pictures."""

from trm.solve.puzzles import read_puzzles
from trm.solve.solution import Choice, Solution, Step
from trm.solve.solve import solve
from trm.tasks import Puzzle

__all__ = ["Choice", "Puzzle", "Solution", "Step", "read_puzzles", "solve"]
