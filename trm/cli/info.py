"""General commands: `trm info` (model sizes) and `trm demo`."""

from __future__ import annotations

import argparse

from trm.cli.eval import _positive


def register(sub: argparse._SubParsersAction) -> None:
    info = sub.add_parser(
        "info",
        help="print the shipped configs' models and their parameter counts",
        description="Read each shipped YAML config (configs/: the paper's runs, ablations, baselines, CPU "
        "recipes) and print its model's parameter count (trained weights, without the puzzle-embedding table).",
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
    demo.add_argument(
        "--minutes",
        type=_positive_minutes,
        default=7.0,
        help="with --train: training budget in minutes (default: 7; with data, evaluation and the "
        "demo itself under 10 minutes on 2 cores)",
    )
    demo.add_argument(
        "--model", metavar="CHECKPOINT", help="a checkpoint to demonstrate instead of the shipped one (a Sudoku model)"
    )
    demo.add_argument("--puzzles", type=_positive, default=1000, help="held-out puzzles to solve (default: 1000)")
    demo.add_argument("--givens", type=int, default=40, help="givens per held-out puzzle, 17..81 (default: 40)")
    demo.add_argument(
        "--seed",
        type=int,
        default=240,
        help="seed of the held-out puzzles (default: 240, the model card's 40-given test set)",
    )
    demo.add_argument(
        "--output",
        default="trm-demo",
        metavar="DIR",
        help="where the puzzles, the --train run and the pictures go (default: trm-demo)",
    )
    demo.add_argument("--threads", type=_positive, help="CPU threads (default: torch's choice)")
    demo.add_argument(
        "--device",
        help="cpu, cuda or cuda:N where CUDA is available, mps (default: the CPU; with "
        "--train, training takes CUDA where there is one)",
    )
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
    import torch

    from trm.model import TRM
    from trm.train.config import CONFIGS, load_train_config, shipped_configs

    print(
        f"The model of each shipped config ({CONFIGS}), at its vocab_size and seq_len (training takes "
        "them from the dataset; they change only the embedding and output rows)"
    )
    print(f"{'config':<36} {'parameters':>10}  {'D':>3}  T  n  layers  mixer      latent")
    for path in shipped_configs():
        cfg = load_train_config(path).model
        with torch.device("meta"):  # shapes only: nothing allocated, nothing initialised
            count = TRM(cfg).num_parameters()
        layers = f"{cfg.num_layers}+{cfg.y_layers or cfg.num_layers}" if cfg.separate_nets else str(cfg.num_layers)
        name = path.relative_to(CONFIGS).as_posix()
        print(
            f"{name:<36} {count / 1e6:>9.2f}M  {cfg.hidden_size:>3}  {cfg.T}  {cfg.n}  {layers:<6}  "
            f"{cfg.mixer:<9}  {cfg.latent}"
        )


def run_demo(args: argparse.Namespace) -> None:
    from trm.demo import run_demo as demo

    if args.train and args.model:
        raise SystemExit("trm demo: --train trains its own model; leave out --model")
    demo(
        model_path=args.model,
        train=args.train,
        minutes=args.minutes,
        puzzles=args.puzzles,
        givens=args.givens,
        seed=args.seed,
        output=args.output,
        threads=args.threads,
        device=args.device,
    )
