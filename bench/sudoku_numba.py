"""Does numba earn its place? Time the Sudoku generator and solver with it and without it.

    python bench/sudoku_numba.py --royle royle-17-clue.txt                      # numba-compiled
    NUMBA_DISABLE_JIT=1 python bench/sudoku_numba.py --royle royle-17-clue.txt  # the same code as plain Python

A fixed workload: generate puzzles with 30 givens (a fixed seed), then solve the first puzzles of
Gordon Royle's 17-clue collection (counting solutions up to 2, as a uniqueness check does). The
first call (loading or compiling the numba code) is timed apart.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from trm.data.sudoku_solver import generate_puzzle, solve_many


def read_royle(path: Path, count: int) -> np.ndarray:
    """The first `count` puzzles of Royle's file: lines of 81 digits (its header line is skipped)."""
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    puzzles = [line for line in lines if len(line) == 81 and line.isdigit()][:count]
    return np.array([[int(c) for c in line] for line in puzzles], dtype=np.int8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--royle", type=Path, required=True, help="Royle's 17-clue file (one puzzle a line)")
    parser.add_argument("--generate", type=int, default=200, help="puzzles to generate (default %(default)s)")
    parser.add_argument("--solve", type=int, default=300, help="17-clue puzzles to solve (default %(default)s)")
    args = parser.parse_args()

    mode = "plain Python (NUMBA_DISABLE_JIT=1)" if os.environ.get("NUMBA_DISABLE_JIT") == "1" else "numba"
    rng = np.random.default_rng(0)
    puzzles = read_royle(args.royle, args.solve)

    start = time.perf_counter()
    if solve_many(puzzles[:1])[0][0] != 1:
        # Without numba's integer typing a shift of an int8 digit can overflow; the generator would
        # then never find a unique puzzle and loop, so stop here instead.
        raise SystemExit(f"{mode}: the solver finds no solution to a 17-clue puzzle; this path is broken")
    generate_puzzle(rng, 30)
    first = time.perf_counter() - start

    start = time.perf_counter()
    for _ in range(args.generate):
        generate_puzzle(rng, 30)
    generating = time.perf_counter() - start

    start = time.perf_counter()
    counts, _, _ = solve_many(puzzles)
    solving = time.perf_counter() - start
    assert (counts == 1).all(), "every 17-clue puzzle has one solution"

    print(f"{mode}: first call {first:.2f} s")
    print(f"  generate {args.generate} puzzles, 30 givens: {generating:.2f} s ({args.generate / generating:,.1f}/s)")
    print(f"  solve {len(puzzles)} 17-clue puzzles: {solving:.2f} s ({len(puzzles) / solving:,.1f}/s)")


if __name__ == "__main__":
    main()
