"""ARC-AGI: colour grids on a 30x30 canvas, task files, variants and drawing (trm-spec section 7).

Every grid sits in a 30x30 canvas of tokens (0 PAD, 1 EOS, 2..11 = colours 0..9) with a row
of EOS under it and a column of EOS right of it marking its size. A variant of a task is the
task under a dihedral transform and a permutation of colours 1..9; its puzzle identifier's
name records the transform (`<task>|||t<dihedral>|||<colour map>`) so that predictions can
be mapped back. ARC has no rules to check an answer by: `verify` is None.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from trm.errors import DataError
from trm.tasks.common import RESET, RGB, Cells, Puzzle, bg
from trm.tasks.grids import IDENTITY, NUM_COLOURS, Transform

GRID_SIZE = 30
SEQ_LEN = GRID_SIZE * GRID_SIZE
PAD, EOS, COLOUR_OFFSET = 0, 1, 2
VOCAB_SIZE = COLOUR_OFFSET + NUM_COLOURS
VARIANT_SEPARATOR = "|||"


# --- The canvas ---------------------------------------------------------------------------------


def encode_grid(grid: np.ndarray, top: int = 0, left: int = 0) -> np.ndarray:
    """The 30x30 token canvas of a grid whose top-left cell sits at (top, left)."""
    canvas = np.full((GRID_SIZE, GRID_SIZE), PAD, dtype=np.uint8)
    paint(canvas, grid, top, left)
    return canvas


def paint(canvas: np.ndarray, grid: np.ndarray, top: int, left: int) -> None:
    """Write `grid` and its EOS markers into `canvas` with its top-left cell at (top, left)."""
    rows, cols = grid.shape
    bottom, right = top + rows, left + cols
    canvas[top:bottom, left:right] = grid + COLOUR_OFFSET
    # The EOS row and column span the grid's sides only; the corner cell between them stays PAD.
    if bottom < GRID_SIZE:
        canvas[bottom, left:right] = EOS
    if right < GRID_SIZE:
        canvas[top:bottom, right] = EOS


def crop_prediction(tokens: np.ndarray) -> np.ndarray:
    """The grid a predicted canvas stands for: the largest top-left rectangle of colour tokens.

    As the reference evaluator does, row r may only be as wide as the rows above it, and the
    first of equally large rectangles wins. A canvas with no colour at (0, 0) gives a 0x0 grid.
    """
    canvas = np.asarray(tokens).reshape(GRID_SIZE, GRID_SIZE)
    is_colour = (canvas >= COLOUR_OFFSET) & (canvas < VOCAB_SIZE)
    run_lengths = np.where(is_colour.all(axis=1), GRID_SIZE, np.argmin(is_colour, axis=1))
    widths = np.minimum.accumulate(run_lengths)
    areas = widths * np.arange(1, GRID_SIZE + 1)
    best = int(np.argmax(areas))
    if areas[best] == 0:
        return np.zeros((0, 0), dtype=np.uint8)
    return (canvas[: best + 1, : widths[best]] - COLOUR_OFFSET).astype(np.uint8)


def to_original(tokens: np.ndarray, transform: Transform) -> np.ndarray:
    """The grid a canvas of a variant stands for, mapped back to the original task."""
    return transform.invert().apply(crop_prediction(tokens))


# --- Variant names ------------------------------------------------------------------------------


def variant_name(task_id: str, transform: Transform) -> str:
    """The identifier name of a variant; the original task keeps its bare id, as in the reference."""
    if transform.is_identity:
        return task_id
    colours = "".join(str(c) for c in transform.colours)
    return f"{task_id}{VARIANT_SEPARATOR}t{transform.dihedral}{VARIANT_SEPARATOR}{colours}"


def parse_variant_name(name: str) -> tuple[str, Transform]:
    """(task id, transform) of an identifier name written by `variant_name` or the reference."""
    if VARIANT_SEPARATOR not in name:
        return name, IDENTITY
    parts = name.split(VARIANT_SEPARATOR)
    expected = f"'<task>{VARIANT_SEPARATOR}t<0-7>{VARIANT_SEPARATOR}<permutation of the digits 0-9>'"
    if len(parts) != 3 or len(parts[1]) != 2 or parts[1][0] != "t" or not parts[2].isdigit():
        raise DataError(f"identifier name {name!r} is not of the form {expected}")
    try:
        return parts[0], Transform(dihedral=int(parts[1][1]), colours=tuple(int(c) for c in parts[2]))
    except ValueError as e:
        raise DataError(f"identifier name {name!r} is not of the form {expected}: {e}") from None


# --- Reading JSON -------------------------------------------------------------------------------


def parse_grid(value: object, where: str) -> np.ndarray:
    """A JSON grid as a uint8 array, or a DataError saying at `where` what is wrong with it."""
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: expected a grid (a non-empty list of rows), got {describe(value)}")
    for r, row in enumerate(value):
        if not isinstance(row, list) or not row:
            raise DataError(f"{where}: row {r} is {describe(row)}, expected a non-empty list of colours")
        if len(row) != len(value[0]):
            raise DataError(
                f"{where}: row {r} has {len(row)} cells but row 0 has {len(value[0])} (rows must be equally long)"
            )
    rows, cols = len(value), len(value[0])
    if rows > GRID_SIZE or cols > GRID_SIZE:
        raise DataError(f"{where}: grid is {rows}x{cols}, larger than the {GRID_SIZE}x{GRID_SIZE} maximum")
    for r, row in enumerate(value):
        for c, cell in enumerate(row):
            if type(cell) is not int or not 0 <= cell < NUM_COLOURS:
                shown = repr(cell) if isinstance(cell, int | _LongInteger) else describe(cell)
                raise DataError(f"{where}: row {r}, column {c} holds {clip(shown)}, expected a colour 0..9")
    return np.array(value, dtype=np.uint8)


def describe(value: object) -> str:
    """A short description of a JSON value for an error message: its type and its start."""
    try:
        text = json.dumps(value, default=repr)
    except (RecursionError, ValueError):  # nested too deeply to write out
        text = "[[[..." if isinstance(value, list) else "{..."
    return f"{type(value).__name__} {clip(text)}"


def clip(text: str, length: int = 40) -> str:
    return text if len(text) <= length else text[:length] + "..."


class _LongInteger:
    """Stands in for an integer too long for Python to read (over 4300 digits), so that the
    error can say which task and cell holds it rather than only which file."""

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))

    def __repr__(self) -> str:
        return f"an integer of {self.digits} digits"


def parse_json(text: str, location: str | Path) -> object:
    """Parsed JSON of an ARC file, or a DataError naming `location` (malformed, nested too deeply, ...)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{location}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except RecursionError:
        raise DataError(f"{location}: not an ARC file: its JSON nests too deeply (ARC nests 4 levels)") from None
    except ValueError:  # an integer too long to convert: read again, keeping such numbers as markers
        pass
    try:
        return json.loads(text, parse_int=lambda digits: int(digits) if len(digits) < 100 else _LongInteger(digits))
    except (ValueError, RecursionError) as e:
        raise DataError(f"{location}: cannot be read as JSON ({clip(str(e), 200)})") from None


def _test_puzzles(raw: object, path: Path, task_id: str | None) -> list[Puzzle]:
    """The test inputs of task `task_id` (or the only task) of a task or challenges file's JSON."""
    if isinstance(raw, dict) and "test" in raw:
        tasks = {task_id or path.stem: raw}
    elif isinstance(raw, dict) and raw and all(isinstance(t, dict) and "test" in t for t in raw.values()):
        tasks = raw
    else:
        raise DataError(
            f'{path}: expected an ARC task ({{"train": [...], "test": [...]}}) or a challenges file '
            "mapping task ids to tasks"
        )
    if task_id is None and len(tasks) > 1:
        raise DataError(f"{path}: holds {len(tasks)} tasks; choose one with --task (e.g. --task {next(iter(tasks))})")
    task_id = task_id or next(iter(tasks))
    if task_id not in tasks:
        raise DataError(f"{path}: has no task {task_id!r}")
    task = tasks[task_id]
    for key in ("train", "test"):
        if not isinstance(task.get(key, []), list):
            raise DataError(f"{path}: task {task_id}: '{key}' must be a list of {{'input': grid, ...}} objects")
    for k, pair in enumerate(task.get("train", [])):
        if not isinstance(pair, dict) or "input" not in pair or "output" not in pair:
            raise DataError(f"{path}: task {task_id}, train pair {k}: expected an object with 'input' and 'output'")
        for key in ("input", "output"):
            parse_grid(pair[key], f"{path}: task {task_id}, train pair {k}, {key}")
    tests = task["test"]
    if not tests:
        raise DataError(f"{path}: task {task_id}: 'test' must be a non-empty list of {{'input': grid}} objects")
    puzzles = []
    for k, pair in enumerate(tests):
        where = f"{path}: task {task_id}, test input {k}"
        if not isinstance(pair, dict) or "input" not in pair:
            raise DataError(f"{where}: expected an object with an 'input' grid")
        label = parse_grid(pair["output"], f"{where}, output") if "output" in pair else None
        puzzles.append(Puzzle(ARC, parse_grid(pair["input"], where), where, label, task_id))
    return puzzles


def read_task_text(text: str, path: Path, task_id: str | None = None) -> list[Puzzle]:
    """The test inputs of an ARC task file's text (or of task `task_id` of a challenges file)."""
    raw = parse_json(text, path)
    try:
        return _test_puzzles(raw, path, task_id)
    except RecursionError:  # describing a deeply nested value in an error message
        raise DataError(f"{path}: not an ARC file: its JSON nests too deeply (ARC nests 4 levels)") from None


# --- Drawing ----------------------------------------------------------------------------------

# The public ARC viewers' palette: black, blue, red, green, yellow, grey, magenta, orange, azure, maroon.
COLOURS: list[RGB] = [
    (0, 0, 0),
    (0, 116, 217),
    (255, 65, 54),
    (46, 204, 64),
    (255, 220, 0),
    (170, 170, 170),
    (240, 18, 190),
    (255, 133, 27),
    (127, 219, 255),
    (135, 12, 37),
]


def terminal_lines(grid: np.ndarray, colour: bool = True) -> list[str]:
    """An ARC grid: two coloured blocks per cell in colour, its digits otherwise."""
    if grid.size == 0:
        return ["(empty)"]
    if not colour:
        return ["".join(str(v) for v in row) for row in grid]
    return ["".join(bg(COLOURS[v]) + "  " for v in row) + RESET for row in grid]


# --- The task -----------------------------------------------------------------------------------


class Arc:
    """ARC-AGI: grids are colour grids of up to 30x30; answers are voted over variants instead of
    checked by rules (`has_rules` False, `verify` None)."""

    name = "arc"
    title = "ARC"
    has_rules = False
    vocab_size = VOCAB_SIZE
    seq_len = SEQ_LEN
    cell_pixels = None  # scaled to the grid
    verify = None
    validity = None
    problems = None

    def fits(self, vocab_size: int, seq_len: int) -> bool:
        return (vocab_size, seq_len) == (VOCAB_SIZE, SEQ_LEN)

    def parse(self, text: str, where: str | Path = "ARC task") -> Puzzle:
        """The first test input of a task file's text; `read_task_text` gives them all."""
        return read_task_text(text, Path(where))[0]

    def encode(self, grid: np.ndarray) -> np.ndarray:
        return encode_grid(grid).reshape(SEQ_LEN)

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        return crop_prediction(tokens)

    def one_line(self, grid: np.ndarray) -> str | None:
        return None

    def json_form(self, grid: np.ndarray) -> list[list[int]]:
        """The grid for JSON output: rows of colours, as in ARC's task files."""
        return np.asarray(grid).tolist()

    def draw_symmetry(self, rng: np.random.Generator) -> Transform:
        """A dihedral transform and a permutation of colours 1..9 (0, the background, stays)."""
        colours = np.concatenate([[0], rng.permutation(np.arange(1, NUM_COLOURS))])
        return Transform(dihedral=int(rng.integers(8)), colours=tuple(int(c) for c in colours))

    def draw_symmetries(self, rng: np.random.Generator, count: int) -> list[Transform]:
        return [self.draw_symmetry(rng) for _ in range(count)]

    def terminal_lines(
        self, puzzle: Puzzle, grid: np.ndarray, previous: np.ndarray | None = None, colour: bool = True
    ) -> list[str]:
        return terminal_lines(grid, colour)

    def cells(self, puzzle: Puzzle, grid: np.ndarray, previous: np.ndarray | None = None) -> Cells:
        return Cells([[COLOURS[int(v)] for v in row] for row in grid], outline=(85, 85, 85))


ARC = Arc()
