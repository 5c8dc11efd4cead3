"""Metrics: the loss head's definitions, per-step exact accuracy, validity by the rules."""

import numpy as np
import pytest

from tests.eval.fixtures import MAZE, MAZE_PATH, PUZZLE, SOLUTION, maze_grid
from trm.data import maze, sudoku
from trm.eval.metrics import (
    IGNORE_LABEL_ID,
    PROBLEMS,
    MetricTotals,
    maze_validity,
    sudoku_problems,
    sudoku_validity,
    task_for,
)


def digits(text: str) -> np.ndarray:
    return np.array([0 if c == "." else int(c) for c in text], dtype=np.int8)


def test_tasks_are_recognised_by_vocabulary_and_length():
    assert task_for(11, 81) == "sudoku"
    assert task_for(6, 900) == "maze" and task_for(6, 25) == "maze"
    assert task_for(12, 900) == "arc"
    assert task_for(6, 24) is None and task_for(11, 16) is None


def test_totals_follow_the_loss_head_and_skip_padding():
    labels = np.array([[1, 2, 3], [1, 2, 3], [1, IGNORE_LABEL_ID, 3], [IGNORE_LABEL_ID] * 3])
    preds = np.array([[1, 2, 3], [1, 0, 0], [1, 0, 3], [0, 0, 0]])
    q_halt = np.array([1.0, 1.0, -1.0, 5.0])
    steps = np.array([2, 4, 4, 4])
    by_step = np.array([[False, False, True, True], [True, False, True, True]])
    totals = MetricTotals(max_steps=2)
    totals.update(labels, preds, q_halt, steps, by_step)
    s = totals.summary()
    assert totals.count == 3  # the all-ignored padding row does not count
    assert s["exact_accuracy"] == pytest.approx(2 / 3)
    assert s["token_accuracy"] == pytest.approx((1 + 1 / 3 + 1) / 3)
    assert s["halting_accuracy"] == pytest.approx(1 / 3)  # q >= 0 agrees with exactness for row 0 only
    assert s["mean_steps"] == pytest.approx(10 / 3)
    assert s["exact_accuracy_per_step"] == pytest.approx([1 / 3, 2 / 3])
    assert s["valid_rate"] is None


def test_validity_counts_valid_answers_that_differ_from_the_label():
    labels = np.array([[1, 2], [1, 2], [1, 2]])
    preds = np.array([[1, 2], [2, 1], [0, 0]])
    totals = MetricTotals(max_steps=1, check_validity=True)
    totals.update(labels, preds, np.zeros(3), np.ones(3), np.zeros((1, 3), bool), valid=np.array([True, True, False]))
    assert totals.summary()["valid_rate"] == pytest.approx(2 / 3)
    assert totals.summary()["valid_not_label_rate"] == pytest.approx(1 / 3)


def test_sudoku_validity_accepts_solutions_and_rejects_broken_answers():
    puzzle, solution = sudoku.encode(digits(PUZZLE)), sudoku.encode(digits(SOLUTION))
    repeated = solution.copy()
    repeated[[2, 3]] = repeated[[3, 2]]  # two cells of one row swapped: columns now repeat digits
    changed_given = sudoku.encode(
        sudoku.SudokuTransform(np.array([0, 2, 1, 3, 4, 5, 6, 7, 8, 9]), np.arange(9), np.arange(9), False).apply(
            digits(SOLUTION)
        )
    )
    blank = solution.copy()
    blank[40] = 1  # token 1 = digit 0, a blank
    padded = solution.copy()
    padded[0] = 0
    answers = np.stack([solution, repeated, changed_given, blank, padded])
    assert sudoku_validity(np.repeat(puzzle[None], 5, 0), answers).tolist() == [True, False, False, False, False]


def test_a_different_valid_sudoku_counts_as_valid_without_givens_in_the_way():
    empty = np.ones((1, 81), dtype=np.uint8)  # all blanks: any solution is valid
    relabelled = sudoku.SudokuTransform(np.array([0, 2, 1, 3, 4, 5, 6, 7, 8, 9]), np.arange(9), np.arange(9), True)
    other = sudoku.encode(relabelled.apply(digits(SOLUTION)))[None]
    assert sudoku_validity(empty, other).tolist() == [True]


def test_maze_validity_rejects_broken_paths_and_accepts_any_shortest_one():
    question, answer = maze_grid(MAZE), maze_grid(MAZE_PATH)
    through_wall = answer.copy()
    through_wall[0, 4] = maze.PATH
    gap = answer.copy()
    gap[2, 2] = maze.OPEN
    moved_goal = answer.copy()
    moved_goal[4, 4] = maze.OPEN
    cases = np.stack([answer, through_wall, gap, moved_goal, question])
    assert maze_validity(np.repeat(question[None], 5, 0).reshape(5, -1), cases.reshape(5, -1)).tolist() == [
        True,
        False,
        False,
        False,
        False,
    ]
    # An open square gives several shortest paths; any of them is valid.
    square = maze_grid(["S  ##", "  G##", "#####", "#####", "#####"])
    upper = maze_grid(["Soo##", "  G##", "#####", "#####", "#####"])
    lower = maze_grid(["S  ##", "ooG##", "#####", "#####", "#####"])
    valid = maze_validity(np.stack([square, square]).reshape(2, -1), np.stack([upper, lower]).reshape(2, -1))
    assert valid.tolist() == [True, True]


def test_sudoku_problems_name_the_rule_broken():
    puzzle, solution = sudoku.encode(digits(PUZZLE)), sudoku.encode(digits(SOLUTION))
    changed = solution.copy()
    changed[13] = solution[13] % 9 + 2  # r2c5, a given 9 in PUZZLE
    repeated = solution.copy()
    repeated[[2, 3]] = repeated[[3, 2]]  # r1c3 and r1c4, both blanks in PUZZLE: columns 3 and 4 repeat
    blank = solution.copy()
    blank[[40, 42]] = 1  # token 1 = digit 0, at two blanks of PUZZLE
    answers = np.stack([solution, changed, repeated, blank])
    problems = sudoku_problems(np.repeat(puzzle[None], 4, 0), answers)
    assert problems == [
        None,
        "the given 9 at row 2, column 5 became 2",
        "column 3 repeats 6, column 4 repeats 4, box 1 repeats 6 and 1 more",
        "2 cell(s) left blank, the first at row 5, column 5",
    ]


def test_the_verdict_with_reasons_agrees_with_the_data_module_and_the_validity_rate():
    rng = np.random.default_rng(0)
    puzzle, solution = digits(PUZZLE), digits(SOLUTION)
    grids = np.repeat(solution[None], 200, 0)
    for k, grid in enumerate(grids[1:]):  # one to three random cells changed, some to blank
        cells = rng.choice(81, size=1 + k % 3, replace=False)
        grid[cells] = rng.integers(0, 10, size=len(cells))
    inputs, preds = np.repeat(sudoku.encode(puzzle)[None], 200, 0), sudoku.encode(grids)
    reasons = sudoku_problems(inputs, preds)
    expected = [sudoku.is_valid_solution(g, puzzle) for g in grids]
    assert [r is None for r in reasons] == expected == sudoku_validity(inputs, preds).tolist()
    assert PROBLEMS["maze"] is maze.path_errors  # one rule check per task, shared with trm solve
