"""The ARC task: reading task files, the canvas, symmetries and drawing (no verifier)."""

import json
from pathlib import Path

import numpy as np
import pytest

from trm.errors import DataError
from trm.tasks import ARC
from trm.tasks.arc import crop_prediction, read_task_text
from trm.tasks.grids import IDENTITY

TASK = {"train": [{"input": [[1, 2], [3, 4]], "output": [[4, 3], [2, 1]]}], "test": [{"input": [[5, 0, 6]]}]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ('{"train": [], "test": [{"input": ' + "[" * 100_000 + "]" * 100_000 + "}]}", "nests too deeply"),
        ('{"train": [], "test": [{"input": [[' + "9" * 5000 + "]]}]}", "holds an integer of 5000 digits"),
        ('{"train": [], "test": [{"input": [[10]]}]}', "row 0, column 0 holds 10, expected a colour 0..9"),
        ('{"train": [], "test": []}', "'test' must be a non-empty list"),
    ],
)
def test_parse_errors_name_the_file_and_the_fault(text, message):
    with pytest.raises(DataError, match=f"t.json: .*{message}"):
        ARC.parse(text, "t.json")


def test_every_test_input_is_read():
    [puzzle] = read_task_text(json.dumps(TASK), Path("abc.json"))
    assert puzzle.task is ARC and puzzle.arc_task == "abc" and puzzle.label is None
    np.testing.assert_array_equal(puzzle.grid, [[5, 0, 6]])


def test_encode_and_decode_are_inverse():
    grid = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8)
    tokens = ARC.encode(grid)
    assert tokens.shape == (900,)
    np.testing.assert_array_equal(ARC.decode(tokens), grid)
    np.testing.assert_array_equal(crop_prediction(tokens), grid)


def test_there_is_no_verifier():
    assert not ARC.has_rules and ARC.verify is None and ARC.problems is None


def test_a_symmetry_then_its_inverse_is_the_identity_and_keeps_the_background():
    rng = np.random.default_rng(0)
    grid = np.arange(12, dtype=np.uint8).reshape(3, 4) % 10
    for _ in range(20):
        symmetry = ARC.draw_symmetry(rng)
        moved = symmetry.apply(grid)
        assert sorted(moved.shape) == [3, 4] and symmetry.colours[0] == 0
        np.testing.assert_array_equal(symmetry.invert().apply(moved), grid)
    assert IDENTITY.invert() == IDENTITY


def test_terminal_lines_and_cells():
    [puzzle] = read_task_text(json.dumps(TASK), Path("abc.json"))
    assert ARC.terminal_lines(puzzle, puzzle.grid, colour=False) == ["506"]
    assert ARC.terminal_lines(puzzle, np.zeros((0, 0), dtype=np.uint8)) == ["(empty)"]
    assert ARC.cells(puzzle, puzzle.grid).fill == [[(170, 170, 170), (0, 0, 0), (240, 18, 190)]]
