"""The Sudoku task: parsing, tokens, the rules, symmetries and drawing."""

import numpy as np
import pytest

from tests.eval.fixtures import PUZZLE, SOLUTION
from trm.errors import DataError
from trm.tasks import SUDOKU
from trm.tasks.sudoku import SudokuTransform, problems, random_transforms, to_tokens, validity


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1" * 80, "has 80 characters, expected 81"),
        ("x" + PUZZLE[1:], "has 'x' at position 1"),
        ("55" + PUZZLE[2:], "row 1 repeats the given 5"),
    ],
)
def test_parse_errors_name_the_source_and_the_fault(text, message):
    with pytest.raises(DataError, match=f"my puzzle: .*{message}"):
        SUDOKU.parse(text, "my puzzle")


def test_encode_and_decode_are_inverse():
    puzzle = SUDOKU.parse(PUZZLE, "p")
    tokens = SUDOKU.encode(puzzle.grid)
    assert tokens.shape == (81,) and tokens.min() >= 1
    np.testing.assert_array_equal(SUDOKU.decode(tokens), puzzle.grid)


def test_verify_accepts_the_solution_and_names_a_broken_rule():
    puzzle = SUDOKU.parse(PUZZLE, "p")
    solution = SUDOKU.parse(SOLUTION, "s").grid
    assert SUDOKU.verify(puzzle, solution) is None
    broken = solution.copy()
    broken[0, [2, 3]] = broken[0, [3, 2]]
    assert "repeats" in SUDOKU.verify(puzzle, broken)


def test_a_symmetry_then_its_inverse_is_the_identity_and_keeps_solutions_valid():
    rng = np.random.default_rng(0)
    puzzle, solution = SUDOKU.parse(PUZZLE, "p").grid, SUDOKU.parse(SOLUTION, "s").grid
    for _ in range(20):
        symmetry = SUDOKU.draw_symmetry(rng)
        moved_puzzle, moved_solution = symmetry.apply(puzzle), symmetry.apply(solution)
        np.testing.assert_array_equal(symmetry.invert().apply(moved_solution), solution)
        assert validity(to_tokens(moved_puzzle)[None], to_tokens(moved_solution)[None]).tolist() == [True]
    batch = np.stack([solution.ravel()] * 3)  # a batch of flat grids maps row by row
    [t] = random_transforms(rng, 1)
    np.testing.assert_array_equal(t.apply(batch)[1], t.apply(solution).ravel())


def test_terminal_lines_and_cells():
    puzzle = SUDOKU.parse(PUZZLE, "p")
    lines = SUDOKU.terminal_lines(puzzle, puzzle.grid, colour=False)
    assert len(lines) == 11 and lines[0] == "5 3 . | . 7 . | . . ."
    cells = SUDOKU.cells(puzzle, puzzle.grid)
    assert cells.box == 3 and cells.text[0][:3] == ["5", "3", ""]
    assert SUDOKU.one_line(puzzle.grid) == PUZZLE.replace(".", "0")


def digits(text: str) -> np.ndarray:
    return np.array([0 if c == "." else int(c) for c in text], dtype=np.int8)


def test_sudoku_validity_accepts_solutions_and_rejects_broken_answers():
    puzzle, solution = to_tokens(digits(PUZZLE)), to_tokens(digits(SOLUTION))
    repeated = solution.copy()
    repeated[[2, 3]] = repeated[[3, 2]]  # two cells of one row swapped: columns now repeat digits
    changed_given = to_tokens(
        SudokuTransform(np.array([0, 2, 1, 3, 4, 5, 6, 7, 8, 9]), np.arange(9), np.arange(9), False).apply(
            digits(SOLUTION)
        )
    )
    blank = solution.copy()
    blank[40] = 1  # token 1 = digit 0, a blank
    padded = solution.copy()
    padded[0] = 0
    answers = np.stack([solution, repeated, changed_given, blank, padded])
    assert validity(np.repeat(puzzle[None], 5, 0), answers).tolist() == [True, False, False, False, False]


def test_a_different_valid_sudoku_counts_as_valid_without_givens_in_the_way():
    empty = np.ones((1, 81), dtype=np.uint8)  # all blanks: any solution is valid
    relabelled = SudokuTransform(np.array([0, 2, 1, 3, 4, 5, 6, 7, 8, 9]), np.arange(9), np.arange(9), True)
    other = to_tokens(relabelled.apply(digits(SOLUTION)))[None]
    assert validity(empty, other).tolist() == [True]


def test_sudoku_problems_name_the_rule_broken():
    puzzle, solution = to_tokens(digits(PUZZLE)), to_tokens(digits(SOLUTION))
    changed = solution.copy()
    changed[13] = solution[13] % 9 + 2  # r2c5, a given 9 in PUZZLE
    repeated = solution.copy()
    repeated[[2, 3]] = repeated[[3, 2]]  # r1c3 and r1c4, both blanks in PUZZLE: columns 3 and 4 repeat
    blank = solution.copy()
    blank[[40, 42]] = 1  # token 1 = digit 0, at two blanks of PUZZLE
    answers = np.stack([solution, changed, repeated, blank])
    found = problems(np.repeat(puzzle[None], 4, 0), answers)
    assert found == [
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
    inputs, preds = np.repeat(to_tokens(puzzle)[None], 200, 0), to_tokens(grids)
    reasons = problems(inputs, preds)
    expected = [SUDOKU.verify(SUDOKU.parse(PUZZLE, "p"), g.reshape(9, 9)) is None for g in grids]
    assert [r is None for r in reasons] == expected == validity(inputs, preds).tolist()
