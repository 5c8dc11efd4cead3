"""The `trm` command line: `trm info | demo | data ...`.

Each area of the package registers its own sub-commands (`register(subparsers)`), so this
file only wires them together and turns user errors into a message and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import sys

from trm.errors import TRMError


def build_parser() -> argparse.ArgumentParser:
    from trm.cli import data, info, solve, train
    from trm.cli import eval as evaluate

    parser = argparse.ArgumentParser(
        prog="trm",
        description="Tiny Recursive Model: build datasets, train, evaluate and solve grid puzzles.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    info.register(sub)
    data.register(sub)
    evaluate.register(sub)
    solve.register(sub)
    train.register(sub)
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
