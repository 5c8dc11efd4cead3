"""The paper's runs on this machine's GPU: training-step speed and the time a whole run takes.

    python bench/paper_runs_gpu.py                                  # every published config
    python bench/paper_runs_gpu.py --configs sudoku-extreme-mlp maze-hard --steps 30

For each published config (configs/NAME.yaml) this times the training step as `trm bench` does
(the config's model, bfloat16 forward, torch.compile, AdamATan2; random tokens of the data's
shape, so no dataset is needed) at the global batch of 768 (global_batch_size=N times
another), halved until it fits in the GPU's memory, and multiplies by the run's optimizer
steps, counted as the reference counts them (epochs x groups x mean examples per puzzle /
768), for the hours of a whole run. A step timed at 768 / G is the step of a G-GPU
data-parallel run (gradient all-reduce not counted), so the hours are given for G GPUs. Data
loading, evaluation and the puzzle-embedding rows' sign-SGD step are not timed. Writes the
figures as JSON with --json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from trm.train.bench import bench
from trm.train.config import load_train_config

REPO = Path(__file__).resolve().parents[1]

# The data of each run: sequence length, vocabulary, puzzle identifiers, and the training
# split's groups and mean examples per puzzle, which fix the run's length. Sudoku-Extreme and
# Maze-Hard: 1000 training puzzles of one example, one shared identifier. ARC: read from
# train/dataset.json of `trm data arc --preset arc-agi-1 (or -2) --num-aug 4` on the Kaggle JSON
# (the examples per puzzle do not depend on the variant count); 1000 variants per task give
# about groups x 1001 identifiers.
DATA = {
    "sudoku-extreme-mlp": dict(seq_len=81, vocab_size=11, num_puzzle_identifiers=1, groups=1000, mean_examples=1.0),
    "sudoku-extreme-att": dict(seq_len=81, vocab_size=11, num_puzzle_identifiers=1, groups=1000, mean_examples=1.0),
    "maze-hard": dict(seq_len=900, vocab_size=6, num_puzzle_identifiers=1, groups=1000, mean_examples=1.0),
    "arc-agi-1": dict(seq_len=900, vocab_size=12, num_puzzle_identifiers=960 * 1001 + 1, groups=960,
                      mean_examples=4.154),
    "arc-agi-2": dict(seq_len=900, vocab_size=12, num_puzzle_identifiers=1280 * 1001 + 1, groups=1280,
                      mean_examples=4.354),
}


PAPER_BATCH = 768  # the global batch of every published run


def run_steps(config, data: dict) -> int:
    return int(config.epochs * data["groups"] * data["mean_examples"] / PAPER_BATCH)


def measure(name: str, steps: int, warmup: int, overrides: list[str]) -> dict:
    data = DATA[name]
    shape = [f"model.{k}={data[k]}" for k in ("seq_len", "vocab_size", "num_puzzle_identifiers")]
    config = load_train_config(REPO / "configs" / f"{name}.yaml", ["data.path=none", *shape, *overrides])
    batch = config.global_batch_size
    while True:
        try:
            result = bench(config.model_copy(update=dict(global_batch_size=batch)), steps=steps, warmup=warmup)
            break
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            if batch <= 96:
                raise
            batch //= 2
    total = run_steps(config, data)
    peak = torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else 0.0
    gpus = max(1, PAPER_BATCH // batch)  # data parallel: each of these GPUs runs the batch timed here
    return dict(config=name, batch=batch, run_steps=total, gpus=gpus,
                run_hours=total * result["step_seconds"] / 3600, peak_memory_gb=peak,
                **result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(DATA), choices=list(DATA), metavar="NAME",
                        help=f"which runs (default: all of {', '.join(DATA)})")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per config (default: 20)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first, compilation included (default: 5)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for every run")
    args = parser.parse_args()

    if torch.cuda.is_available():
        print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    else:
        print("no CUDA device: timing on the CPU (slow at these shapes)")
    rows = []
    for name in args.configs:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        row = measure(name, args.steps, args.warmup, args.overrides)
        rows.append(row)
        print(f"{name}: batch {row['batch']}, {row['step_seconds'] * 1000:.1f} ms/step, "
              f"{row['examples_x_steps_per_s']:.0f} ex x steps/s, {row['model_flops_per_s'] / 1e12:.1f} TFLOP/s, "
              f"peak {row['peak_memory_gb']:.1f} GB", flush=True)

    print("\n| config | batch timed | ms / step | examples x steps / s | model TFLOP/s | of bf16 matmul rate "
          "| run steps | hours of training (GPUs) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        frac = r.get("fraction_of_forward_dtype_matmul_rate", r["fraction_of_matmul_rate"])
        print(f"| {r['config']} | {r['batch']} | {r['step_seconds'] * 1000:.1f} | {r['examples_x_steps_per_s']:,.0f} | "
              f"{r['model_flops_per_s'] / 1e12:.1f} | {frac:.1%} | {r['run_steps']:,} | "
              f"{r['run_hours']:.1f} ({r['gpus']}) |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
