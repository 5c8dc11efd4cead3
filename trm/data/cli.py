"""`trm data ...`: dataset builders on the command line."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("data", help="build datasets in the reference on-disk format")
    parser.add_subparsers(dest="data_command", metavar="TASK", required=True)
