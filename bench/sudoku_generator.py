"""How fast does the Sudoku generator make unique-solution puzzles?

    python bench/sudoku_generator.py              # 10,000 puzzles with 30 givens
    python bench/sudoku_generator.py -n 2000 --givens 24

Target: 10,000 puzzles with 30 givens in under two minutes on 2 CPU cores. The first call
loads (or, after an edit of the solver, compiles) the numba code; it is timed apart.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from trm.data.sudoku_solver import generate_puzzle, solve


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=10_000, help="puzzles to generate (default %(default)s)")
    parser.add_argument("--givens", type=int, default=30, help="givens per puzzle (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    generate_puzzle(rng, args.givens)
    warmup = time.perf_counter() - start

    start = time.perf_counter()
    puzzles = [generate_puzzle(rng, args.givens) for _ in range(args.n)]
    seconds = time.perf_counter() - start

    # Not part of the timing: every puzzle must have the asked givens and one solution.
    assert all((p.puzzle != 0).sum() == args.givens and solve(p.puzzle).count == 1 for p in puzzles)
    print(f"numba load/compile: {warmup:.2f} s")
    print(f"{args.n} puzzles with {args.givens} givens in {seconds:.2f} s: {args.n / seconds:,.0f} puzzles/s")
    print(f"difficulty (backtracks): mean {np.mean([p.backtracks for p in puzzles]):.2f}")


if __name__ == "__main__":
    main()
