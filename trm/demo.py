"""`trm demo`: the shipped 9x9 Sudoku model solving held-out puzzles, step by step.

By default the demo loads the model that ships with the package (`trm/pretrained/sudoku-9x9`,
its model card says how it was trained), generates held-out puzzles with our generator,
solves them, prints the accuracy after each supervision step and with adaptive and valid halting,
shows one puzzle being refined, and writes pictures of that refinement. `--train` first trains a small
model from scratch with the CPU recipe (minutes on 2 cores) and then does the same with it.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trm.data.build import build_dataset
from trm.data.format import read_dataset
from trm.data.sudoku import SudokuSource
from trm.errors import ConfigError
from trm.eval import evaluate
from trm.eval.adaptive import run_steps
from trm.eval.evaluate import check_device
from trm.model import TRM, load_model
from trm.model.precision import native_bfloat16
from trm.solve.render import format_steps, save_picture, use_colour
from trm.solve.solve import solve
from trm.tasks import SUDOKU, Puzzle

PRETRAINED = Path(__file__).parent / "pretrained"
SUDOKU_MODEL = PRETRAINED / "sudoku-9x9"
# The held-out puzzles: the same generator settings and seed as the model card's 40-given test
# set (`trm data sudoku --source generate --givens 40 --train-size 1 --test-size 1000 --seed 240`),
# so the demo's accuracy is the card's.
HELD_OUT_SEED = 240
# Adaptive halting stops a puzzle once q_halt > 2: on the card's 40-given puzzles, 1.08 steps
# on average instead of 16, for 0.5 points of accuracy.
HALT_THRESHOLD = 2.0


@dataclass(frozen=True)
class DemoResult:
    exact_accuracy: float  # after N_sup steps
    adaptive_exact_accuracy: float
    adaptive_mean_steps: float
    valid_exact_accuracy: float  # valid halting: the halting head and Sudoku's rules agree
    valid_mean_steps: float
    seconds: float
    pictures: list[Path]


def _say(text: str = "") -> None:
    print(text, flush=True)


def train_small_model(
    output: Path, minutes: float, seed: int, device: str = "auto", threads: int | None = None
) -> Path:
    """Train the CPU recipe on freshly generated 40-given puzzles with its schedule squeezed into
    `minutes`, on `device` ("auto", "cpu" or "cuda"); returns the run's best checkpoint.

    The recipe is configs/cpu/sudoku-mlp.yaml where the CPU multiplies bfloat16 natively, else
    configs/cpu/sudoku-mlp-float32.yaml (its learning rate suits a short float32 schedule)."""
    from trm.train.config import CONFIGS, load_train_config
    from trm.train.loop import train

    data = output / "train-data"
    if not data.exists():
        _say("Generating 20,000 training puzzles and 1,000 test puzzles (40 givens)...")
        build_dataset(
            SudokuSource(source="generate", output=data, givens=40, train_size=20_000, test_size=1_000, seed=seed)
        )
    run_dir = output / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    native = native_bfloat16("cpu")
    recipe = CONFIGS / "cpu" / ("sudoku-mlp.yaml" if native else "sudoku-mlp-float32.yaml")
    # Compiled, on 2 cores (batch 64), the recipe runs about 5 steps per second in bfloat16 on a
    # CPU with native bfloat16 and about 2 in float32 on one without; on a slower machine the time
    # limit ends the run before the schedule does. Two evaluations on 500 test puzzles (mid-way and
    # at the end) pick the checkpoint.
    steps = int(minutes * 60 * (5 if native else 2))
    config = load_train_config(
        recipe,
        [
            "name=demo",
            f"run_dir={run_dir}",
            f"seed={seed}",
            f"device={device}",
            f"data.path={data}",
            "data.eval_limit=500",
            f"max_steps={steps}",
            f"max_minutes={minutes}",
            f"eval_interval={max(steps // 2, 1)}",
            f"threads={threads or 'null'}",
            "log.tensorboard=false",
        ],
    )
    c = config.model
    _say(
        f"Training a TRM-MLP (D={c.hidden_size}, T={c.T}, n={c.n}) from {recipe.name} for at most {minutes:g} "
        f"minutes ({steps} steps); run directory {run_dir}"
    )
    train(config)
    return run_dir / "best"


def held_out_puzzles(output: Path, count: int, givens: int, seed: int) -> Path:
    data = output / f"held-out-{givens}-givens-seed-{seed}-{count}"
    if not data.exists():
        build_dataset(
            SudokuSource(source="generate", output=data, givens=givens, train_size=1, test_size=count, seed=seed),
            progress=False,
        )
    return data


def _most_interesting(data: Path, model: TRM, limit: int) -> Puzzle:
    """A held-out puzzle that shows refinement: of the first 256, among those solved after N_sup
    steps (all of them if none is), the one whose first-step answer has the most wrong digits."""
    test = read_dataset(data, "test")
    inputs = np.concatenate([s.inputs for s in test.sets.values()])[: min(limit, 256)]
    labels = np.concatenate([s.labels for s in test.sets.values()])[: len(inputs)]
    device = next(model.parameters()).device
    batch = {
        "inputs": torch.from_numpy(inputs).long().to(device),
        "labels": torch.from_numpy(labels).long().to(device),
        "puzzle_identifiers": torch.zeros(len(inputs), dtype=torch.long, device=device),
    }
    first: list[np.ndarray] = []

    def keep_the_first_answers(step: int, _rows: torch.Tensor, preds: torch.Tensor, _out) -> None:
        if step == 1:
            first.append(preds.cpu().numpy())

    last = run_steps(model.eval(), batch, model.config.N_sup, on_step=keep_the_first_answers).preds.cpu().numpy()
    wrong_first = (first[0] != labels).sum(-1)
    solved_last = (last == labels).all(-1)
    pick = int(np.argmax(np.where(solved_last, wrong_first, -1))) if solved_last.any() else int(np.argmax(wrong_first))
    return Puzzle(SUDOKU, SUDOKU.decode(inputs[pick]), f"held-out puzzle {pick}")


def run_demo(
    model_path: str | Path | None = None,
    train: bool = False,
    minutes: float = 7.0,
    puzzles: int = 1000,
    givens: int = 40,
    seed: int = HELD_OUT_SEED,
    output: str | Path = "trm-demo",
    threads: int | None = None,
    device: str | None = None,
) -> DemoResult:
    """`device` (default: the CPU; with `train`, training takes CUDA where there is one) runs everything."""
    start = time.perf_counter()
    run_device = check_device(device) or torch.device("cpu")
    if train and device is not None and run_device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device '{device}': training runs on cpu or cuda")
    if threads:
        torch.set_num_threads(threads)
    output = Path(output)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--output {output}: cannot be made a directory ({e.strerror or e})") from None
    if train:
        checkpoint = train_small_model(
            output, minutes, seed=0, device=run_device.type if device else "auto", threads=threads
        )
        trained_in = time.perf_counter() - start
        _say(f"\nTrained in {trained_in / 60:.1f} minutes.")
    else:
        checkpoint = Path(model_path) if model_path else SUDOKU_MODEL
    model = load_model(checkpoint, device=run_device)
    c = model.config
    _say(
        f"Model: {checkpoint} (TRM-MLP, D={c.hidden_size}, T={c.T}, n={c.n}, N_sup={c.N_sup}, "
        f"{model.num_parameters():,} parameters)"
    )

    data = held_out_puzzles(output, puzzles, givens, seed)
    _say(f"Held-out puzzles: {puzzles:,} generated {givens}-given 9x9 Sudokus (seed {seed}), never seen in training.")
    report = evaluate(model, data, halt="fixed", progress=True)
    _say(
        f"\nExact accuracy: {report.exact_accuracy:.2%} of {report.num_examples:,} puzzles after "
        f"{report.max_steps} supervision steps ({report.wall_time_s:.1f} s)."
    )
    per_step = "  ".join(
        f"{k}: {report.exact_accuracy_per_step[k - 1]:.1%}"
        for k in (1, 2, 3, 4, 8, 16)
        if k <= len(report.exact_accuracy_per_step)
    )
    _say(f"Exact accuracy after k steps: {per_step}")
    adaptive = evaluate(model, data, halt="adaptive", halt_threshold=HALT_THRESHOLD, progress=False)
    _say(
        f"With adaptive halting (stop a puzzle once its halting head says q_halt > {HALT_THRESHOLD:g}): "
        f"{adaptive.exact_accuracy:.2%}, {adaptive.mean_steps:.2f} steps per puzzle on average "
        f"({report.network_calls / max(adaptive.network_calls, 1):.1f}x fewer network calls, "
        f"{adaptive.wall_time_s:.1f} s)."
    )
    valid = evaluate(model, data, halt="valid", progress=False)
    _say(
        f"With valid halting (stop once q_halt > 0 and the answer keeps Sudoku's rules, trm solve's default): "
        f"{valid.exact_accuracy:.2%}, {valid.mean_steps:.2f} steps per puzzle on average "
        f"({report.network_calls / max(valid.network_calls, 1):.1f}x fewer network calls, "
        f"{valid.wall_time_s:.1f} s)."
    )

    puzzle = _most_interesting(data, model, puzzles)
    solution = solve(model, puzzle, halt="valid")[0]
    _say(
        f"\nOne held-out puzzle ({int((puzzle.grid != 0).sum())} givens), the answer after each supervision "
        "step (halting confidence sigmoid(q_halt) in brackets; changed digits highlighted):"
    )
    width = shutil.get_terminal_size((160, 24)).columns
    _say(format_steps(solution, colour=use_colour(sys.stdout), width=width, with_puzzle=True))
    verdict = "solved" if solution.valid else f"NOT solved ({solution.problem})"
    if solution.steps < solution.max_steps:
        _say(
            f"{verdict}; it stopped after {solution.steps} of at most {solution.max_steps} steps, once the halting "
            "head said so and the answer kept Sudoku's rules"
        )
    else:
        _say(f"{verdict}; it ran to the {solution.max_steps}-step cap")
    pictures = [save_picture(solution, output / "refinement.png"), save_picture(solution, output / "refinement.gif")]
    _say(f"Pictures of the refinement: {pictures[0]}, {pictures[1]}")
    seconds = time.perf_counter() - start
    _say(f"Demo finished in {seconds:.0f} s.")
    return DemoResult(
        report.exact_accuracy,
        adaptive.exact_accuracy,
        adaptive.mean_steps,
        valid.exact_accuracy,
        valid.mean_steps,
        seconds,
        pictures,
    )
