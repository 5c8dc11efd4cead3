"""The `trm` command line: `trm info | demo | data ...`.

Each area of the package registers its own sub-commands (`register(subparsers)`), so this
file only wires them together and turns user errors into a message and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import sys

from trm.errors import TRMError


def build_parser() -> argparse.ArgumentParser:
    from trm import commands
    from trm.data import cli as data_cli
    from trm.eval import cli as eval_cli
    from trm.train import cli as train_cli

    parser = argparse.ArgumentParser(
        prog="trm",
        description="Tiny Recursive Model: build datasets, train, evaluate and solve grid puzzles.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.register(sub)
    data_cli.register(sub)
    eval_cli.register(sub)
    train_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except TRMError as e:
        print(f"trm {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"trm {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
