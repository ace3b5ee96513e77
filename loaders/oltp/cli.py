"""``python -m loaders oltp``: the order system's OLTP tables, incrementally."""

from __future__ import annotations

import argparse

from loaders.core.commands import add_stream_options, say
from loaders.oltp.checks import TABLES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_stream_options(parser, "table", TABLES, "rows")


def run(args: argparse.Namespace) -> int:
    from loaders.oltp.job import load_all, print_progress, reset_table

    if args.reset:
        reset_table(args.reset)
        print(
            f"reset oltp.{args.reset}: raw rows, rejects and watermark removed; rebuild its "
            f'staging with make dbt ARGS="build --full-refresh -s stg_oltp__{args.reset}+"'
        )
        return 0
    for r in load_all(args.table, batch_size=args.batch_size, progress=print_progress):
        say(
            f"oltp.{r.table:<20} landed {r.landed:>8,}  rejected {r.rejected:>5,}  "
            f"batches {r.batches:>3}  {r.seconds:6.2f}s",
            r.notes,
        )
    return 0
