"""Is the training step as fast as at an earlier commit? Both timed side by side, in one run.

    python bench/against_commit.py 70cf9db                                  # the CPU recipe's config
    python bench/against_commit.py 70cf9db --config configs/cpu/sudoku-mlp-float32.yaml --rounds 8
    python bench/against_commit.py HEAD~3 --config configs/sudoku-extreme-mlp.yaml global_batch_size=64

Checks out REV into a temporary git worktree and runs `trm bench CONFIG` alternately from that
checkout and from this one (each round a fresh process of each, in alternating order, so that
drift of the machine's speed hits both alike). Prints each round's examples x steps/s, the
per-round ratio (this tree / REV), and the median ratio with its range; `--json` adds one JSON
line for scripts. The worktree is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def bench_once(checkout: Path, config: str, overrides: list[str], steps: int, warmup: int) -> float:
    """examples x supervision steps per second of one `trm bench` process running `checkout`'s code."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    command = [sys.executable, "-m", "trm", "bench", str(REPO / config), *overrides,
               "--steps", str(steps), "--warmup", str(warmup)]
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"trm bench failed in {checkout}:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["examples_x_steps_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rev", help="the earlier commit to compare with (any git revision)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for both")
    parser.add_argument("--config", default="configs/cpu/sudoku-mlp.yaml", help="config, relative to the repository")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds (default: 6)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per bench (default: 30)")
    parser.add_argument("--warmup", type=int, default=8, help="untimed steps first (default: 8)")
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="trm-bench-") as tmp:
        baseline = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(baseline), args.rev],
                       check=True)
        try:
            ours, theirs = [], []
            for r in range(args.rounds):
                order = [(REPO, ours), (baseline, theirs)]
                for checkout, results in order if r % 2 == 0 else order[::-1]:
                    results.append(bench_once(checkout, args.config, args.overrides, args.steps, args.warmup))
                print(f"round {r + 1}: this tree {ours[-1]:8.1f}  {args.rev} {theirs[-1]:8.1f}  "
                      f"ratio {ours[-1] / theirs[-1]:.3f}", flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(baseline)], check=False)
    ratios = [a / b for a, b in zip(ours, theirs)]
    median = statistics.median(ratios)
    print(f"examples x steps/s, median: this tree {statistics.median(ours):.1f}, {args.rev} "
          f"{statistics.median(theirs):.1f}; ratio {median:.3f} (range {min(ratios):.3f}-{max(ratios):.3f}, "
          f"{args.rounds} rounds, {args.config} {' '.join(args.overrides)})")
    if args.json:
        print(json.dumps({"rev": args.rev, "config": args.config, "overrides": args.overrides, "ours": ours,
                          "baseline": theirs, "ratios": ratios, "median_ratio": median}))


if __name__ == "__main__":
    main()
