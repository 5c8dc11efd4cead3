"""Symmetries of square and colour grids: the 8 dihedral maps and colour permutations.

Mazes use the dihedral maps; ARC draws one of each per variant, and evaluation must undo
them before voting, so every symmetry here can be applied and inverted. The dihedral ids
are the reference's (`dataset/common.py`), so variant names written by its builder invert
correctly with these functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUM_COLOURS = 10

# Transform id -> the id that undoes it. Rotations by 90 and 270 degrees undo each other;
# the half turn and the four reflections are their own inverses.
DIHEDRAL_INVERSE = (0, 3, 2, 1, 4, 5, 6, 7)


def dihedral(grid: np.ndarray, tid: int) -> np.ndarray:
    """One of the 8 symmetries of the square on the last two axes, numbered as in the
    reference; a batch (..., N, N) maps grid by grid (the result may be a view)."""
    match tid:
        case 0:
            return grid
        case 1 | 2 | 3:
            return np.rot90(grid, k=tid, axes=(-2, -1))  # counter-clockwise quarter turns
        case 4:
            return np.flip(grid, axis=-1)
        case 5:
            return np.flip(grid, axis=-2)
        case 6:
            return np.swapaxes(grid, -1, -2)  # reflection in the main diagonal
        case 7:
            return np.flip(np.rot90(grid, axes=(-2, -1)), axis=-1)  # reflection in the anti-diagonal
    raise ValueError(f"dihedral transform id must be 0..7, got {tid}")


def inverse_dihedral(grid: np.ndarray, tid: int) -> np.ndarray:
    return dihedral(grid, DIHEDRAL_INVERSE[tid])


@dataclass(frozen=True)
class Dihedral:
    """A symmetry of the square as an object: apply it to grids (..., N, N), or invert it."""

    tid: int

    def apply(self, grids: np.ndarray) -> np.ndarray:
        return dihedral(np.asarray(grids), self.tid)

    def invert(self) -> Dihedral:
        return Dihedral(DIHEDRAL_INVERSE[self.tid])


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

    def apply(self, grid: np.ndarray) -> np.ndarray:
        """The transformed colour grid (any leading batch axes)."""
        colours = np.asarray(self.colours, dtype=np.uint8)
        return dihedral(colours[grid], self.dihedral)

    def invert(self) -> Transform:
        """The transform that undoes this one: colour maps and turns commute, so undoing "recolour,
        then turn" is "recolour back, then turn back"."""
        inverse = np.argsort(self.colours)
        return Transform(DIHEDRAL_INVERSE[self.dihedral], tuple(int(c) for c in inverse))


IDENTITY = Transform()
