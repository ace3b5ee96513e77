"""``python -m loaders sales_api``: the partner's daily sales increments, a day at a time."""

from __future__ import annotations

import argparse
import datetime as dt

from loaders.core.commands import say


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", type=dt.date.fromisoformat, required=True, help="logical date")
    parser.add_argument(
        "--days", type=int, default=1, help="this many days from --date (a backfill)"
    )


def run(args: argparse.Namespace) -> int:
    from loaders.sales_api.job import load_day

    for k in range(args.days):
        r = load_day(args.date + dt.timedelta(days=k))
        rows = ", ".join(f"{t}={n:,}" for t, n in r.rows.items())
        rejected = ", ".join(f"{t}={n:,}" for t, n in r.rejects.items() if n)
        say(
            f"sales {r.day}: landed {rows}; rejected {rejected or 'none'}"
            f"  ({r.seconds:.1f}s; files in {r.folder})",
            r.notes,
            label="note",
        )
    return 0
