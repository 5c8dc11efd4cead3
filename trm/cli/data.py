"""`trm data ...`: dataset builders on the command line."""

from __future__ import annotations

import argparse

from trm.data import arc, maze, sudoku


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("data", help="build datasets in the reference on-disk format")
    tasks = parser.add_subparsers(dest="data_command", metavar="TASK", required=True)
    arc.add_command(tasks)
    sudoku.add_command(tasks)
    maze.add_command(tasks)
