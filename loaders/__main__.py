"""``python -m loaders``: land source data in the warehouse's raw schemas.

python -m loaders mongo                      # every collection, incrementally
python -m loaders mongo -c support_tickets   # one collection
python -m loaders mongo --reset event_logs   # forget the watermark and raw rows, reload
python -m loaders mongo --full-check         # and scan for documents no watermark reaches
python -m loaders sales --date 2026-10-05    # one day of the partner sales API
python -m loaders sales --date 2026-10-01 --days 7   # a backfill: reloads replace
python -m loaders oltp                       # the order system's tables, incrementally
python -m loaders oltp --reset orders        # forget a table's watermark and raw rows
python -m loaders kafka                      # drain new_users_events (offsets in the warehouse)
python -m loaders kafka --max-messages 1000  # at most this many; reports the lag left
python -m loaders events                     # the latest day in ClickHouse, both tables
python -m loaders events --date 2026-10-01 --days 7  # a backfill: reloads replace
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from config import ConfigError, LoaderSettings, redact
from loaders.core.warehouse import LoaderError
from loaders.events.landing import TABLES as EVENT_TABLES
from loaders.mongo.checks import COLLECTIONS
from loaders.oltp.checks import TABLES as OLTP_TABLES


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
    results = load_all(
        args.collection,
        batch_size=batch_size,
        progress=print_progress,
        full_check=True if args.full_check else None,
    )
    for r in results:
        print(
            f"mongo.{r.collection:<22} landed {r.landed:>8,}  rejected {r.rejected:>5,}  "
            f"batches {r.batches:>3}  {r.seconds:6.2f}s"
            + ("  (full check)" if r.full_check else "")
        )
        for note in r.notes:
            print(f"  warning: {note}", file=sys.stderr)
    return 0


def _load_oltp(args: argparse.Namespace) -> int:
    from loaders.oltp.job import load_all, print_progress, reset_table

    if args.reset:
        reset_table(args.reset)
        print(
            f"reset oltp.{args.reset}: raw rows, rejects and watermark removed; rebuild its "
            f'staging with make dbt ARGS="build --full-refresh -s stg_oltp__{args.reset}+"'
        )
        return 0
    for r in load_all(args.table, batch_size=args.batch_size, progress=print_progress):
        print(
            f"oltp.{r.table:<20} landed {r.landed:>8,}  rejected {r.rejected:>5,}  "
            f"batches {r.batches:>3}  {r.seconds:6.2f}s"
        )
        for note in r.notes:
            print(f"  warning: {note}", file=sys.stderr)
    return 0


def _load_kafka(args: argparse.Namespace) -> int:
    from loaders.kafka.job import load_topic, print_progress, reset_topic

    if args.reset:
        reset_topic()
        print(
            "reset kafka: raw rows, rejects and stored offsets removed; the next load reads the "
            "topic from its earliest offset"
        )
        return 0
    r = load_topic(
        max_messages=args.max_messages, batch_size=args.batch_size, progress=print_progress
    )
    lag = ", ".join(f"p{p}={n:,}" for p, n in sorted(r.lag.items())) or "none"
    print(
        f"kafka.{r.topic} landed {r.landed:,}  rejected {r.rejected:,}  batches {r.batches}  "
        f"{r.seconds:.2f}s  lag {lag}"
    )
    for note in r.notes:
        print(f"  warning: {note}", file=sys.stderr)
    return 0


def _load_events(args: argparse.Namespace) -> int:
    from loaders.events.job import latest_day, load_days

    days = max(1, args.days)
    # No --date: the latest day ClickHouse has events of (and with --days, the days up to it).
    first = args.date or latest_day() - dt.timedelta(days=days - 1)
    for r in load_days(first, days, args.table):
        late = f"; reloaded {len(r.reloaded)} late day(s)" if r.reloaded else ""
        print(
            f"events.{r.table:<16} {r.day}  landed {r.landed:>9,}  rejected {r.rejected:>5,}  "
            f"{r.seconds:6.2f}s{late}"
        )
        for note in r.notes:
            print(f"  note: {note}", file=sys.stderr)
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
        "--full-check",
        action="store_true",
        help="also scan every collection for documents whose write time is missing or not a "
        "date (otherwise every LOADER_FULL_CHECK_HOURS, default weekly)",
    )
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
    oltp = sub.add_parser("oltp", help="order system OLTP PostgreSQL -> raw_oltp.*")
    oltp.add_argument(
        "-t",
        "--table",
        action="append",
        choices=sorted(OLTP_TABLES),
        help="only this table (repeatable; default: all)",
    )
    oltp.add_argument("--batch-size", type=int, help="rows per committed batch")
    oltp.add_argument(
        "--reset",
        metavar="TABLE",
        choices=sorted(OLTP_TABLES),
        help="drop the table's raw rows and watermark (then reload it)",
    )
    kafka = sub.add_parser("kafka", help="Kafka new_users_events -> raw_kafka.new_users_events")
    kafka.add_argument("--max-messages", type=int, help="stop after this many messages")
    kafka.add_argument("--batch-size", type=int, help="messages per committed batch")
    kafka.add_argument(
        "--reset", action="store_true", help="drop raw rows and stored offsets (then reload)"
    )
    events = sub.add_parser(
        "events", help="ClickHouse feed and messenger events -> raw_events.* (a UTC day at a time)"
    )
    events.add_argument(
        "--date",
        type=dt.date.fromisoformat,
        help="the UTC day to land (default: the latest day ClickHouse has events of)",
    )
    events.add_argument(
        "--days",
        type=int,
        default=1,
        help="this many days from --date (a backfill; without --date, the days up to the latest)",
    )
    events.add_argument(
        "-t",
        "--table",
        action="append",
        choices=sorted(EVENT_TABLES),
        help="only this table (repeatable; default: both, extracted in parallel)",
    )
    args = parser.parse_args(argv)
    try:
        if args.source == "sales":
            return _load_sales(args.date, args.days)
        if args.source == "oltp":
            return _load_oltp(args)
        if args.source == "kafka":
            return _load_kafka(args)
        if args.source == "events":
            return _load_events(args)
        return _load_mongo(args)
    except (LoaderError, ConfigError) as exc:
        print(f"loaders {args.source}: {redact(str(exc))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
