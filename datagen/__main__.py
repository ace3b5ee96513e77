"""``python -m datagen``: play the store's systems for one or more logical days.

``mongo`` writes the app database; ``oltp`` writes the order system's database
and publishes its registrations to Kafka; ``events`` writes the feed and
messenger events into ClickHouse. One system at a time, for tests and by-hand
checks: it does not move the simulation's clock (``make datagen`` does).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from config import ConfigError, DatagenSettings, advice, redact
from datagen.mongo_writer import days_to_generate, write_days
from datagen.population import Population
from loaders.events.settings import ClickHouseSettings
from loaders.kafka.settings import KafkaSettings
from loaders.mongo.settings import MongoSettings
from loaders.oltp.settings import OltpSettings

if TYPE_CHECKING:
    from datagen.feed_events import Incident


def _population() -> tuple[DatagenSettings, Population]:
    """The simulated store's settings and population (a bad setting is a ConfigError)."""
    gen = DatagenSettings.from_env()
    try:
        start = dt.date.fromisoformat(gen.start_date)
    except ValueError as exc:
        raise ConfigError(f"DATAGEN_START_DATE={gen.start_date!r}: {exc}") from None
    return gen, Population(gen.seed, gen.scale, start)


def _given_days(date: dt.date, n_days: int) -> list[dt.date]:
    return [date + dt.timedelta(days=k) for k in range(n_days)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="datagen", description=__doc__)
    sub = parser.add_subparsers(dest="source", required=True)
    systems = {
        "mongo": "write the MongoDB app database",
        "oltp": "write the order system's OLTP database and publish registrations to Kafka",
        "events": "write the feed and messenger events into ClickHouse",
    }
    for name, help_text in systems.items():
        system = sub.add_parser(name, help=help_text)
        system.add_argument(
            "--date", type=dt.date.fromisoformat, help="logical day (default: next)"
        )
        system.add_argument(
            "--days", type=int, default=1, help="with --date: this many days from it"
        )
        if name == "events":
            system.add_argument(
                "--clean", action="store_true", help="inject no incidents (default: the seed's)"
            )
    args = parser.parse_args(argv)
    try:
        if args.source == "oltp":
            return run_oltp(args.date, args.days)
        if args.source == "events":
            return run_events(args.date, args.days, args.clean)
        return run_mongo(args.date, args.days)
    except ConfigError as exc:
        print(f"datagen: configuration error: {exc}", file=sys.stderr)
        return 2


def run_mongo(date: dt.date | None, n_days: int) -> int:
    """Write the app database's days; one line per day."""
    gen, population = _population()
    settings = MongoSettings.from_env()
    try:
        client: MongoClient = MongoClient(settings.uri, serverSelectionTimeoutMS=5000)
        db = client[settings.database]
        if date:
            days = _given_days(date, n_days)
        else:
            days = days_to_generate(db, population.start_date, gen.history_days)
        for day, counts in write_days(db, population, days):
            print(f"datagen mongo {day}: {sum(counts.values())} documents ({_detail(counts)})")
    except ValueError as exc:
        print(f"datagen: {exc}", file=sys.stderr)
        return 2
    except PyMongoError as exc:
        print(
            f"datagen: MongoDB at {settings.describe()} failed: {str(exc).splitlines()[0][:200]}. "
            "Run `make up` or fix MONGO_URI.",
            file=sys.stderr,
        )
        return 1
    return 0


def _detail(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in counts.items())


def run_oltp(date: dt.date | None, n_days: int) -> int:
    """Write the order system's days, publish their registrations; one line per day."""
    import psycopg

    from datagen import oltp_db, registrations

    gen, population = _population()
    settings, kafka = OltpSettings.from_env(), KafkaSettings.from_env()
    try:
        with psycopg.connect(settings.conninfo()) as conn:
            initial = oltp_db.write_initial(conn, population)
            if initial:
                total = sum(initial.values())
                print(f"datagen oltp initial: {total} rows ({_detail(initial)})")
            if date:
                days = _given_days(date, n_days)
            else:
                days = oltp_db.days_to_generate(conn, population.start_date, gen.history_days)
            producer = registrations.make_producer(kafka)
            for day, counts in oltp_db.write_days(conn, population, days):
                # Every written day not yet published, this one included (a day
                # whose publishing failed last time goes out now).
                written = oltp_db.days_up_to(conn, day)
                sent = registrations.publish_days(conn, kafka, population, written, producer)
                if counts is None:
                    line = f"datagen oltp {day}: already written (the clock only moves forward)"
                else:
                    line = f"datagen oltp {day}: {sum(counts.values())} rows ({_detail(counts)})"
                if sent:
                    line += (
                        f"; kafka {kafka.topic}: {sent['registrations']} registrations, "
                        f"{sent['duplicates']} duplicate(s), {sent['malformed']} malformed"
                    )
                print(line)
    except ValueError as exc:
        print(f"datagen: {redact(str(exc))}", file=sys.stderr)
        return 2
    except psycopg.Error as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[0][:200] if lines else type(exc).__name__
        print(
            redact(
                f"datagen: the OLTP database at {settings.describe()} failed: {reason}; "
                + advice("postgres", "OLTP_HOST/OLTP_PORT")
            ),
            file=sys.stderr,
        )
        return 1
    except registrations.KafkaUnavailable as exc:
        print(f"datagen: {exc}", file=sys.stderr)
        return 1
    return 0


def _incident(incident: Incident) -> str:
    """``likes_drop 14:15+15min x0.3 (feed_actions)``: kind, window, factor, filter, table."""
    text = f"{incident.kind} {incident.start:%H:%M}+{incident.minutes}min x{incident.factor:g}"
    text += "".join(f" {key}={value}" for key, value in incident.filter.items())
    return f"{text} ({incident.table})"


def run_events(date: dt.date | None, n_days: int, clean: bool) -> int:
    """Write the feed and messenger events into ClickHouse; one line per day."""
    import logging

    from clickhouse_connect.driver.exceptions import ClickHouseError

    from datagen import events_writer
    from datagen.feed_events import incidents_for

    # clickhouse-connect logs a warning of its own before raising a connection error.
    logging.getLogger("clickhouse_connect").setLevel(logging.ERROR)
    gen, population = _population()
    settings = ClickHouseSettings.from_env()
    try:
        client = events_writer.client(settings)
        if date:
            days = _given_days(date, n_days)
        else:
            days = events_writer.days_to_generate(client, population.start_date, gen.history_days)
        for day in days:
            incidents = () if clean else incidents_for(population, day)
            counts = events_writer.write_day(client, population, day, incidents)
            injected = "; ".join(_incident(i) for i in incidents) or "none"
            print(
                f"datagen events {day}: {sum(counts.values())} rows ({_detail(counts)}); "
                f"incidents: {injected}"
            )
    except events_writer.ClickHouseUnavailable as exc:
        print(f"datagen: {exc}", file=sys.stderr)
        return 1
    except ClickHouseError as exc:
        print(f"datagen: {events_writer.unavailable(settings, exc)}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"datagen: {redact(str(exc))}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
