"""General commands: `trm info` (model sizes) and `trm demo`."""

from __future__ import annotations

import argparse

from trm.cli.eval import _positive


def register(sub: argparse._SubParsersAction) -> None:
    info = sub.add_parser(
        "info",
        help="print the paper's model configurations and their parameter counts",
        description="Build each of the paper's configurations (trm-spec section 8) and print its "
        "parameter count (trained weights, without the puzzle-embedding table).",
    )
    info.set_defaults(run=run_info)

    demo = sub.add_parser(
        "demo",
        help="watch the shipped 9x9 Sudoku model solve held-out puzzles step by step (--train: train one first)",
        description="Load the 9x9 Sudoku model that ships with the package, solve held-out generated puzzles, "
        "print the accuracy (after each supervision step, and with adaptive and valid halting), show one puzzle being "
        "refined step by step and write pictures of it (PNG and GIF). About a minute on a 2-core CPU. With "
        "--train, first train a small model from scratch with the CPU recipe (under 10 minutes on 2 cores) "
        "and demonstrate that one instead.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  trm demo\n  trm demo --train --minutes 7\n  trm demo --model runs/sudoku-cpu/best "
        "--givens 34 --puzzles 500",
    )
    demo.add_argument("--train", action="store_true", help="train a small model from scratch first")
    demo.add_argument("--minutes", type=_positive_minutes, default=7.0,
                      help="with --train: training budget in minutes (default: 7; with data, evaluation and the "
                      "demo itself under 10 minutes on 2 cores)")
    demo.add_argument("--model", metavar="CHECKPOINT",
                      help="a checkpoint to demonstrate instead of the shipped one (a Sudoku model)")
    demo.add_argument("--puzzles", type=_positive, default=1000, help="held-out puzzles to solve (default: 1000)")
    demo.add_argument("--givens", type=int, default=40, help="givens per held-out puzzle, 17..81 (default: 40)")
    demo.add_argument("--seed", type=int, default=240,
                      help="seed of the held-out puzzles (default: 240, the model card's 40-given test set)")
    demo.add_argument("--output", default="trm-demo", metavar="DIR",
                      help="where the puzzles, the --train run and the pictures go (default: trm-demo)")
    demo.add_argument("--threads", type=_positive, help="CPU threads (default: torch's choice)")
    demo.add_argument("--device", help="cpu, cuda or cuda:N where CUDA is available, mps (default: the CPU; with "
                      "--train, training takes CUDA where there is one)")
    demo.set_defaults(run=run_demo)


def _positive_minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of minutes, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of minutes, got {text}")
    return value


def run_info(args: argparse.Namespace) -> None:
    from trm.config import PRESETS, model_config_from_preset
    from trm.model import TRM

    print(f"{'preset':<16} {'parameters':>12}  T  n  layers  mixer      latent")
    for name in PRESETS:
        cfg = model_config_from_preset(name)
        layers = f"{cfg.num_layers}+{cfg.y_layers}" if cfg.separate_nets else str(cfg.num_layers)
        count = TRM(cfg).num_parameters()
        print(f"{name:<16} {count / 1e6:>11.2f}M  {cfg.T}  {cfg.n}  {layers:<6}  {cfg.mixer:<9}  {cfg.latent}")


def run_demo(args: argparse.Namespace) -> None:
    from trm.demo import run_demo as demo

    if args.train and args.model:
        raise SystemExit("trm demo: --train trains its own model; leave out --model")
    demo(model_path=args.model, train=args.train, minutes=args.minutes, puzzles=args.puzzles, givens=args.givens,
         seed=args.seed, output=args.output, threads=args.threads, device=args.device)
