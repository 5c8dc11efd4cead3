"""An exact 9x9 Sudoku solver and a generator of unique-solution puzzles.

Grids are flat arrays of 81 digits, row by row, 0 = blank. The solver is a depth-first
search over bitmasks (numba-compiled, cached on disk) that fills forced cells first (naked
and hidden singles) and then guesses in the cell with the fewest candidates, digits in
ascending order. It counts solutions up to a limit, which is what a uniqueness check needs.

Difficulty is the number of dead ends this fixed solver meets before its first solution
(`backtracks`). It plays the role of the `rating` column of sapientinc/sudoku-extreme, which
is the backtrack count of another fast solver (tdoku): same idea, different solver, so the
two scales are not interchangeable. The count is deterministic for a given puzzle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from trm.errors import DataError

ALL_DIGITS = 0x1FF  # bit d-1 set = digit d is possible

_cells = np.arange(81)
CELL_ROW = _cells // 9
CELL_COL = _cells % 9
CELL_BOX = (CELL_ROW // 3) * 3 + CELL_COL // 3
# The 27 units (9 rows, 9 columns, 9 boxes) as cell indices.
UNITS = np.concatenate([np.flatnonzero(unit == k)[None] for unit in (CELL_ROW, CELL_COL, CELL_BOX) for k in range(9)])
POPCOUNT = np.array([m.bit_count() for m in range(512)], dtype=np.int8)
DIGIT_OF_BIT = np.array([m.bit_length() if m & (m - 1) == 0 else 0 for m in range(512)], dtype=np.int8)
NATURAL_ORDER = np.tile(np.arange(1, 10, dtype=np.int8), (81, 1))

# A guess places at least one digit, so the search is never deeper than the number of cells.
_MAX_DEPTH = 82
_CONTRADICTION = -2
_SOLVED = -1


@numba.njit(cache=True)
def _place(grid, rows, cols, boxes, cell, digit):
    bit = 1 << (int(digit) - 1)  # int: an int8 digit would overflow the shift without numba
    grid[cell] = digit
    rows[CELL_ROW[cell]] |= bit
    cols[CELL_COL[cell]] |= bit
    boxes[CELL_BOX[cell]] |= bit


@numba.njit(cache=True)
def _candidates(rows, cols, boxes, cell):
    return ALL_DIGITS & ~(rows[CELL_ROW[cell]] | cols[CELL_COL[cell]] | boxes[CELL_BOX[cell]])


@numba.njit(cache=True)
def _propagate(grid, rows, cols, boxes):
    """Fill naked and hidden singles until none are left.

    Returns _CONTRADICTION, _SOLVED, or the empty cell with the fewest candidates.
    """
    while True:
        changed = False
        best, best_count = _SOLVED, 10
        for cell in range(81):
            if grid[cell] != 0:
                continue
            cand = _candidates(rows, cols, boxes, cell)
            if cand == 0:
                return _CONTRADICTION
            if POPCOUNT[cand] == 1:
                _place(grid, rows, cols, boxes, cell, DIGIT_OF_BIT[cand])
                changed = True
            elif POPCOUNT[cand] < best_count:
                best, best_count = cell, POPCOUNT[cand]
        if changed:
            continue
        for unit in range(27):
            once, twice, placed = 0, 0, 0
            for k in range(9):
                cell = UNITS[unit, k]
                if grid[cell] != 0:
                    placed |= 1 << (int(grid[cell]) - 1)
                else:
                    cand = _candidates(rows, cols, boxes, cell)
                    twice |= once & cand
                    once |= cand
            if once | placed != ALL_DIGITS:
                return _CONTRADICTION  # some digit has no place left in this unit
            only = once & ~twice
            if only == 0:
                continue
            for k in range(9):
                cell = UNITS[unit, k]
                if grid[cell] == 0:
                    forced = _candidates(rows, cols, boxes, cell) & only
                    if POPCOUNT[forced] > 1:
                        return _CONTRADICTION  # two digits can only go in this one cell
                    if forced:
                        _place(grid, rows, cols, boxes, cell, DIGIT_OF_BIT[forced])
                        changed = True
        if not changed:
            return best


@numba.njit(cache=True)
def _search(puzzle, limit, order):
    """Count solutions up to `limit`; return (count, backtracks, first solution).

    `order[cell]` is the order in which digits are guessed in that cell (ascending for
    counting, shuffled to draw random grids). Backtracks are the dead ends met before the
    first solution.
    """
    grids = np.zeros((_MAX_DEPTH, 81), dtype=np.int8)
    rows = np.zeros((_MAX_DEPTH, 9), dtype=np.int32)
    cols = np.zeros((_MAX_DEPTH, 9), dtype=np.int32)
    boxes = np.zeros((_MAX_DEPTH, 9), dtype=np.int32)
    branch_cell = np.zeros(_MAX_DEPTH, dtype=np.int32)
    untried = np.zeros(_MAX_DEPTH, dtype=np.int32)
    solution = np.zeros(81, dtype=np.int8)
    count, backtracks = 0, 0

    for cell in range(81):
        digit = int(puzzle[cell])
        if digit != 0:
            if not (_candidates(rows[0], cols[0], boxes[0], cell) >> (digit - 1)) & 1:
                return 0, 0, solution  # the givens already clash
            _place(grids[0], rows[0], cols[0], boxes[0], cell, digit)

    status = _propagate(grids[0], rows[0], cols[0], boxes[0])
    if status == _CONTRADICTION:
        return 0, 0, solution
    if status == _SOLVED:
        return 1, 0, grids[0].copy()
    branch_cell[0] = status
    untried[0] = _candidates(rows[0], cols[0], boxes[0], status)
    depth = 0
    while depth >= 0:
        if untried[depth] == 0:
            depth -= 1
            continue
        cell = branch_cell[depth]
        digit = 0
        for k in range(9):
            if (untried[depth] >> (int(order[cell, k]) - 1)) & 1:
                digit = int(order[cell, k])
                break
        untried[depth] &= ~(1 << (digit - 1))
        child = depth + 1
        grids[child] = grids[depth]
        rows[child] = rows[depth]
        cols[child] = cols[depth]
        boxes[child] = boxes[depth]
        _place(grids[child], rows[child], cols[child], boxes[child], cell, digit)
        status = _propagate(grids[child], rows[child], cols[child], boxes[child])
        if status == _CONTRADICTION:
            if count == 0:
                backtracks += 1
        elif status == _SOLVED:
            count += 1
            if count == 1:
                solution[:] = grids[child]
            if count >= limit:
                break
        else:
            branch_cell[child] = status
            untried[child] = _candidates(rows[child], cols[child], boxes[child], status)
            depth = child
    return count, backtracks, solution


@numba.njit(cache=True)
def _remove_givens(solution, cell_order, target):
    """Blank cells in `cell_order` while the puzzle keeps one solution, down to `target` givens."""
    puzzle = solution.copy()
    givens = 81
    for cell in cell_order:
        if givens <= target:
            break
        digit = puzzle[cell]
        puzzle[cell] = 0
        if _search(puzzle, 2, NATURAL_ORDER)[0] == 1:
            givens -= 1
        else:
            puzzle[cell] = digit
    return puzzle, givens


@numba.njit(cache=True)
def _solve_many(puzzles, limit):
    n = puzzles.shape[0]
    counts = np.zeros(n, dtype=np.int64)
    backtracks = np.zeros(n, dtype=np.int64)
    solutions = np.zeros((n, 81), dtype=np.int8)
    for i in range(n):
        counts[i], backtracks[i], solutions[i] = _search(puzzles[i], limit, NATURAL_ORDER)
    return counts, backtracks, solutions


@dataclass(frozen=True)
class Solved:
    """What the solver found: solutions counted up to the limit, the first one, and its difficulty."""

    count: int
    solution: np.ndarray | None
    backtracks: int


def _as_puzzle(puzzle: np.ndarray) -> np.ndarray:
    grid = np.asarray(puzzle)
    if grid.size != 81 or grid.min() < 0 or grid.max() > 9:
        raise DataError(f"a Sudoku grid needs 81 digits 0..9, got shape {grid.shape}")
    return np.ascontiguousarray(grid.reshape(81), dtype=np.int8)


def solve(puzzle: np.ndarray, limit: int = 2) -> Solved:
    """Solve one puzzle (81 digits, 0 = blank), counting solutions up to `limit`.

    `limit=2` is enough to tell "unique" from "several"; `limit=1` is fastest.
    """
    count, backtracks, solution = _search(_as_puzzle(puzzle), limit, NATURAL_ORDER)
    return Solved(int(count), solution if count else None, int(backtracks))


def solve_many(puzzles: np.ndarray, limit: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve N puzzles (N x 81) in one compiled loop: (counts, backtracks, first solutions)."""
    puzzles = np.asarray(puzzles)
    if puzzles.ndim != 2 or puzzles.shape[1] != 81:
        raise DataError(f"expected an N x 81 array of puzzles, got shape {puzzles.shape}")
    return _solve_many(np.ascontiguousarray(puzzles, dtype=np.int8), limit)


def random_full_grid(rng: np.random.Generator) -> np.ndarray:
    """A random complete grid: the search on an empty grid, guessing digits in random order."""
    order = rng.permuted(np.tile(np.arange(1, 10, dtype=np.int8), (81, 1)), axis=1)
    _, _, grid = _search(np.zeros(81, dtype=np.int8), 1, order)
    return grid


@dataclass(frozen=True)
class Generated:
    puzzle: np.ndarray
    solution: np.ndarray
    backtracks: int


def generate_puzzle(
    rng: np.random.Generator,
    givens: int | None = 30,
    min_difficulty: int = 0,
    max_attempts: int = 10_000,
) -> Generated:
    """One puzzle with a unique solution, exactly `givens` givens and at least `min_difficulty`.

    Draw a full grid, then blank its cells in random order, keeping a blank only if the
    solution stays unique. The removal can get stuck above the requested count (every
    remaining given is needed); then try another removal order, and after a few, another
    grid. `givens=None` removes all it can (a minimal puzzle), which gives the hardest
    puzzles when only the difficulty is asked for.
    """
    if givens is not None and not 17 <= givens <= 81:
        raise DataError(f"givens must be between 17 and 81 (no 9x9 Sudoku with fewer is unique), got {givens}")
    target = 0 if givens is None else givens
    orders_per_grid = 4
    for attempt in range(max_attempts):
        if attempt % orders_per_grid == 0:
            solution = random_full_grid(rng)
        puzzle, count = _remove_givens(solution, rng.permutation(81), target)
        if givens is not None and count != givens:
            continue
        backtracks = _search(puzzle, 1, NATURAL_ORDER)[1]
        if backtracks >= min_difficulty:
            return Generated(puzzle, solution, int(backtracks))
    raise DataError(
        f"no puzzle with {givens if givens is not None else 'a minimal number of'} givens and difficulty "
        f">= {min_difficulty} in {max_attempts} attempts; ask for more givens or a lower difficulty"
    )
