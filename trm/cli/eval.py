"""`trm eval`: a checkpoint on a dataset (and the options `trm solve` shares with it)."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from trm.config import BACKEND_CHOICES, HALT_MODES, HALT_THRESHOLD, SELECT_RULES

if TYPE_CHECKING:
    from trm.eval.trajectories import Plan

EVAL_EXAMPLES = """\
examples:
  trm eval runs/sudoku --data data/sudoku-extreme-1k-aug-1000
  trm eval runs/sudoku --data data/sudoku-extreme-1k-aug-1000 --halt adaptive --limit 10000
  trm eval runs/sudoku --data data/sudoku-extreme-1k-aug-1000 --halt valid --limit 10000
  trm eval runs/sudoku --data data/sudoku-extreme-1k-aug-1000 --max-steps 32 --device cuda
  trm eval runs/arc1 --data data/arc1 --batch-size 512 --device cuda --output results/arc1.json

test-time scaling (Sudoku, Maze): several trajectories per puzzle, one answer chosen from them
  trm eval runs/sudoku --data data/sudoku-test --trajectories 16
  trm eval runs/sudoku --data data/sudoku-test --trajectories 64 --noise 0.2 --max-steps 32 --seed 1
  trm eval runs/maze --data data/maze-test --trajectories 8 --select vote
  trm eval runs/sudoku --data data/sudoku-test --trajectories 8 --noise 0.3 --no-views --select halt

CHECKPOINT may be a training run directory: its best/ checkpoint is evaluated (else its newest
checkpoints/step_N/). The report (JSON) goes to CHECKPOINT/eval/<data>-<split>-<halt>/report.json
(RUN_DIR/eval/best-<data>-<split>-<halt>/ for a run) unless --output says otherwise; for ARC,
submission.json (Kaggle format) is written beside it. For a model shipped with the package
(trm/pretrained/NAME) the report goes to ./eval/NAME-<data>-<split>-<halt>/ instead, so nothing
is written inside the installed package.

With --trajectories, --noise or --select the run is a test-time scaling run: its report (selected
exact accuracy, pass@K, which is judged by the labels and is not an accuracy, valid rate, compute per
puzzle, accuracy at K = 1, 2, 4, ...) goes to <data>-<split>-K<K>-<select>[-noise<S>][-noviews]
[-k<steps>][-q<Q>]-seed<N>/report.json in the same place. --halt does not apply there: --select decides when
trajectories stop. ARC keeps its own voting over its dataset's variants (pass@K) and takes none of these.
"""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _noise(text: str) -> float:
    value = float(text)
    if not value >= 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a number 0 or more, got {text}")
    return value


def _threshold(text: str) -> float:
    value = float(text)
    if math.isnan(value):
        raise argparse.ArgumentTypeError("must be a number, got nan")
    return value


HALT_HELP = (
    "fixed: every sample runs --max-steps steps (the reference's evaluation); adaptive: a sample stops when its "
    "halting logit says so (q_halt > Q), or at --max-steps; valid (Sudoku, Maze): a sample stops when its halting "
    "logit says so and its answer keeps the puzzle's rules, or at --max-steps"
)


def _add_common(parser: argparse.ArgumentParser, halt_default: str | None) -> None:
    parser.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="a checkpoint directory, a training run directory (its best/ checkpoint, else the newest), or a "
        "reference run directory / step_N file",
    )
    default = f"default: {halt_default}" if halt_default else "default: valid for Sudoku and Maze, adaptive for ARC"
    parser.add_argument("--halt", choices=HALT_MODES, default=halt_default, help=f"{HALT_HELP} ({default})")
    parser.add_argument(
        "--max-steps",
        type=_positive,
        metavar="K",
        help="supervision steps at most; may exceed the N_sup the model was trained with "
        "(default: its N_sup). Example: --max-steps 32",
    )
    parser.add_argument(
        "--cycles",
        type=_positive,
        metavar="T",
        help="recursion cycles per supervision step, the model's T (default: its own). The weights do not depend "
        "on T: a step at twice the T computes what two steps compute, so the same model thinks deeper at every "
        "step for proportionally more network calls. Example: --cycles 8",
    )
    parser.add_argument(
        "--halt-threshold",
        type=_threshold,
        default=HALT_THRESHOLD,
        metavar="Q",
        help="adaptive, valid: halt when q_halt > Q (default: %(default)s, the rule the model was trained with); "
        "higher waits for more confidence. Example: --halt-threshold 2",
    )
    parser.add_argument(
        "--device", default="cpu", help="cpu, cuda or cuda:N where CUDA is available, mps (default: %(default)s)"
    )
    parser.add_argument(
        "--dtype",
        choices=("float32", "bfloat16", "auto"),
        help="the forward pass's dtype (default: the checkpoint's, except that bfloat16 runs as float32 on "
        "a device without native bfloat16 matmuls, where float32 is faster and more precise; auto: bfloat16 "
        "where native, float32 elsewhere)",
    )


def add_scaling_options(parser: argparse.ArgumentParser) -> None:
    """Test-time scaling (`trm.eval.trajectories`): many trajectories per puzzle and how one is chosen."""
    group = parser.add_argument_group("test-time scaling (Sudoku, Maze)")
    group.add_argument(
        "--trajectories",
        type=_positive,
        default=1,
        metavar="K",
        help="trajectories per puzzle: the puzzle as given, then K-1 random symmetries of it (with --no-views: the "
        "puzzle as given, made different by --noise) (default: %(default)s, one run as without this option). "
        "Example: --trajectories 64",
    )
    group.add_argument(
        "--noise",
        type=_noise,
        default=0.0,
        metavar="SIGMA",
        help="Gaussian noise of standard deviation SIGMA added to z at every supervision step of trajectories "
        "after the first (default: %(default)s, none). Example: --noise 0.2",
    )
    group.add_argument(
        "--select",
        choices=SELECT_RULES,
        help="how a puzzle's answer is chosen from its trajectories: verify, an answer that keeps the rules (else "
        "as halt); halt, the highest q_halt; vote, the answer most trajectories give, ties by mean q_halt "
        "(default: verify)",
    )
    group.add_argument(
        "--no-views",
        dest="views",
        action="store_false",
        help="every trajectory sees the puzzle as given (they differ only by --noise)",
    )
    group.add_argument("--seed", type=int, default=0, help="seed of the views and the noise (default: %(default)s)")


def scaling_requested(args: argparse.Namespace) -> bool:
    """Whether the command line asks for test-time scaling rather than one plain run."""
    return args.trajectories > 1 or args.select is not None or args.noise > 0


def register(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser(
        "eval",
        help="evaluate a checkpoint on a dataset: accuracies, steps, ARC pass@K and submission",
        description="Evaluate a checkpoint on a dataset split and write a JSON report: exact, token and halting "
        "accuracy, exact accuracy after each supervision step, mean steps used, network calls, wall time; "
        "valid-by-the-rules rates for Sudoku and Maze; pass@1..1000 with augmentation voting and a Kaggle "
        "submission.json for ARC.",
        epilog=EVAL_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(ev, "fixed")
    ev.set_defaults(halt=None)  # None: not given (fixed), so that --halt given with test-time scaling is refused
    ev.add_argument("--data", required=True, metavar="DIR", help="dataset root (holding train/ and test/)")
    ev.add_argument("--split", default="test", help="split to evaluate (default: %(default)s)")
    ev.add_argument("--batch-size", type=_positive, default=256, help="examples per batch (default: %(default)s)")
    ev.add_argument(
        "--limit",
        type=_positive,
        metavar="N",
        help="evaluate only the first N examples, for a quick check (ARC: scores only the tasks seen)",
    )
    ev.add_argument(
        "--output",
        metavar="PATH",
        help="the JSON report (default: under CHECKPOINT or RUN_DIR, see below). Example: --output results/x.json",
    )
    ev.add_argument(
        "--submission", metavar="PATH", help="ARC: the Kaggle submission (default: submission.json beside the report)"
    )
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default="auto",
        help="kernels for the model's products (trm/backends): auto times default and onednn (x86-64 CPUs) on "
        "the model's shape and keeps the faster (default: %(default)s)",
    )
    add_scaling_options(ev)
    ev.set_defaults(run=run_eval)


def default_report_path(
    checkpoint: str,
    data: str,
    split: str,
    halt: str,
    max_steps: int | None,
    threshold: float = HALT_THRESHOLD,
    cycles: int | None = None,
) -> Path:
    """CHECKPOINT/eval/<data>-<split>-<halt>[-k<K>][-q<Q>][-T<T>]/report.json.

    For a checkpoint of a training run (its best/ or checkpoints/step_N/) the report goes to
    RUN_DIR/eval/<best or step_N>-..., because training replaces best/ and deletes old
    checkpoints, and a report inside them would go too. Beside a checkpoint file. For a model
    shipped inside the package, ./eval/<model>-... (the package may be read-only, and is not
    the user's to write to).
    """
    name = f"{Path(data).resolve().name}-{split}-{halt}" + _depth_suffix(max_steps, threshold, cycles)
    return _report_path(checkpoint, name)


def scaling_report_path(
    checkpoint: str,
    data: str,
    split: str,
    plan: Plan,
    max_steps: int | None,
    threshold: float = HALT_THRESHOLD,
    cycles: int | None = None,
) -> Path:
    """Where a test-time scaling run's report goes by default: as `default_report_path`, in a
    directory named by the plan, <data>-<split>-K<K>-<select>[-noise<S>][-noviews][-k<steps>]
    [-q<Q>][-T<T>]-seed<N>, so that runs with other settings do not replace each other's reports.
    `max_steps` is the step limit given on the command line (None: the model's N_sup)."""
    name = f"{Path(data).resolve().name}-{split}-K{plan.trajectories}-{plan.select}"
    name += f"-noise{plan.noise:g}" if plan.noise else ""
    name += "" if plan.views else "-noviews"
    return _report_path(checkpoint, f"{name}{_depth_suffix(max_steps, threshold, cycles)}-seed{plan.seed}")


def _depth_suffix(max_steps: int | None, threshold: float, cycles: int | None) -> str:
    """[-k<K>][-q<Q>][-T<T>]: the options given that change how far or how deep each puzzle runs."""
    return (
        (f"-k{max_steps}" if max_steps else "")
        + (f"-q{threshold:g}" if threshold else "")
        + (f"-T{cycles}" if cycles else "")
    )


def _report_path(checkpoint: str, name: str) -> Path:
    """CHECKPOINT/eval/NAME/report.json, or where `default_report_path` says for runs and shipped models."""
    from trm.eval.evaluate import resolve_checkpoint

    resolved = resolve_checkpoint(checkpoint)
    pretrained = Path(__file__).resolve().parent.parent / "pretrained"
    real = resolved.resolve()
    if real.is_relative_to(pretrained):
        return Path("eval") / f"{real.relative_to(pretrained).parts[0]}-{name}" / "report.json"
    if resolved.name == "best":
        return resolved.parent / "eval" / f"best-{name}" / "report.json"
    if resolved.parent.name == "checkpoints":
        return resolved.parent.parent / "eval" / f"{resolved.name}-{name}" / "report.json"
    base = resolved if resolved.is_dir() else resolved.parent
    return base / "eval" / name / "report.json"


def _announce_replacement(path: Path) -> None:
    if path.exists():
        print(f"note: replacing the existing {path}", file=sys.stderr)


def _write(option: str, path: Path, write: Callable[[Path], object]) -> None:
    """Write an output file, or say without a traceback why it cannot be written."""
    from trm.errors import ConfigError

    _announce_replacement(path)
    try:
        write(path)
    except OSError as e:
        raise ConfigError(f"{option} {path}: cannot be written ({e.strerror or e})") from None


def run_eval(args: argparse.Namespace) -> None:
    from trm.backends import reuse_freed_memory

    if args.device.startswith("cpu"):
        reuse_freed_memory()
    if scaling_requested(args):
        _run_scaling(args)
    else:
        _run_plain(args)


def _run_plain(args: argparse.Namespace) -> None:
    """One run per example, halted by --halt (fixed unless given)."""
    from trm.eval.arc import write_submission
    from trm.eval.evaluate import evaluate, write_report

    halt = args.halt or "fixed"
    report = evaluate(
        args.checkpoint,
        args.data,
        split=args.split,
        batch_size=args.batch_size,
        halt=halt,
        max_steps=args.max_steps,
        limit=args.limit,
        halt_threshold=args.halt_threshold,
        device=args.device,
        progress=not args.quiet,
        forward_dtype=args.dtype,
        backend=args.backend,
        cycles=args.cycles,
    )
    print(report.table())
    output = (
        Path(args.output)
        if args.output
        else default_report_path(
            args.checkpoint, args.data, args.split, halt, args.max_steps, args.halt_threshold, args.cycles
        )
    )
    _write("--output", output, lambda path: write_report(report, path))
    print(f"report written to {output}")
    if report.submission is not None:
        submission = Path(args.submission) if args.submission else output.with_name("submission.json")
        _write("--submission", submission, lambda path: write_submission(path, report.submission))
        print(f"Kaggle submission written to {submission}")


def scaling_plan(args: argparse.Namespace) -> Plan:
    """The test-time scaling plan of a command line; max_steps None stands for the model's N_sup."""
    from trm.errors import ConfigError
    from trm.eval.trajectories import Plan

    if args.halt is not None:
        raise ConfigError(
            f"--halt {args.halt} does not apply with test-time scaling (--trajectories, --noise, --select): "
            "--select decides when trajectories stop (verify: at a valid answer; halt, vote: when the halting "
            "head says so, at --halt-threshold); leave out --halt"
        )
    return Plan(
        trajectories=args.trajectories,
        select=args.select or "verify",
        noise=args.noise,
        views=args.views,
        max_steps=args.max_steps,
        halt_threshold=args.halt_threshold,
        seed=args.seed,
        batch_size=args.batch_size,
    )


def _run_scaling(args: argparse.Namespace) -> None:
    """Test-time scaling: many trajectories per puzzle (`trm.eval.scaling`)."""
    import json

    from trm.eval.scaling import evaluate_trajectories

    if args.submission:
        from trm.errors import ConfigError

        raise ConfigError("--submission is for ARC, which takes no test-time scaling options")
    plan = scaling_plan(args)
    report = evaluate_trajectories(
        args.checkpoint,
        args.data,
        plan,
        split=args.split,
        limit=args.limit,
        device=args.device,
        forward_dtype=args.dtype,
        backend=args.backend,
        progress=not args.quiet,
        cycles=args.cycles,
    )
    print(report.table())
    output = (
        Path(args.output)
        if args.output
        else scaling_report_path(
            args.checkpoint, args.data, args.split, plan, args.max_steps, args.halt_threshold, args.cycles
        )
    )

    def write(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report.to_json(), indent=2) + "\n")

    _write("--output", output, write)
    print(f"report written to {output}")
