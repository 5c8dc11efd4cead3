"""Rendering: terminal text with and without colour, PNG contact sheets and animated GIFs."""

import numpy as np
import pytest
from PIL import Image

from tests.eval.fixtures import MAZE, PUZZLE, SOLUTION, maze_grid
from trm.errors import ConfigError
from trm.solve import Puzzle, Solution, Step
from trm.solve.render import format_solution, format_steps, save_picture, side_by_side, visible_width
from trm.tasks import ARC, SUDOKU, maze
from trm.tasks import MAZE as MAZE_TASK
from trm.tasks.arc import COLOURS as ARC_COLOURS
from trm.tasks.sudoku import terminal_lines as sudoku_lines


def digits(text: str) -> np.ndarray:
    return np.array([0 if c == "." else int(c) for c in text], dtype=np.int8).reshape(9, 9)


def sudoku_solution() -> Solution:
    answer = digits(SOLUTION)
    wrong = answer.copy()
    wrong[0, 2] = wrong[0, 3]
    trajectory = [Step(wrong, 0.1), Step(answer, 0.9)]
    return Solution(
        SUDOKU.parse(PUZZLE), answer, steps=2, confidence=0.9, trajectory=trajectory, valid=True, attempts=[answer]
    )


def test_plain_text_shows_puzzle_answer_steps_and_confidence():
    text = format_solution(sudoku_solution(), colour=False)
    assert "\x1b[" not in text
    assert "5 3 . | . 7 . | . . .   5 3 4 | 6 7 8 | 9 1 2" in text
    assert "steps used: 2   halting confidence: 0.900" in text
    assert "valid solution: yes" in text and f"answer: {SOLUTION}" in text


def test_colour_marks_givens_changes_and_conflicts():
    solution = sudoku_solution()
    wrong, right = (step.answer for step in solution.trajectory)
    lines = sudoku_lines(right, solution.puzzle.grid, previous=wrong, colour=True)
    assert all(visible_width(line) == 21 for line in lines)
    conflicted = sudoku_lines(wrong, solution.puzzle.grid, colour=True)[0]
    assert "\x1b[1;38;2;255;80;80m" in conflicted  # the repeated digit is red
    changed = "\x1b[1;38;2;255;210;0m4"  # the cell that changed to 4 is yellow
    assert changed in lines[0]


def test_steps_wrap_to_the_terminal_width():
    text = format_steps(sudoku_solution(), colour=False, width=30)
    lines = text.splitlines()
    assert lines[0].strip() == "step 1 (0.10)" and "step 2 (0.90)" in text
    assert max(len(line) for line in lines) <= 30


def test_side_by_side_pads_by_visible_width():
    text = side_by_side([("a", ["\x1b[31mxx\x1b[0m"]), ("b", ["y"])], gap=1, width=80)
    assert text.splitlines()[1] == "\x1b[31mxx\x1b[0m y"


def test_maze_and_arc_text():
    grid = maze_grid(MAZE)
    path = grid.copy()
    path[0, 1:4] = maze.PATH
    solution = Solution(
        Puzzle(MAZE_TASK, grid, "maze.txt"),
        path,
        1,
        0.5,
        [Step(path, 0.5)],
        valid=False,
        problem="the marked cells do not connect S to G",
    )
    text = format_solution(solution, colour=False)
    assert "Sooo#" in text and "NOT a solution: the marked cells do not connect S to G" in text
    arc_grid = np.array([[0, 1], [2, 3]], np.uint8)
    arc = Solution(
        Puzzle(ARC, arc_grid, "task t", label=arc_grid),
        arc_grid,
        1,
        0.7,
        [Step(arc_grid, 0.7)],
        correct=True,
        attempts=[arc_grid, arc_grid + 1],
    )
    plain = format_solution(arc, colour=False)
    assert "01" in plain and "attempt 1 yes, attempt 2 no" in plain
    r, g, b = ARC_COLOURS[1]
    assert f"48;2;{r};{g};{b}m" in format_solution(arc, colour=True)


def test_pictures_are_png_sheets_or_gif_animations(tmp_path):
    solution = sudoku_solution()
    gif = save_picture(solution, tmp_path / "steps.gif")
    with Image.open(gif) as image:
        assert image.n_frames == 3  # the puzzle, then each step
    png = save_picture(solution, tmp_path / "steps.png")
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width > image.height
    with pytest.raises(ConfigError, match=r"\.png"):
        save_picture(solution, tmp_path / "steps.bmp")


def test_arc_pictures_use_the_viewer_palette_and_grids_of_any_size(tmp_path):
    small, large = np.array([[1]], np.uint8), np.full((3, 4), 2, np.uint8)
    solution = Solution(Puzzle(ARC, large, "t"), small, 2, 0.5, [Step(small, 0.2), Step(large, 0.5)])
    with Image.open(save_picture(solution, tmp_path / "arc.png")) as image:
        colours = {c for _, c in image.convert("RGB").getcolors(1 << 16)}
    assert ARC_COLOURS[1] in colours and ARC_COLOURS[2] in colours


def test_a_broken_answer_is_labelled_not_a_solution_with_why_it_was_kept():
    solution = sudoku_solution()
    solution.valid, solution.problem, solution.max_steps = False, "row 1 repeats 3", 16
    solution.halt, solution.steps = "adaptive", 1
    text = format_solution(solution, colour=False)
    assert "puzzle                  NOT a solution" in text and "valid solution" not in text
    assert "NOT a solution: row 1 repeats 3 (the halting head stopped it at step 1; --halt valid would have" in text
    assert f"last answer (NOT a solution): {SOLUTION}" in text
    solution.halt, solution.steps = "valid", 16
    assert "(the last answer: the 16-step cap came before a valid one)" in format_solution(solution, colour=False)
    solution.halt = "fixed"
    assert "(the last answer, at the 16-step cap)" in format_solution(solution, colour=False)
