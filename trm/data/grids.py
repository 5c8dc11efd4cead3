"""Symmetries of colour grids: the 8 dihedral transforms and colour permutations.

ARC augmentation draws one of each per variant, and evaluation must undo them before
voting, so both directions live here as pure functions (grid in, grid out). The dihedral
ids are the reference's (`dataset/common.py`), so variant names written by its builder
invert correctly with these functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUM_COLOURS = 10

# Transform id -> the id that undoes it. Rotations by 90 and 270 degrees undo each other;
# the half turn and the four reflections are their own inverses.
DIHEDRAL_INVERSE = (0, 3, 2, 1, 4, 5, 6, 7)


def dihedral(grid: np.ndarray, tid: int) -> np.ndarray:
    """One of the 8 symmetries of the square, numbered as in the reference (may return a view)."""
    match tid:
        case 0:
            return grid
        case 1 | 2 | 3:
            return np.rot90(grid, k=tid)  # counter-clockwise quarter turns
        case 4:
            return np.fliplr(grid)
        case 5:
            return np.flipud(grid)
        case 6:
            return grid.T  # reflection in the main diagonal
        case 7:
            return np.fliplr(np.rot90(grid))  # reflection in the anti-diagonal
    raise ValueError(f"dihedral transform id must be 0..7, got {tid}")


def inverse_dihedral(grid: np.ndarray, tid: int) -> np.ndarray:
    return dihedral(grid, DIHEDRAL_INVERSE[tid])


@dataclass(frozen=True)
class Transform:
    """A dihedral transform and a colour map: colour c becomes `colours[c]`, then the grid turns."""

    dihedral: int = 0
    colours: tuple[int, ...] = tuple(range(NUM_COLOURS))

    def __post_init__(self) -> None:
        if not 0 <= self.dihedral < 8:
            raise ValueError(f"dihedral transform id must be 0..7, got {self.dihedral}")
        if sorted(self.colours) != list(range(NUM_COLOURS)):
            raise ValueError(f"colours must be a permutation of 0..{NUM_COLOURS - 1}, got {self.colours}")

    @property
    def is_identity(self) -> bool:
        return self == IDENTITY


IDENTITY = Transform()


def apply_transform(grid: np.ndarray, transform: Transform) -> np.ndarray:
    colours = np.asarray(transform.colours, dtype=np.uint8)
    return dihedral(colours[grid], transform.dihedral)


def invert_transform(grid: np.ndarray, transform: Transform) -> np.ndarray:
    """Undo `apply_transform`: turn the grid back, then map each colour to its preimage."""
    inverse_colours = np.argsort(transform.colours).astype(np.uint8)
    return inverse_colours[inverse_dihedral(grid, transform.dihedral)]
