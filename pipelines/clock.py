"""The simulated app's clock: the day(s) the source systems write next.

One notion of "the next day" for ``make run`` and for Airflow's
``simulate_day`` DAG: the day after the last one the app database holds, or,
on a first run, DATAGEN_HISTORY_DAYS days from DATAGEN_START_DATE. Each run
moves the clock one day, whichever of the two runs it, so neither skips days
nor writes a day twice.
"""

from __future__ import annotations

import datetime as dt

from config import DatagenSettings
from loaders.mongo.settings import MongoSettings


def next_days() -> list[dt.date]:
    """The days to write now: the first history on a first run, else the next day."""
    from datagen.mongo_writer import days_to_generate
    from loaders.mongo.client import mongo_database

    gen = DatagenSettings.from_env()
    client, db = mongo_database(MongoSettings.from_env())
    try:
        return days_to_generate(db, dt.date.fromisoformat(gen.start_date), gen.history_days)
    finally:
        client.close()


def written_days() -> list[dt.date]:
    """Every day the simulated systems have written so far (the app database keeps the record)."""
    from datagen.mongo_writer import generated_days
    from loaders.mongo.client import mongo_database

    client, db = mongo_database(MongoSettings.from_env())
    try:
        return generated_days(db)
    finally:
        client.close()
