"""General commands: `trm info` (model sizes) and `trm demo`."""

from __future__ import annotations

import argparse


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
        help="train a small TRM on 4x4 Sudokus and watch it solve held-out puzzles step by step",
        description="Train a small TRM-MLP with deep supervision on built-in 4x4 Sudokus (about a "
        "minute on a 2-core CPU), then print its held-out exact accuracy after each supervision step and "
        "the step-by-step refinement of one puzzle.",
    )
    demo.add_argument("--steps", type=int, default=400, help="optimizer steps (default: 400)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.set_defaults(run=run_demo)


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

    demo(steps=args.steps, seed=args.seed)
