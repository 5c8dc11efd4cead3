"""Measure a Sudoku model for the sudoku-hard card: held-out exact accuracy with one trajectory
(fixed 16 steps, the acceptance figure; every step 1 to 16; adaptive halting) and with test-time
scaling (K trajectories judged by the rules), on three held-out sets that no training run reads:

    hard    1,000 fresh generated minimal Sudokus rated hard (our solver's backtracks >= 4), seed 2811
    royle   1,000 of Gordon Royle's 17-clue puzzles (a random subset, seed 2812)
    28-40   1,000 generated puzzles with 28 to 40 givens (what the 9x9 model was trained on), seed 2813

    python bench/sudoku_hard.py MODEL --royle FILE                # build the sets, print the table
    python bench/sudoku_hard.py MODEL --royle FILE --card         # also write MODEL/card.json
    python bench/sudoku_hard.py MODEL --curve RUN_DIR             # also draw MODEL/training-curve.png
    python bench/sudoku_hard.py MODEL --royle FILE --limit 100    # a quick look: 100 puzzles per set

MODEL is a model directory (trm/pretrained/sudoku-hard, a run's best/ or a checkpoint). Each
number in the table comes with the `trm` command that reproduces it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HARD_DIFFICULTY = 4
SETS = {
    "data/sudoku-test-hard": {"source": "generate", "givens": "minimal", "min_difficulty": HARD_DIFFICULTY,
                              "train_size": 1, "test_size": 1000, "seed": 2811},
    "data/sudoku-test-royle": {"source": "royle17", "train_size": 1, "test_size": 1000, "seed": 2812},
    "data/sudoku-test-28-40": {"source": "generate", "givens": "28-40", "train_size": 1, "test_size": 1000,
                               "seed": 2813},
}  # fmt: skip
TRAJECTORIES, TRAJECTORY_STEPS = 128, 16  # the card's test-time scaling: the 16 steps a trajectory
BACKEND = "onednn"  # the kernels the card is measured with (trm eval's --backend)


def build_command(path: str, spec: dict[str, Any], royle: str | None) -> list[str]:
    options = [f"--{k.replace('_', '-')}={v}" for k, v in spec.items()]
    if spec["source"] == "royle17":
        options.append(f"--input={royle}")
    return ["trm", "data", "sudoku", *options, "-o", path]


def build_sets(root: Path, royle: str | None) -> None:
    from trm.cli import main as trm_main

    for path, spec in SETS.items():
        if (root / path / "test" / "dataset.json").exists():
            continue
        if spec["source"] == "royle17" and royle is None:
            raise SystemExit("the Royle set needs the puzzle file: pass --royle FILE (royle-17-clue.txt)")
        command = build_command(str(root / path), spec, royle)
        print(" ".join(command), flush=True)
        status = trm_main(command[1:])
        if status:
            raise SystemExit(status)


def measure(
    model: str, root: Path, limit: int | None, trajectories: int, steps: int, backend: str = BACKEND
) -> dict[str, Any]:
    from trm.eval import evaluate
    from trm.eval.scaling import evaluate_trajectories
    from trm.eval.trajectories import Plan

    numbers: dict[str, Any] = {}
    for path in SETS:
        data = root / path
        fixed = evaluate(model, data, halt="fixed", max_steps=16, limit=limit, backend=backend, progress=False)
        adaptive = evaluate(model, data, halt="adaptive", limit=limit, backend=backend, progress=False)
        plan = Plan(trajectories=trajectories, select="verify", noise=0.0, views=True, max_steps=steps)
        scaled = evaluate_trajectories(model, data, plan, limit=limit, backend=backend, progress=False)
        numbers[path] = {
            "examples": fixed.num_examples,
            "fixed_exact_per_step": fixed.exact_accuracy_per_step,
            "fixed_valid_rate": fixed.valid_rate,
            "adaptive": {"0": {"exact_accuracy": adaptive.exact_accuracy, "mean_steps": adaptive.mean_steps,
                               "valid_rate": adaptive.valid_rate}},
            "trajectories": {"select": "verify", "K": trajectories, "max_steps": steps,
                             "exact_accuracy": scaled.exact_accuracy,
                             "accuracy_at_k": {str(k): v for k, v in scaled.accuracy_at_k["verify"].items()},
                             "mean_trajectories": scaled.mean_trajectories,
                             "time_per_puzzle_s": scaled.time_per_puzzle_s},
        }  # fmt: skip
        print(f"{path}: {fixed.exact_accuracy_per_step[15]:.2%} at 16 steps, K={trajectories} verify "
              f"{scaled.exact_accuracy:.2%}", flush=True)  # fmt: skip
    return numbers


def table(model: str, numbers: dict[str, Any], limit: int | None, backend: str = BACKEND) -> list[str]:
    pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731
    first = next(iter(numbers.values()))["trajectories"]
    k, steps = first["K"], first["max_steps"]
    rows = [
        "| test set | puzzles | 1 step | 4 steps | 16 steps | adaptive q>0 (mean steps) | "
        f"K={k} verify, {steps} steps (mean trajectories) |",
        "|---|---|---|---|---|---|---|",
    ]
    commands = []
    for path, s in numbers.items():
        t = s["trajectories"]
        per = s["fixed_exact_per_step"]
        a = s["adaptive"]["0"]
        rows.append(f"| `{path}` | {s['examples']:,} | {pct(per[0])} | {pct(per[3])} | **{pct(per[15])}** | "
                    f"{pct(a['exact_accuracy'])} ({a['mean_steps']:.2f}) | {pct(t['exact_accuracy'])} "
                    f"({t['mean_trajectories']:.2f}) |")  # fmt: skip
        tail = f" --backend {backend}" + (f" --limit {limit}" if limit else "")
        commands += [f"trm eval {model} --data {path}{tail}", f"trm eval {model} --data {path} --halt adaptive{tail}",
                     f"trm eval {model} --data {path} --trajectories {k} --select verify "
                     f"--max-steps {steps}{tail}"]  # fmt: skip
    return [*rows, "", "```bash", *commands, "```"]


def plot_curve(run_dir: Path, out: Path) -> Path:
    """The training curve: the training set's own test split (it chose the checkpoint) and the
    training loss, against optimizer steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    tests = [(m["step"], 100 * m["test/exact_accuracy"]) for m in lines if "test/exact_accuracy" in m]
    losses = [(m["step"], m["train/loss"]) for m in lines if "train/loss" in m]
    fig, left = plt.subplots(figsize=(6.5, 4))
    right = left.twinx()
    if losses:
        steps, values = zip(*losses)
        window = max(1, len(values) // 100)
        smooth = [
            sum(values[max(0, i - window) : i + 1]) / len(values[max(0, i - window) : i + 1])
            for i in range(len(values))
        ]
        right.plot(steps, smooth, color="tab:grey", alpha=0.6, label="training loss (smoothed)")
    if tests:
        left.plot(*zip(*tests), "o-", color="tab:blue", label="exact accuracy, the training set's test split")
    left.set(xlabel="optimizer step", ylabel="exact accuracy at 16 steps (%)")
    right.set_ylabel("training loss")
    left.grid(alpha=0.3)
    fig.legend(loc="lower center", fontsize=8, ncol=2, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model directory")
    parser.add_argument("--royle", help="Gordon Royle's 17-clue puzzle file (for the royle set)")
    parser.add_argument("--root", default=".", help="where data/sudoku-test-* are built (default: .)")
    parser.add_argument("--limit", type=int, help="the first N puzzles of each set only")
    parser.add_argument("--trajectories", type=int, default=TRAJECTORIES, help=f"K (default {TRAJECTORIES})")
    parser.add_argument(
        "--trajectory-steps",
        type=int,
        default=TRAJECTORY_STEPS,
        metavar="N",
        help=f"step limit of each of the K trajectories (default {TRAJECTORY_STEPS})",
    )
    parser.add_argument(
        "--backend",
        choices=["default", "onednn"],
        default=BACKEND,
        help="kernels for the products, as trm eval's --backend; a figure is reproduced with the kernels it was "
        "measured with, and the printed commands name them (default: %(default)s)",
    )
    parser.add_argument("--card", action="store_true", help="write MODEL/card.json")
    parser.add_argument("--curve", metavar="RUN_DIR", help="draw MODEL/training-curve.png from the run's metrics")
    args = parser.parse_args(argv)
    root = Path(args.root)
    build_sets(root, args.royle)
    from trm.backends import reuse_freed_memory

    reuse_freed_memory()  # as trm eval on a CPU: freed activations kept for the next step
    numbers = measure(args.model, root, args.limit, args.trajectories, args.trajectory_steps, args.backend)
    print("\n".join(table(args.model, numbers, args.limit, args.backend)))
    if args.card:
        card = {
            "checkpoint": args.model,
            "data": numbers,
            "datasets": SETS,
            "limit": args.limit,
            "backend": args.backend,
        }
        (Path(args.model) / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    if args.curve:
        print(f"wrote {plot_curve(Path(args.curve), Path(args.model) / 'training-curve.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
