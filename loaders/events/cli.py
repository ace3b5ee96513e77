"""``python -m loaders events``: the feed and messenger events, a UTC day at a time."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from loaders.core.commands import say
from loaders.events.landing import TABLES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--date",
        type=dt.date.fromisoformat,
        help="the UTC day to land (default: the latest day ClickHouse has events of)",
    )
    parser.add_argument(
        "--days",
        type=int,
        default=1,
        help="this many days from --date (a backfill; without --date, the days up to the latest)",
    )
    parser.add_argument(
        "-t",
        "--table",
        action="append",
        choices=sorted(TABLES),
        help="only this table (repeatable; default: both, extracted in parallel)",
    )


def run(args: argparse.Namespace) -> int:
    from loaders.events.job import latest_day, load_days

    days = max(1, args.days)
    # No --date: the latest day that ended with events in ClickHouse (and with
    # --days, the days up to it).
    held: list[str] = []
    first = args.date or latest_day(held) - dt.timedelta(days=days - 1)
    for note in held:
        print(f"  note: {note}", file=sys.stderr)
    for r in load_days(first, days, args.table):
        late = f"; reloaded {len(r.reloaded)} late day(s)" if r.reloaded else ""
        say(
            f"events.{r.table:<16} {r.day}  landed {r.landed:>9,}  rejected {r.rejected:>5,}  "
            f"{r.seconds:6.2f}s{late}",
            r.notes,
            label="note",
        )
    return 0
