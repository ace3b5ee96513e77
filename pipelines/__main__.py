"""``python -m pipelines``: every source of the registry, in its order, through a day.

python -m pipelines simulate                      # each simulated system writes the next day
python -m pipelines simulate --date 2026-10-05 --days 2
python -m pipelines land                          # what is new from every source
python -m pipelines land --date 2026-10-05        # daily sources up to this day
python -m pipelines land --source mongo           # one source (either command; repeatable)

``make datagen`` and ``make load`` run these; ``make run`` runs both, then dbt.
One source at a time: ``python -m datagen SYSTEM`` and ``python -m loaders SOURCE``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from config import ConfigError, WarehouseSettings, redact
from loaders.core.warehouse import LoaderError
from pipelines.clock import next_days, written_days
from pipelines.day import land, landed_lines, simulate
from pipelines.sources import SOURCES


def _days(date: dt.date | None, n_days: int) -> list[dt.date] | None:
    return [date + dt.timedelta(days=k) for k in range(max(1, n_days))] if date else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pipelines", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate", help="every simulated source system writes the day(s)")
    sim.add_argument("--date", type=dt.date.fromisoformat, help="the first day (default: next)")
    sim.add_argument("--days", type=int, default=1, help="with --date: this many days from it")
    landing = sub.add_parser(
        "land", help="what is new from every source (daily sources: each day not landed yet)"
    )
    landing.add_argument(
        "--date",
        type=dt.date.fromisoformat,
        help="the last day daily sources land (default: the simulation's latest day)",
    )
    for command in (sim, landing):
        command.add_argument(
            "--source",
            action="append",
            choices=[s.name for s in SOURCES],
            help="only this source (repeatable; default: every source)",
        )
    args = parser.parse_args(argv)
    only = tuple(s for s in SOURCES if s.name in (args.source or ()))
    try:
        if args.command == "simulate":
            simulate(_days(args.date, args.days) or next_days(), only=only)
            return 0
        # Every simulated day by default: a first landing of a daily source takes them all.
        days = [args.date] if args.date else written_days()
        if not days:
            raise LoaderError("no day to land: nothing simulated yet (make datagen), and no --date")
        for line in landed_lines(land(WarehouseSettings.from_env(), days, only)):
            print(line)
        return 0
    except (LoaderError, ConfigError) as exc:
        print(f"pipelines {args.command}: {redact(str(exc))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
