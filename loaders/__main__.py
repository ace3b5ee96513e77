"""``python -m loaders``: land source data in the warehouse's raw schemas.

python -m loaders mongo                      # every collection, incrementally
python -m loaders mongo -c support_tickets   # one collection
python -m loaders mongo --reset event_logs   # forget the watermark and raw rows, reload
python -m loaders sales --date 2026-10-05    # one day of the partner sales API
python -m loaders sales --date 2026-10-01 --days 7   # a backfill: reloads replace
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from config import ConfigError, LoaderSettings, redact
from loaders.core.warehouse import LoaderError
from loaders.mongo.checks import COLLECTIONS


def _load_sales(first: dt.date, days: int) -> int:
    from loaders.sales_api.job import load_day

    for k in range(days):
        r = load_day(first + dt.timedelta(days=k))
        rows = ", ".join(f"{t}={n:,}" for t, n in r.rows.items())
        rejected = ", ".join(f"{t}={n:,}" for t, n in r.rejected.items() if n)
        print(
            f"sales {r.day}: landed {rows}; rejected {rejected or 'none'}"
            f"  ({r.seconds:.1f}s; files in {r.folder})"
        )
        for note in r.notes:
            print(f"  note: {note}", file=sys.stderr)
    return 0


def _load_mongo(args: argparse.Namespace) -> int:
    from loaders.mongo.job import load_all, print_progress, reset_collection

    batch_size = args.batch_size or LoaderSettings.from_env().batch_size
    if args.reset:
        reset_collection(args.reset)
        print(
            f"reset mongo.{args.reset}: raw rows, rejects and watermark removed; rebuild its "
            f'staging with make dbt ARGS="build --full-refresh -s stg_mongo__{args.reset}+"'
        )
        return 0
    for r in load_all(args.collection, batch_size=batch_size, progress=print_progress):
        print(
            f"mongo.{r.collection:<22} landed {r.landed:>8,}  rejected {r.rejected:>5,}  "
            f"batches {r.batches:>3}  {r.seconds:6.2f}s"
        )
        for note in r.notes:
            print(f"  warning: {note}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="loaders", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="source", required=True)
    mongo = sub.add_parser("mongo", help="MongoDB app database -> raw_mongo.*")
    mongo.add_argument(
        "-c",
        "--collection",
        action="append",
        choices=sorted(COLLECTIONS),
        help="only this collection (repeatable; default: all)",
    )
    mongo.add_argument("--batch-size", type=int, help="documents per committed batch")
    mongo.add_argument(
        "--reset",
        metavar="COLLECTION",
        choices=sorted(COLLECTIONS),
        help="drop the collection's raw rows and watermark (then reload it)",
    )
    sales = sub.add_parser("sales", help="partner sales API increments -> raw_sales.*")
    sales.add_argument("--date", type=dt.date.fromisoformat, required=True, help="logical date")
    sales.add_argument(
        "--days", type=int, default=1, help="this many days from --date (a backfill)"
    )
    args = parser.parse_args(argv)
    try:
        if args.source == "sales":
            return _load_sales(args.date, args.days)
        return _load_mongo(args)
    except (LoaderError, ConfigError) as exc:
        print(f"loaders {args.source}: {redact(str(exc))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
