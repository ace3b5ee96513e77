"""``python -m datagen``: play the store's app for one or more logical days."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from config import ConfigError, DatagenSettings, MongoSettings
from datagen.mongo_writer import days_to_generate, write_days
from datagen.population import Population


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="datagen", description=__doc__)
    sub = parser.add_subparsers(dest="source", required=True)
    mongo = sub.add_parser("mongo", help="write the MongoDB app database")
    mongo.add_argument("--date", type=dt.date.fromisoformat, help="logical day (default: next)")
    mongo.add_argument("--days", type=int, default=1, help="with --date: this many days from it")
    args = parser.parse_args(argv)
    try:
        gen = DatagenSettings.from_env()
        settings = MongoSettings.from_env()
        population = Population(gen.seed, gen.scale, dt.date.fromisoformat(gen.start_date))
        client: MongoClient = MongoClient(settings.uri, serverSelectionTimeoutMS=5000)
        db = client[settings.database]
        if args.date:
            days = [args.date + dt.timedelta(days=k) for k in range(args.days)]
        else:
            days = days_to_generate(db, population.start_date, gen.history_days)
        for day, counts in write_days(db, population, days):
            total = sum(counts.values())
            detail = ", ".join(f"{k}={v}" for k, v in counts.items())
            print(f"datagen mongo {day}: {total} documents ({detail})")
    except ConfigError as exc:
        print(f"datagen: configuration error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"datagen: {exc}", file=sys.stderr)
        return 2
    except PyMongoError as exc:
        print(
            f"datagen: MongoDB at {settings.uri} failed: {str(exc).splitlines()[0][:200]}. "
            "Run `make up` or fix MONGO_URI.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
