"""The simulated app's clock: the day(s) the source systems write next.

One notion of "the next day" for ``make run`` and for Airflow's
``simulate_day`` DAG: the day after the last one the simulation issued, or,
on a first run, DATAGEN_HISTORY_DAYS days from DATAGEN_START_DATE. Each run
moves the clock one day, whichever of the two runs it, so neither skips days
nor writes a day twice.

The clock has its own small state in the warehouse, ``loader.simulated_days``
(one row per day issued), not in any source system: `make run` records a day
once every simulated system has written it (a failed write issues the day
again), Airflow's ``next_day`` when it issues it (a system whose write failed
gets the day with the next run: each simulator writes the days it missed
first). A stack made before the clock had its own state adopts the days the
app database recorded, once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import psycopg

from config import DatagenSettings, WarehouseSettings
from loaders.core.warehouse import connect

DDL = """
create schema if not exists loader;
create table if not exists loader.simulated_days (
    day date primary key,
    issued_at timestamptz not null default now()
);
comment on table loader.simulated_days is
    'The simulation''s clock: every day the simulated source systems were given to write.';
"""


def _ensure(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('loader.simulated_days'))")
        conn.execute(DDL)


def _adopt_app_db_record(conn: psycopg.Connection) -> list[dt.date]:
    """The days a stack from before this clock wrote, from the app database's own record."""
    from pipelines.sources import SOURCES_BY_NAME

    if "mongo" not in SOURCES_BY_NAME:
        return []
    from datagen.mongo_writer import generated_days
    from loaders.mongo.client import mongo_database
    from loaders.mongo.settings import MongoSettings

    client, db = mongo_database(MongoSettings.from_env())
    try:
        days = generated_days(db)
    finally:
        client.close()
    _insert(conn, days)
    return days


def _insert(conn: psycopg.Connection, days: Iterable[dt.date]) -> None:
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "insert into loader.simulated_days (day) values (%s) on conflict do nothing",
            [(day,) for day in days],
        )


def written_days(wh: WarehouseSettings | None = None) -> list[dt.date]:
    """Every day the simulation has issued so far, oldest first."""
    with connect(wh or WarehouseSettings.from_env()) as conn:
        conn.autocommit = True  # each statement its own: an adopted record is kept
        _ensure(conn)
        rows = conn.execute("select day from loader.simulated_days order by day").fetchall()
        return [day for (day,) in rows] or _adopt_app_db_record(conn)


def next_days(wh: WarehouseSettings | None = None) -> list[dt.date]:
    """The days to write now: the first history on a first run, else the next day."""
    done = written_days(wh)
    if done:
        return [done[-1] + dt.timedelta(days=1)]
    gen = DatagenSettings.from_env()
    start = dt.date.fromisoformat(gen.start_date)
    return [start + dt.timedelta(days=k) for k in range(max(1, gen.history_days))]


def record(days: Iterable[dt.date], wh: WarehouseSettings | None = None) -> None:
    """Move the clock: ``days`` have been issued (a day recorded twice counts once)."""
    with connect(wh or WarehouseSettings.from_env()) as conn:
        conn.autocommit = True
        _ensure(conn)
        _insert(conn, days)
