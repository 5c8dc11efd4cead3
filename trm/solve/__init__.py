"""Inference on one puzzle: `solve` (answer, steps used, halting confidence) and its pictures."""

from trm.solve.puzzles import read_puzzles
from trm.solve.solve import Solution, Step, solve
from trm.tasks import Puzzle

__all__ = ["Puzzle", "Solution", "Step", "read_puzzles", "solve"]
