"""The events reconciled with ClickHouse per UTC day over the whole history.

Each load re-checks only the ``EVENTS_LOOKBACK_DAYS`` before its day, by
count. This compares every day up to the latest day landed, by count and by
hash (``client.canonical_row``), so it also finds events later than the
lookback, days no load asked for (an event stamped 1970) and a day rewritten
with as many rows. A day that differs is landed again whole, as a load does
(one transaction: the day's rows, its rejects and its batch). Rejected rows
are in no raw table: a day with rejects is compared by count (landed plus
rejected), not by hash. A day ClickHouse no longer has (retention) is kept.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable

import psycopg
from psycopg import sql

from config import WarehouseSettings
from loaders.core.control import stream_lock
from loaders.core.reconcile import (
    LOCK_WAIT_SECONDS,
    Partition,
    Reconciled,
    md5_60_sum_sql,
    record,
    timed,
)
from loaders.core.warehouse import connect
from loaders.events.client import EventSource, canonical_row, open_source
from loaders.events.job import horizon, land_source_day, prepare_warehouse, table_specs
from loaders.events.landing import SOURCE, EventTable, raw_table
from loaders.events.settings import ClickHouseSettings
from loaders.raw_tables import ensure_all_raw_tables


def _last_landed_day(conn: psycopg.Connection, spec: EventTable) -> dt.date | None:
    row = conn.execute(
        "select value ->> 'increment_date' from loader.watermarks"
        " where source = %s and stream = %s",
        (SOURCE, spec.name),
    ).fetchone()
    conn.commit()
    return dt.date.fromisoformat(row[0]) if row and row[0] else None


def raw_stats(
    conn: psycopg.Connection, spec: EventTable, last_day: dt.date
) -> dict[dt.date, tuple[Partition, int]]:
    """Per day up to ``last_day``: raw's rows and hash, and the day's rejects."""
    stats = conn.execute(
        sql.SQL(
            "select _event_date, count(*), {hash} from {raw} where _event_date <= %s group by 1"
        ).format(
            hash=sql.SQL(md5_60_sum_sql(canonical_row(spec, clickhouse=False))),
            raw=raw_table(spec).identifier,
        ),
        (last_day,),
    ).fetchall()
    rejects = conn.execute(
        "select record_version, count(*) from loader.rejects where source = %s and stream = %s"
        " group by 1",
        (SOURCE, spec.name),
    ).fetchall()
    conn.commit()
    found = {day: (Partition(int(n), int(h)), 0) for day, n, h in stats}
    for version, n in rejects:
        try:
            day = dt.date.fromisoformat(version)
        except ValueError:
            continue
        if day <= last_day:
            held, _ = found.get(day, (Partition(0, 0), 0))
            found[day] = (held, int(n))
    return found


def reconcile_table(source: EventSource, conn: psycopg.Connection, spec: EventTable) -> Reconciled:
    started = time.monotonic()
    result = Reconciled(SOURCE, spec.name)
    with stream_lock(conn, SOURCE, spec.name, wait_seconds=LOCK_WAIT_SECONDS):
        last_day = _last_landed_day(conn, spec)
        if last_day is None:  # never loaded: the loads' business
            return timed(result, started)
        limit = horizon()
        at_source = source.day_stats(spec, last_day, limit)
        in_raw = raw_stats(conn, spec, last_day)
        for day in sorted(set(at_source) | set(in_raw)):
            rows, digest = at_source.get(day, (0, 0))
            held, rejected = in_raw.get(day, (Partition(0, 0), 0))
            theirs = Partition(rows, None if rejected else digest)
            ours = Partition(held.rows + rejected, None if rejected else held.hash)

            def reland(day: dt.date = day, rows: int = rows) -> str:
                if rows == 0:
                    return "kept: ClickHouse no longer has the day"
                land_source_day(source, conn, spec, day, limit)
                return "relanded"

            result.compare(day.isoformat(), theirs, ours, reland)
    record(conn, timed(result, started))
    return result


def reconcile(tables: Iterable[str] | None = None) -> list[Reconciled]:
    """Both tables (or the named ones) that have landed, one after the other."""
    with connect(WarehouseSettings.from_env()) as conn:
        ensure_all_raw_tables(conn)
        # A table never landed is the loads' business: ClickHouse may not even have it yet.
        specs = [spec for spec in table_specs(tables) if _last_landed_day(conn, spec)]
    if not specs:
        return []
    results = []
    with (
        open_source(ClickHouseSettings.from_env()) as source,
        connect(WarehouseSettings.from_env()) as conn,
    ):
        prepare_warehouse(conn)
        for spec in specs:
            source.check_contract(spec)
            results.append(reconcile_table(source, conn, spec))
    return results
