"""Sudoku 9x9: tokens, parsing, the rules, the symmetries and drawing (trm-spec sections 1 and 7).

A puzzle is 81 digits, row by row, 0 = blank. As tokens every digit d becomes d + 1, so the
vocabulary is 11 (0 = PAD, which is also the ignored label), exactly as the reference
builder writes Sudoku-Extreme.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from trm.errors import DataError
from trm.tasks.common import RESET, RGB, Cells, Puzzle, fg

SIZE = 9
SEQ_LEN = SIZE * SIZE
VOCAB_SIZE = 11  # PAD + digits 0..9
BLANKS = "digits 1-9 and '.' or '0' for blanks"


def to_tokens(digits: np.ndarray) -> np.ndarray:
    """Digits 0..9 (0 = blank) -> tokens 1..10, any shape; token 0 stays free for PAD."""
    return np.asarray(digits).astype(np.uint8) + 1


def to_digits(tokens: np.ndarray) -> np.ndarray:
    """Tokens -> digits, any shape; a PAD token (never a valid prediction) reads as a blank."""
    return np.maximum(np.asarray(tokens).astype(np.int16) - 1, 0).astype(np.int8)


# --- Parsing ----------------------------------------------------------------------------------


def grids_from_strings(strings: list[str], where: Callable[[int], str], field: str, blanks: bool) -> np.ndarray:
    """Turn 81-character strings into an N x 81 digit array; `where(i)` names string i in errors."""
    expected = BLANKS if blanks else "digits 1-9"
    for i, text in enumerate(strings):
        if len(text) != SEQ_LEN:
            raise DataError(f"{where(i)}: {field} has {len(text)} characters, expected 81 ({expected})")
    if not strings:
        return np.zeros((0, SEQ_LEN), dtype=np.int8)
    # Non-ASCII characters become '?' one for one, so positions still match the text.
    raw = np.frombuffer("".join(strings).encode("ascii", errors="replace"), dtype=np.uint8).reshape(-1, SEQ_LEN)
    digits = np.where(raw == ord("."), ord("0"), raw).astype(np.int16) - ord("0")
    bad = (digits < 0) | (digits > 9) | ((digits == 0) & (not blanks))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataError(f"{where(i)}: {field} has {strings[i][j]!r} at position {j + 1}, expected {expected}")
    return digits.astype(np.int8)


def parse_digits(text: str, where: str = "puzzle") -> np.ndarray:
    """One puzzle string of 81 characters ('.' or '0' = blank) -> 81 digits."""
    return grids_from_strings([text.strip()], lambda _: where, "puzzle", blanks=True)[0]


# --- The rules ----------------------------------------------------------------------------------


def valid_solutions(grids: np.ndarray) -> np.ndarray:
    """For N x 81 grids of digits 1..9: does every row, column and box hold each digit once?"""
    rows = np.left_shift(1, grids.astype(np.int32) - 1).reshape(-1, 9, 9)
    cols = rows.transpose(0, 2, 1)
    boxes = rows.reshape(-1, 3, 3, 3, 3).transpose(0, 1, 3, 2, 4).reshape(-1, 9, 9)
    # Nine one-hot digits cover all nine bits only if they are all different.
    return np.all([np.bitwise_or.reduce(unit, axis=2) == 0x1FF for unit in (rows, cols, boxes)], axis=(0, 2))


def _faults(inputs: np.ndarray, preds: np.ndarray) -> tuple[np.ndarray, ...]:
    """The rules checked on (B, 81) tokens: for each answer, the givens it changed (B, 81), the
    cells it left blank (B, 81), and the digits each row, column and box repeats (B, 27, 9;
    units 0-8 rows, 9-17 columns, 18-26 boxes)."""
    puzzles = to_digits(inputs).reshape(-1, 9, 9)
    grids = to_digits(preds).reshape(-1, 9, 9)
    changed = (puzzles != 0) & (grids != puzzles)
    blank = grids == 0
    one_hot = grids[..., None] == np.arange(1, 10)  # (B, row, column, digit)
    boxes = one_hot.reshape(-1, 3, 3, 3, 3, 9).sum((2, 4)).reshape(-1, 9, 9)
    repeats = np.concatenate([one_hot.sum(2), one_hot.sum(1), boxes], axis=1) > 1
    return changed.reshape(-1, 81), blank.reshape(-1, 81), repeats


def validity(inputs: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """(B,) whether each prediction is a complete Sudoku solution keeping the givens: no given
    changed, no cell blank, and no row, column or box repeating a digit (so each holds 1-9)."""
    changed, blank, repeats = _faults(inputs, preds)
    return ~(changed.any(-1) | blank.any(-1) | repeats.any((1, 2)))


def _cell(index: int) -> str:
    return f"row {index // 9 + 1}, column {index % 9 + 1}"


def problems(inputs: np.ndarray, preds: np.ndarray) -> list[str | None]:
    """For each prediction ((B, 81) tokens), the first Sudoku rule it breaks in words, or None."""
    changed, blank, repeats = _faults(inputs, preds)
    puzzles, grids = to_digits(inputs).reshape(-1, 81), to_digits(preds).reshape(-1, 81)
    unit_names = ["row"] * 9 + ["column"] * 9 + ["box"] * 9
    found: list[str | None] = []
    for k in range(len(grids)):
        if changed[k].any():
            cell = int(np.flatnonzero(changed[k])[0])
            now = "a blank" if grids[k, cell] == 0 else str(grids[k, cell])
            found.append(f"the given {puzzles[k, cell]} at {_cell(cell)} became {now}")
        elif repeats[k].any():
            broken = [f"{unit_names[u]} {u % 9 + 1} repeats {d + 1}" for u, d in np.argwhere(repeats[k])]
            more = f" and {len(broken) - 3} more" if len(broken) > 3 else ""
            found.append(", ".join(broken[:3]) + more)
        elif blank[k].any():
            cells = np.flatnonzero(blank[k])
            found.append(f"{len(cells)} cell(s) left blank, the first at {_cell(int(cells[0]))}")
        else:
            found.append(None)
    return found


def conflicts(grid: np.ndarray) -> np.ndarray:
    """(9, 9) whether each cell's digit appears again in its row, column or box."""
    conflict = np.zeros((9, 9), dtype=bool)
    for r, c in zip(*np.nonzero(grid)):
        d, br, bc = grid[r, c], 3 * (r // 3), 3 * (c // 3)
        units = (grid[r], grid[:, c], grid[br : br + 3, bc : bc + 3])
        conflict[r, c] = any(np.count_nonzero(u == d) > 1 for u in units)
    return conflict


# --- Symmetries (trm-spec section 7) ------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SudokuTransform:
    """One symmetry of Sudoku, kept so that it can be undone (for example on a prediction).

    Applied in the reference's order: transpose if `transpose`, then move cells so that
    new[r, c] = old[row_perm[r], col_perm[c]], then relabel digits d -> digit_map[d].
    `row_perm` permutes the three bands and the rows inside each band, `col_perm` likewise
    stacks and columns; `digit_map` permutes 1..9 and keeps 0 (blank). Every such transform
    maps valid Sudokus to valid Sudokus.
    """

    digit_map: np.ndarray
    row_perm: np.ndarray
    col_perm: np.ndarray
    transpose: bool

    def apply(self, grids: np.ndarray) -> np.ndarray:
        """Transform digit grids of shape (..., 81) or (..., 9, 9); the result has the input's shape."""
        grids = np.asarray(grids)
        boards = grids.reshape(*grids.shape[:-1], 9, 9) if grids.shape[-1] == SEQ_LEN else grids
        if boards.shape[-2:] != (9, 9):
            raise DataError(f"expected Sudoku grids of shape (..., 81) or (..., 9, 9), got {grids.shape}")
        if self.transpose:
            boards = boards.swapaxes(-1, -2)
        boards = boards[..., self.row_perm[:, None], self.col_perm[None, :]]
        return self.digit_map.astype(grids.dtype)[boards].reshape(grids.shape)

    def invert(self) -> SudokuTransform:
        """The transform that undoes this one.

        Undoing "transpose, then permute rows by r and columns by c" is "permute by the
        inverses, then transpose", which is again of our form with the two inverses swapped.
        """
        rows, cols = np.argsort(self.row_perm), np.argsort(self.col_perm)
        if self.transpose:
            rows, cols = cols, rows
        return SudokuTransform(np.argsort(self.digit_map), rows, cols, self.transpose)


def _band_preserving_perms(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` permutations of 0..8 that shuffle the three blocks of three and each block."""
    blocks = rng.permuted(np.tile(np.arange(3), (count, 1)), axis=1)
    inside = rng.permuted(np.tile(np.arange(3), (count, 3, 1)), axis=2)
    return (3 * blocks[:, :, None] + inside).reshape(count, 9)


def random_transforms(rng: np.random.Generator, count: int) -> list[SudokuTransform]:
    """`count` random transforms, drawn as the reference draws them (transpose with probability 1/2)."""
    digits = rng.permuted(np.tile(np.arange(1, 10), (count, 1)), axis=1)
    digit_maps = np.concatenate([np.zeros((count, 1), dtype=digits.dtype), digits], axis=1)
    rows = _band_preserving_perms(rng, count)
    cols = _band_preserving_perms(rng, count)
    transposes = rng.random(count) < 0.5
    return [SudokuTransform(digit_maps[i], rows[i], cols[i], bool(transposes[i])) for i in range(count)]


# --- Drawing ----------------------------------------------------------------------------------

GIVEN, FILLED, CHANGED, WRONG = (230, 230, 230), (90, 180, 255), (255, 210, 0), (255, 80, 80)


def _wrong(grid: np.ndarray, givens: np.ndarray) -> np.ndarray:
    return conflicts(grid) | ((givens != 0) & (givens != grid))


def terminal_lines(
    grid: np.ndarray, givens: np.ndarray, previous: np.ndarray | None = None, colour: bool = True
) -> list[str]:
    """A 9x9 grid as 11 lines of 21 characters: givens bright, the model's digits blue, digits
    changed since `previous` yellow, digits repeated in a row, column or box red."""
    wrong = _wrong(grid, givens)
    lines = []
    for r in range(9):
        if r in (3, 6):
            lines.append("------+-------+------")
        cells = []
        for c in range(9):
            text = "." if grid[r, c] == 0 else str(grid[r, c])
            if colour and grid[r, c]:
                changed = previous is not None and previous[r, c] != grid[r, c]
                style = (
                    fg(WRONG, bold=True)
                    if wrong[r, c]
                    else fg(GIVEN, bold=True)
                    if givens[r, c]
                    else fg(CHANGED, bold=True)
                    if changed
                    else fg(FILLED)
                )
                text = style + text + RESET
            cells.append(text)
        lines.append(" | ".join(" ".join(cells[k : k + 3]) for k in (0, 3, 6)))
    return lines


def cells(grid: np.ndarray, givens: np.ndarray, previous: np.ndarray | None = None) -> Cells:
    """Digits on white (pale yellow where changed since `previous`): givens black, the model's
    blue, digits that break a rule or a given red; heavy lines round the boxes."""
    wrong = _wrong(grid, givens)
    changed = np.zeros_like(wrong) if previous is None else previous != grid
    fill: list[list[RGB]] = [
        [(255, 236, 160) if changed[r, c] else (255, 255, 255) for c in range(9)] for r in range(9)
    ]
    colours: list[list[RGB]] = [
        [(210, 30, 30) if wrong[r, c] else (0, 0, 0) if givens[r, c] else (20, 90, 200) for c in range(9)]
        for r in range(9)
    ]
    text = [[str(d) if d else "" for d in row] for row in grid]
    return Cells(fill, text, colours, outline=(200, 200, 200), box=3)


# --- The task -----------------------------------------------------------------------------------


class Sudoku:
    """9x9 Sudoku: grids are (9, 9) digits, 0 = blank."""

    name = "sudoku"
    title = "Sudoku 9x9"
    has_rules = True
    vocab_size = VOCAB_SIZE
    seq_len = SEQ_LEN
    cell_pixels = 32

    def fits(self, vocab_size: int, seq_len: int) -> bool:
        return (vocab_size, seq_len) == (VOCAB_SIZE, SEQ_LEN)

    def parse(self, text: str, where: str = "Sudoku string") -> Puzzle:
        """81 characters ('.' or '0' = blank) -> a puzzle whose givens do not clash."""
        digits = parse_digits(text.strip(), where).reshape(9, 9)
        units = [("row", digits[i]) for i in range(9)] + [("column", digits[:, i]) for i in range(9)]
        units += [("box", digits[r : r + 3, c : c + 3].ravel()) for r in (0, 3, 6) for c in (0, 3, 6)]
        for k, (kind, unit) in enumerate(units):
            counts = np.bincount(unit, minlength=10)[1:]
            if counts.max() > 1:
                raise DataError(
                    f"{where}: {kind} {k % 9 + 1} repeats the given {int(counts.argmax()) + 1}; "
                    "the givens contradict each other"
                )
        return Puzzle(self, digits, where)

    def encode(self, grid: np.ndarray) -> np.ndarray:
        return to_tokens(grid).reshape(SEQ_LEN)

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        return to_digits(tokens).reshape(9, 9)

    def verify(self, puzzle: Puzzle, answer: np.ndarray) -> str | None:
        """The rule `answer` (digits) breaks for `puzzle`, in words, or None if it is a solution."""
        return problems(self.encode(puzzle.grid)[None], self.encode(answer)[None])[0]

    validity = staticmethod(validity)
    problems = staticmethod(problems)

    def one_line(self, grid: np.ndarray) -> str | None:
        """The answer as 81 digits, to paste elsewhere."""
        return "".join(str(d) for d in np.asarray(grid).ravel())

    def json_form(self, grid: np.ndarray) -> str:
        """The grid for JSON output: its 81 digits (0 = blank)."""
        return self.one_line(grid)

    def draw_symmetry(self, rng: np.random.Generator) -> SudokuTransform:
        """Relabel digits, permute bands, stacks and the rows and columns inside them, maybe transpose."""
        return random_transforms(rng, 1)[0]

    def draw_symmetries(self, rng: np.random.Generator, count: int) -> list[SudokuTransform]:
        """`count` random symmetries (there are 2 x 9! x 6^8 of them: repeats are negligible), drawn one
        by one, so the first m of them are what `count` = m draws."""
        return [random_transforms(rng, 1)[0] for _ in range(count)]

    def terminal_lines(
        self, puzzle: Puzzle, grid: np.ndarray, previous: np.ndarray | None = None, colour: bool = True
    ) -> list[str]:
        return terminal_lines(grid, puzzle.grid, previous, colour)

    def cells(self, puzzle: Puzzle, grid: np.ndarray, previous: np.ndarray | None = None) -> Cells:
        return cells(grid, puzzle.grid, previous)


SUDOKU = Sudoku()
