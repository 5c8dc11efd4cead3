"""The maze task: parsing, tokens, the rules, symmetries and drawing."""

import numpy as np
import pytest

from tests.eval.fixtures import MAZE, MAZE_PATH, maze_grid
from trm.errors import DataError
from trm.tasks import MAZE as MAZE_TASK
from trm.tasks.maze import OPEN, PATH, tokens_to_text, validity


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("S#\n#", "line 2 has 1 characters but line 1 has 2"),
        ("S#x\n###\n##G", "line 1, column 3 holds 'x'"),
        ("S#\n##", "the maze has 0 goal 'G' cells, expected exactly one"),
    ],
)
def test_parse_errors_name_the_source_and_the_fault(text, message):
    with pytest.raises(DataError, match=f"m.txt: {message}"):
        MAZE_TASK.parse(text, "m.txt")


def test_encode_and_decode_are_inverse():
    puzzle = MAZE_TASK.parse("\n".join(MAZE), "m")
    tokens = MAZE_TASK.encode(puzzle.grid)
    assert tokens.shape == (25,)
    np.testing.assert_array_equal(MAZE_TASK.decode(tokens), puzzle.grid)
    assert tokens_to_text(puzzle.grid) == "".join(MAZE)


def test_verify_accepts_a_shortest_path_and_names_a_broken_one():
    puzzle = MAZE_TASK.parse("\n".join(MAZE), "m")
    assert MAZE_TASK.verify(puzzle, maze_grid(MAZE_PATH)) is None
    assert MAZE_TASK.verify(puzzle, puzzle.grid) == "the marked cells do not connect S to G"


def test_a_symmetry_then_its_inverse_is_the_identity_and_keeps_paths_shortest():
    rng = np.random.default_rng(0)
    question, answer = maze_grid(MAZE), maze_grid(MAZE_PATH)
    for _ in range(16):
        symmetry = MAZE_TASK.draw_symmetry(rng)
        moved = symmetry.apply(np.stack([question, answer]))  # a batch maps grid by grid
        np.testing.assert_array_equal(symmetry.invert().apply(moved), np.stack([question, answer]))
        assert validity(moved[:1].reshape(1, -1), moved[1:].reshape(1, -1)).tolist() == [True]


def test_terminal_lines_and_cells():
    puzzle = MAZE_TASK.parse("\n".join(MAZE), "m")
    assert MAZE_TASK.terminal_lines(puzzle, maze_grid(MAZE_PATH), colour=False) == list(MAZE_PATH)
    cells = MAZE_TASK.cells(puzzle, puzzle.grid)
    assert len(cells.fill) == 5 and cells.text is None
    assert MAZE_TASK.one_line(puzzle.grid) is None


def test_maze_validity_rejects_broken_paths_and_accepts_any_shortest_one():
    question, answer = maze_grid(MAZE), maze_grid(MAZE_PATH)
    through_wall = answer.copy()
    through_wall[0, 4] = PATH
    gap = answer.copy()
    gap[2, 2] = OPEN
    moved_goal = answer.copy()
    moved_goal[4, 4] = OPEN
    cases = np.stack([answer, through_wall, gap, moved_goal, question])
    assert validity(np.repeat(question[None], 5, 0).reshape(5, -1), cases.reshape(5, -1)).tolist() == [
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
    valid = validity(np.stack([square, square]).reshape(2, -1), np.stack([upper, lower]).reshape(2, -1))
    assert valid.tolist() == [True, True]


