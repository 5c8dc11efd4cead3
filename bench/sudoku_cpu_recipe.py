"""The CPU Sudoku recipe, end to end: data, 20 minutes of training, held-out accuracy.

    python bench/sudoku_cpu_recipe.py                       # the recipe for this CPU, runs/sudoku-cpu
    python bench/sudoku_cpu_recipe.py --name try2 lr=2e-3   # overrides go to `trm train`

The recipe for this CPU: configs/cpu/sudoku-mlp.yaml (bfloat16) where the CPU multiplies
bfloat16 natively (AVX512-BF16 or AMX), configs/cpu/sudoku-mlp-float32.yaml elsewhere.

Builds the dataset of the recipe if it is missing (20,000 generated 40-given puzzles for
training, 1,000 held-out ones for test; its build time is not training time), trains, then
prints the learning curve (test exact accuracy against training minutes, evaluation time
excluded) and the held-out exact accuracy after 1, 2, 4, 8 and 16 supervision steps of the
best checkpoint. Goal: at least 99% exact on the 1,000 held-out puzzles within 20 minutes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from trm.model.precision import native_bfloat16
from trm.train.config import load_train_config

CONFIG = "configs/cpu/sudoku-mlp.yaml"  # bfloat16, for CPUs with native bfloat16
FLOAT32_CONFIG = "configs/cpu/sudoku-mlp-float32.yaml"  # for the others
DATA_COMMAND = ["trm", "data", "sudoku", "--source", "generate", "--givens", "40", "--train-size", "20000",
                "--test-size", "1000", "--seed", "0", "-o"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help=f"default: {CONFIG} on a CPU with native bfloat16, else {FLOAT32_CONFIG}")
    parser.add_argument("--name", default="sudoku-cpu", help="run name (runs/NAME)")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    if args.config is None:
        args.config = CONFIG if native_bfloat16("cpu") else FLOAT32_CONFIG
        print(f"recipe: {args.config} (this CPU has {'' if args.config == CONFIG else 'no '}native bfloat16)")

    config = load_train_config(args.config, [f"name={args.name}", *args.overrides])
    data = Path(config.data.path)
    if not data.exists():
        subprocess.run([*DATA_COMMAND, str(data)], check=True)
    run_dir = config.resolved_run_dir
    if not (run_dir / "metrics.jsonl").exists():
        subprocess.run(["trm", "train", args.config, f"name={args.name}", *args.overrides], check=True)
    report(run_dir)


def report(run_dir: Path) -> None:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [m for m in lines if "test/exact_accuracy" in m]
    if not evals:
        sys.exit(f"{run_dir}: no evaluation in metrics.jsonl")
    rates = [m["train/examples_x_steps_per_s"] for m in lines if "train/examples_x_steps_per_s" in m]
    print(f"\nlearning curve of {run_dir} (test = {int(evals[-1]['test/count'])} held-out puzzles)")
    print(f"{'step':>6} {'train min':>9} {'test exact':>10} {'test token':>10}")
    for m in evals:
        minutes, exact, token = m["train_seconds"] / 60, m["test/exact_accuracy"], m["test/accuracy"]
        print(f"{m['step']:>6} {minutes:>9.1f} {exact:>10.2%} {token:>10.2%}")
    best = max(evals, key=lambda m: m["test/exact_accuracy"])
    print(f"\nbest: step {best['step']} after {best['train_seconds'] / 60:.1f} min of training: "
          f"{best['test/exact_accuracy']:.2%} exact")
    steps = [k for k in (1, 2, 4, 8, 16) if f"test/exact_accuracy@{k}" in best]
    print("exact accuracy after k supervision steps: "
          + ", ".join(f"k={k}: {best[f'test/exact_accuracy@{k}']:.2%}" for k in steps))
    print(f"training throughput: {sum(rates) / len(rates):.1f} examples x supervision steps per second (mean)")


if __name__ == "__main__":
    main()
