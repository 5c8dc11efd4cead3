"""`trm train` and `trm bench` on the command line."""

from __future__ import annotations

import argparse

TRAIN_EXAMPLES = """examples:
  trm train configs/cpu/sudoku-mlp.yaml                       # a CPU recipe
  trm train configs/sudoku-extreme-mlp.yaml data.path=data/sudoku-extreme-1k-aug-1000
  trm train configs/cpu/sudoku-mlp.yaml lr=3e-3 model.T=2 name=try-lr
  trm train --resume runs/sudoku-mlp                          # continue a stopped or killed run
  python -m torch.distributed.run --nproc-per-node 4 -m trm train configs/maze-hard.yaml
"""


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser(
        "train",
        help="train a model from a YAML config (resumable; one or many processes)",
        description="Train with deep supervision as configured: CONFIG is a YAML file of TrainConfig "
        "fields, and key=value arguments override it (dots for nested fields, e.g. model.hidden_size=64). "
        "The run directory (runs/<name> unless run_dir= is given) receives config.yaml, metrics.jsonl, "
        "checkpoints/step_N (last keep_last kept) and best/ (best test exact accuracy). Ctrl-C or SIGTERM saves "
        "a checkpoint at the end of the step and stops (a second Ctrl-C stops at once); --resume continues exactly. "
        "One run per directory: a second one in a live run's directory stops with an error.",
        epilog=TRAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("config", nargs="?", help="YAML config file (omit with --resume)")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its newest checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress bar (logs and metrics.jsonl unchanged)")
    train.set_defaults(run=run_train)

    bench = sub.add_parser(
        "bench",
        help="time training steps of a config: examples x steps/s, FLOP/s, fraction of the matmul rate",
        description="Build the model of CONFIG, time training steps (forward, backward, optimizer) on a random "
        "batch of the config's global batch size, and print examples x supervision steps per second, model "
        "FLOPs per second, and that as a fraction of this machine's measured float32 matmul rate "
        "(and of its bfloat16 matmul rate when the forward pass runs in bfloat16).",
        epilog="examples:\n  trm bench configs/cpu/sudoku-mlp.yaml\n"
        "  trm bench configs/sudoku-extreme-mlp.yaml global_batch_size=64 model.forward_dtype=float32 compile=false\n"
        "  python -m torch.distributed.run --nproc-per-node 2 -m trm bench configs/cpu/sudoku-mlp.yaml threads=1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument("config", help="YAML config file")
    bench.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    bench.add_argument("--steps", type=int, default=20, help="timed steps (default: 20)")
    bench.add_argument("--warmup", type=int, default=5, help="untimed steps first (default: 5; more with compile)")
    bench.set_defaults(run=run_bench)


def run_bench(args: argparse.Namespace) -> None:
    import json

    import torch.distributed as dist

    from trm.train.bench import bench, print_report
    from trm.train.config import load_train_config
    from trm.train.dist import pick_device, shutdown

    config = load_train_config(args.config, args.overrides)
    clean = False
    try:
        result = bench(config, steps=args.steps, warmup=args.warmup)
        if not dist.is_initialized() or dist.get_rank() == 0:  # one report for all processes
            print_report(config, result, str(pick_device(config.device)))
            print(json.dumps(result))
        clean = True
    finally:
        shutdown(clean)


def run_train(args: argparse.Namespace) -> int:
    """Train; SIGINT or SIGTERM saves a checkpoint, says how to resume, and exits with 128 + the
    signal's number (130, 143), as a process the signal had killed would."""
    import sys

    from trm.errors import ConfigError
    from trm.train.config import load_train_config
    from trm.train.loop import train
    from trm.train.resume import resume_config
    from trm.train.signals import TrainingInterrupted

    if args.resume:
        config = resume_config(args.resume, ([args.config] if args.config else []) + args.overrides)
    elif not args.config:
        raise ConfigError("give a config file (see configs/) or --resume RUN_DIR")
    elif "=" in args.config:
        raise ConfigError(f"'{args.config}' looks like an override; the first argument is the YAML config file")
    else:
        config = load_train_config(args.config, args.overrides)
    try:
        train(config, resume=bool(args.resume), progress=not args.quiet)
    except TrainingInterrupted as e:
        print(f"trm train: {e}", file=sys.stderr)
        return 128 + e.signum
    return 0
