"""Write a simulated day into MongoDB, idempotently.

Every document carries a deterministic ``_id`` and is written whole with an
upsert, so rerunning a day (or finishing one that crashed half-way) leaves
exactly one copy of each document. Whole-document writes also sidestep the
embedded server's ``$set`` datetime defect. A marker document per day records
that the day is complete; the next-day logic reads it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from pymongo import ASCENDING, ReplaceOne
from pymongo.database import Database

from datagen.app_db import COLLECTIONS, AppDay
from datagen.population import Population

DAYS_MARKER = "_datagen_days"
# The app's write-time field per collection (what a CDC watermark can follow).
WRITE_TIME_FIELD = {name: "updated_at" for name in COLLECTIONS} | {
    "user_recommendations": "last_updated"
}
CHUNK = 5_000


def ensure_indexes(db: Database) -> None:
    for name, field in WRITE_TIME_FIELD.items():
        db[name].create_index([(field, ASCENDING)])


def write_day(db: Database, population: Population, day: dt.date) -> dict[str, int]:
    """Generate ``day`` and upsert it; returns documents written per collection."""
    docs = AppDay(population, day).documents()
    counts = {}
    for name, items in docs.items():
        for start in range(0, len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            db[name].bulk_write(
                [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in chunk], ordered=False
            )
        counts[name] = len(items)
    db[DAYS_MARKER].replace_one(
        {"_id": day.isoformat()},
        {
            "_id": day.isoformat(),
            "seed": population.seed,
            "scale": population.scale,
            "counts": counts,
        },
        upsert=True,
    )
    return counts


def generated_days(db: Database) -> list[dt.date]:
    return sorted(dt.date.fromisoformat(d["_id"]) for d in db[DAYS_MARKER].find({}, {"_id": 1}))


def days_to_generate(db: Database, start: dt.date, history_days: int) -> list[dt.date]:
    """First run: ``history_days`` days from ``start``; later runs: the day after the last."""
    done = generated_days(db)
    if not done:
        return [start + dt.timedelta(days=k) for k in range(max(1, history_days))]
    return [done[-1] + dt.timedelta(days=1)]


def write_days(db: Database, population: Population, days: Iterable[dt.date]):
    ensure_indexes(db)
    for day in days:
        yield day, write_day(db, population, day)
