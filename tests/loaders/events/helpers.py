"""Source rows written into ClickHouse, and what landed, for the events loader's tests."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import psycopg
from clickhouse_connect.driver.client import Client
from psycopg import sql

from datagen.population import Population
from loaders.events.landing import TABLES

START = dt.date(2026, 10, 1)
STREAMS = tuple(TABLES)


def pop(scale: float = 0.05, seed: int = 42) -> Population:
    return Population(seed=seed, scale=scale, start_date=START)


def day(n: int) -> dt.date:
    return START + dt.timedelta(days=n)


def _utc(value):
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return value


def source_rows(ch: Client, table: str, on: dt.date) -> Counter:
    """The day's rows in ClickHouse as a multiset, times as aware UTC instants."""
    columns = ", ".join(TABLES[table].column_names)
    rows = ch.query(
        f"SELECT {columns} FROM {table} WHERE toDate(time, 'UTC') = {{d:Date}}",
        parameters={"d": on},
    ).result_rows
    return Counter(tuple(_utc(v) for v in row) for row in rows)


def raw_rows(warehouse: str, table: str, on: dt.date | None = None) -> Counter:
    """The landed rows (of one day) as a multiset (loader columns left out)."""
    query = sql.SQL("select {} from {} where %(d)s::date is null or _event_date = %(d)s").format(
        sql.SQL(", ").join(map(sql.Identifier, TABLES[table].column_names)),
        sql.Identifier("raw_events", table),
    )
    with psycopg.connect(warehouse) as conn:
        return Counter(
            tuple(_utc(v) for v in row) for row in conn.execute(query, {"d": on}).fetchall()
        )


def scalar(conninfo: str, query: str, *params):
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(query, params).fetchone()
        return row[0] if row else None


def watermark(warehouse: str, table: str) -> dict | None:
    return scalar(
        warehouse,
        "select value from loader.watermarks where source = 'events' and stream = %s",
        table,
    )


def batches(warehouse: str, table: str) -> list[tuple[int, int, dict | None]]:
    """(rows landed, rows rejected, watermark) of the table's batches, oldest first."""
    with psycopg.connect(warehouse) as conn:
        return conn.execute(
            "select rows_landed, rows_rejected, watermark from loader.batches"
            " where source = 'events' and stream = %s order by batch_id",
            (table,),
        ).fetchall()


def rejects(warehouse: str, table: str) -> dict[str, tuple[str, str, str]]:
    """record_id -> (record_version, reason, payload) of the table's rejects."""
    with psycopg.connect(warehouse) as conn:
        rows = conn.execute(
            "select record_id, record_version, reason, payload from loader.rejects"
            " where source = 'events' and stream = %s",
            (table,),
        ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}
