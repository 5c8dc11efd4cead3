"""Measure a checkpoint for its model card: exact accuracy after 1, 2, 4, 8 and 16 supervision
steps (fixed halting, the reference's evaluation) and with adaptive halting, on each dataset.

    python bench/model_card.py trm/pretrained/sudoku-9x9 \
        --data data/sudoku-test-40 data/sudoku-test-34 data/sudoku-test-28

Prints a markdown table and, for every number, the `trm eval` command that reproduces it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from trm.backends import reuse_freed_memory
from trm.eval import evaluate

STEPS = (1, 2, 4, 8, 16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--data", nargs="+", required=True, help="dataset directories (their test split)")
    parser.add_argument("--thresholds", nargs="+", type=float, default=[0.0, 2.0],
                        help="q_halt thresholds of adaptive halting (default: 0 2)")
    parser.add_argument("--limit", type=int, help="first N test examples only")
    parser.add_argument("--json", help="also write every number to this JSON file")
    args = parser.parse_args()
    reuse_freed_memory()  # as trm eval on a CPU: freed activations kept for the next step

    header = "| data | examples | " + " | ".join(f"{k} step{'s' * (k > 1)}" for k in STEPS)
    header += " | " + " | ".join(f"adaptive q>{t:g} (mean steps)" for t in args.thresholds)
    print(header + " | valid by the rules (fixed) |")
    print("|" + "---|" * (3 + len(STEPS) + len(args.thresholds)))
    commands, numbers = [], {}
    for data in args.data:
        fixed = evaluate(args.checkpoint, data, halt="fixed", max_steps=max(STEPS), limit=args.limit, progress=False)
        commands.append(f"trm eval {args.checkpoint} --data {data}")
        cells = [f"{fixed.exact_accuracy_per_step[k - 1]:.2%}" for k in STEPS]
        numbers[data] = {
            "examples": fixed.num_examples,
            "fixed_exact_per_step": fixed.exact_accuracy_per_step,
            "fixed_valid_rate": fixed.valid_rate,
            "adaptive": {},
        }
        for t in args.thresholds:
            adaptive = evaluate(args.checkpoint, data, halt="adaptive", halt_threshold=t, limit=args.limit,
                                progress=False)
            cells.append(f"{adaptive.exact_accuracy:.2%} ({adaptive.mean_steps:.2f})")
            numbers[data]["adaptive"][f"{t:g}"] = {
                "exact_accuracy": adaptive.exact_accuracy, "mean_steps": adaptive.mean_steps,
                "valid_rate": adaptive.valid_rate}
            commands.append(f"trm eval {args.checkpoint} --data {data} --halt adaptive --halt-threshold {t:g}")
        valid = f"{fixed.valid_rate:.2%}" if fixed.valid_rate is not None else "-"
        print(f"| {data} | {fixed.num_examples:,} | " + " | ".join(cells) + f" | {valid} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"checkpoint": args.checkpoint, "data": numbers}, indent=1))
    print("\nReproduce with:")
    for c in commands:
        print("  " + c + (f" --limit {args.limit}" if args.limit else ""))


if __name__ == "__main__":
    main()
