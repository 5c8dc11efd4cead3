"""Inference on one puzzle: `solve` (answer, steps used, halting confidence) and its pictures."""

from trm.solve.solve import Puzzle, Solution, Step, read_puzzles, solve

__all__ = ["Puzzle", "Solution", "Step", "read_puzzles", "solve"]
