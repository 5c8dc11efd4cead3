"""What does adaptive halting save? Fixed N_sup steps versus stopping on the halting head.

    python bench/adaptive_halting.py runs/sudoku-cpu data/sudoku-40 --limit 1000
    python bench/adaptive_halting.py runs/sudoku data/sudoku-extreme-1k-aug-1000 --limit 10000 --thresholds 0 1 2
    python bench/adaptive_halting.py runs/sudoku data/sudoku-gen30 --device cuda --batch-size 1024

Evaluates a checkpoint on a Sudoku (or any) test split with every sample running the model's
N_sup supervision steps (the reference's evaluation), then with adaptive halting capped at
N_sup (halt when q_halt > threshold; 0 is the rule the model was trained with), and prints
exact accuracy and network calls for each and the ratio to fixed.
Goal (the issue's acceptance): at least 4x fewer network calls for at most 0.5 points of exact
accuracy lost, on a trained Sudoku model.
"""

from __future__ import annotations

import argparse
import json
import sys

from trm.errors import TRMError
from trm.eval.evaluate import EvalReport, evaluate, resolve_checkpoint
from trm.model.checkpoint import load_model

GOAL_RATIO, GOAL_POINTS = 4.0, 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="checkpoint directory (ours) or reference run")
    parser.add_argument("data", help="dataset root with a test/ split")
    parser.add_argument("--limit", type=int, help="evaluate only the first N test puzzles")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.0], help="q_halt thresholds (default 0)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", metavar="PATH", help="also write every report here")
    args = parser.parse_args()

    model = load_model(resolve_checkpoint(args.checkpoint), device=args.device)
    common = dict(batch_size=args.batch_size, limit=args.limit, max_steps=model.config.N_sup)
    fixed = evaluate(model, args.data, halt="fixed", **common)
    adaptive = {q: evaluate(model, args.data, halt="adaptive", halt_threshold=q, **common) for q in args.thresholds}

    print(
        f"{args.checkpoint} on {args.data}: {fixed.num_examples:,} test puzzles, N_sup = {model.config.N_sup}, "
        f"{fixed.network_calls_per_step} network calls per supervision step"
    )
    header = ("halting", "exact acc", "mean steps", "network calls", "fewer calls", "wall s")
    print("{:<16} {:>10} {:>11} {:>15} {:>12} {:>8}".format(*header))
    _row("fixed", fixed, fixed)
    for q, report in adaptive.items():
        _row(f"adaptive q>{q:g}", report, fixed)
    for q, report in adaptive.items():
        ratio, lost = _ratio(fixed, report), 100 * (fixed.exact_accuracy - report.exact_accuracy)
        met = ratio >= GOAL_RATIO and lost <= GOAL_POINTS
        print(
            f"adaptive q>{q:g}: {ratio:.2f}x fewer network calls, {lost:.2f} points of exact accuracy lost "
            f"(goal >= {GOAL_RATIO:.0f}x for <= {GOAL_POINTS} points: {'met' if met else 'not met'})"
        )
    if args.json:
        reports = {"fixed": fixed.to_json(), **{f"adaptive_q{q:g}": r.to_json() for q, r in adaptive.items()}}
        with open(args.json, "w") as f:
            json.dump(reports, f, indent=2)


def _ratio(fixed: EvalReport, report: EvalReport) -> float:
    return fixed.network_calls / max(report.network_calls, 1)


def _row(name: str, report: EvalReport, fixed: EvalReport) -> None:
    print(
        f"{name:<16} {report.exact_accuracy:>10.2%} {report.mean_steps:>11.2f} {report.network_calls:>15,} "
        f"{_ratio(fixed, report):>11.2f}x {report.wall_time_s:>8.1f}"
    )


if __name__ == "__main__":
    try:
        main()
    except TRMError as e:
        sys.exit(f"adaptive_halting: error: {e}")
