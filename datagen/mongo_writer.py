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
    """An index on each write-time field: the loader's incremental reads are range scans on it.

    A real MongoDB should have (write time, _id), the loader's exact read order
    (README); the embedded stand-in (nx-27017) accepts that index but then
    refuses every upsert, so the simulator creates the write-time index alone.
    """
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


def play_day(
    db: Database, population: Population, day: dt.date, max_gap_days: int = 7
) -> dict[str, int] | None:
    """Write ``day`` as the app would, for a scheduler's run of that logical date.

    The app's clock only moves forward: a day at or before the last one written
    (a rerun, or a backfill behind the present) is skipped and returns None.
    Rewriting it would put older versions of tickets and reviews back over
    newer ones. Missing days before ``day`` are written first, at most
    ``max_gap_days`` of them, so a scheduler that starts late still gets a
    short coherent history instead of replaying months.
    """
    if day < population.start_date:
        raise ValueError(f"day {day} is before the simulation start {population.start_date}")
    done = generated_days(db)
    if done and day <= done[-1]:
        return None
    first = done[-1] + dt.timedelta(days=1) if done else population.start_date
    first = max(first, day - dt.timedelta(days=max(1, max_gap_days) - 1))
    counts: dict[str, int] = {}
    span = [first + dt.timedelta(days=k) for k in range((day - first).days + 1)]
    for _, day_counts in write_days(db, population, span):
        for name, n in day_counts.items():
            counts[name] = counts.get(name, 0) + n
    return counts
