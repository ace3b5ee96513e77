"""What every loader command (``loaders/<source>/cli.py``) shares: its common options and output."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable


def add_stream_options(parser: argparse.ArgumentParser, flag: str, streams: Iterable[str],
                       unit: str) -> None:  # fmt: skip
    """``-x/--<flag>`` (repeatable), ``--batch-size`` and ``--reset <STREAM>``."""
    choices = sorted(streams)
    parser.add_argument(
        f"-{flag[0]}", f"--{flag}", action="append", choices=choices,
        help=f"only this {flag} (repeatable; default: all)",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, help=f"{unit} per committed batch")
    parser.add_argument(
        "--reset", metavar=flag.upper(), choices=choices,
        help=f"drop the {flag}'s raw rows and watermark (then reload it)",
    )  # fmt: skip


def say(line: str, notes: Iterable[str], label: str = "warning") -> None:
    """A result's line on stdout, its notes (each under ``label``) on stderr."""
    print(line)
    for note in notes:
        print(f"  {label}: {note}", file=sys.stderr)
