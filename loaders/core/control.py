"""The ``loader`` schema: what every source's loads have committed, and what they refused.

- ``watermarks``: how far each (source, stream) has been landed;
- ``batches``: one row per committed batch (rows landed and rejected);
- ``rejects``: records that could not be landed, with the reason and the
  payload as text, so nothing is dropped silently;
- ``full_checks``: when each stream's history-wide check last ran (checks
  whose cost grows with history run on a schedule, not on every load);
- ``reconciliations``: what each reconciliation of a source with its raw
  tables found and relanded (``loaders/core/reconcile.py``);
- ``lag``: what a stream still had to deliver when its load ended (the Kafka
  consumer's lag in messages, the change capture slot's in WAL bytes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from loaders.core.warehouse import LoaderError

CONTROL_DDL = """
create schema if not exists loader;
create table if not exists loader.watermarks (
    source      text not null,
    stream      text not null,
    value       jsonb not null,
    updated_at  timestamptz not null default now(),
    primary key (source, stream)
);
create table if not exists loader.batches (
    batch_id       bigserial primary key,
    source         text not null,
    stream         text not null,
    rows_landed    integer not null default 0,
    rows_rejected  integer not null default 0,
    watermark      jsonb,
    committed_at   timestamptz not null default now()
);
create table if not exists loader.rejects (
    reject_id       bigserial primary key,
    batch_id        bigint references loader.batches (batch_id),
    source          text not null,
    stream          text not null,
    record_id       text not null,
    record_version  text not null,
    reason          text not null,
    payload         text,
    rejected_at     timestamptz not null default now(),
    unique (source, stream, record_id, record_version, reason)
);
create table if not exists loader.reconciliations (
    reconciliation_id  bigserial primary key,
    source             text not null,
    stream             text not null,
    partitions         integer not null,
    differed           integer not null,
    relanded           integer not null,
    differences        jsonb not null,
    seconds            double precision not null,
    finished_at        timestamptz not null default now()
);
create table if not exists loader.lag (
    source       text not null,
    stream       text not null,
    lag          bigint not null,
    unit         text not null,
    measured_at  timestamptz not null default now(),
    primary key (source, stream, measured_at)
);
create table if not exists loader.full_checks (
    source      text not null,
    stream      text not null,
    checked_at  timestamptz not null,
    primary key (source, stream)
);
"""
DDL_LOCK = "select pg_advisory_xact_lock(hashtext('loader.ddl'))"


def ensure_control_tables(conn: psycopg.Connection) -> None:
    with conn.transaction():
        # Serialise concurrent first runs: CREATE ... IF NOT EXISTS can still race.
        conn.execute(DDL_LOCK)
        conn.execute(CONTROL_DDL)


@contextmanager
def stream_lock(
    conn: psycopg.Connection, source: str, stream: str, wait_seconds: float = 0
) -> Iterator[None]:
    """Refuse to run two loads of the same stream at once (they would both land a batch).

    ``wait_seconds``: how long to wait for a load holding it (a reconciliation, which
    can run later as well as now, waits; a load is refused at once).
    """
    key = f"{source}.{stream}"
    deadline = time.monotonic() + wait_seconds
    while True:
        got = conn.execute("select pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()
        conn.commit()
        if got and got[0]:
            break
        if time.monotonic() >= deadline:
            raise LoaderError(f"another load of {key} is running; wait for it to finish")
        time.sleep(1)
    try:
        yield
    finally:
        if not conn.closed:
            conn.execute("select pg_advisory_unlock(hashtext(%s))", (key,))
            conn.commit()


def read_watermark(conn: psycopg.Connection, source: str, stream: str) -> dict | None:
    row = conn.execute(
        "select value from loader.watermarks where source = %s and stream = %s", (source, stream)
    ).fetchone()
    conn.commit()
    return row[0] if row else None


def write_watermark(conn: psycopg.Connection, source: str, stream: str, value: dict) -> None:
    """Set a stream's watermark outside a batch (dbt's: the last build whose tests passed)."""
    with conn.transaction():
        conn.execute(
            "insert into loader.watermarks (source, stream, value) values (%s, %s, %s)"
            " on conflict (source, stream) do update"
            " set value = excluded.value, updated_at = now()",
            (source, stream, Jsonb(value)),
        )


def full_check_due(conn: psycopg.Connection, source: str, stream: str, every_hours: float) -> bool:
    """Whether the stream's history-wide check is due: never run, or older than ``every_hours``."""
    row = conn.execute(
        "select checked_at < now() - make_interval(secs => %s) from loader.full_checks"
        " where source = %s and stream = %s",
        (every_hours * 3600, source, stream),
    ).fetchone()
    conn.commit()
    return row is None or bool(row[0])


def mark_full_check(conn: psycopg.Connection, source: str, stream: str) -> None:
    with conn.transaction():
        conn.execute(
            "insert into loader.full_checks (source, stream, checked_at) values (%s, %s, now())"
            " on conflict (source, stream) do update set checked_at = excluded.checked_at",
            (source, stream),
        )


def record_lag(conn: psycopg.Connection, source: str, stream: str, lag: int, unit: str) -> None:
    """What ``stream`` had left to deliver as its load ended (the ops models chart it)."""
    with conn.transaction():
        conn.execute(
            "insert into loader.lag (source, stream, lag, unit) values (%s, %s, %s, %s)"
            " on conflict do nothing",
            (source, stream, lag, unit),
        )


def open_batch(conn: psycopg.Connection, source: str, stream: str) -> int:
    row = conn.execute(
        "insert into loader.batches (source, stream) values (%s, %s) returning batch_id",
        (source, stream),
    ).fetchone()
    assert row is not None
    return int(row[0])


def close_batch(
    conn: psycopg.Connection,
    batch_id: int,
    source: str,
    stream: str,
    landed: int,
    rejected: int,
    watermark: dict | None,
) -> None:
    """Record the batch's counts and advance the watermark (same transaction as the rows)."""
    wm = json.dumps(watermark) if watermark is not None else None
    conn.execute(
        "update loader.batches set rows_landed = %s, rows_rejected = %s, watermark = %s,"
        " committed_at = now() where batch_id = %s",
        (landed, rejected, wm, batch_id),
    )
    if wm is None:
        return
    conn.execute(
        "insert into loader.watermarks (source, stream, value) values (%s, %s, %s)"
        " on conflict (source, stream) do update set value = excluded.value, updated_at = now()",
        (source, stream, wm),
    )


@dataclass(frozen=True)
class Reject:
    record_id: str
    record_version: str
    reason: str
    payload: str


def storable(text: str) -> str:
    """``text`` as PostgreSQL can store it: NUL and unpaired surrogates escaped, never lost."""
    if "\x00" in text:
        text = text.replace("\x00", "\\u0000")
    try:
        text.encode()
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode()
    return text


def write_rejects(
    conn: psycopg.Connection,
    batch_id: int | None,
    source: str,
    stream: str,
    rejects: Sequence[Reject],
) -> int:
    """Insert rejects; a record already rejected for the same reason is not counted twice."""
    inserted = 0
    with conn.cursor() as cur:
        for r in rejects:
            cur.execute(
                "insert into loader.rejects"
                " (batch_id, source, stream, record_id, record_version, reason, payload)"
                " values (%s, %s, %s, %s, %s, %s, %s) on conflict do nothing",
                (
                    batch_id,
                    source,
                    stream,
                    storable(r.record_id),
                    storable(r.record_version),
                    storable(r.reason),
                    storable(r.payload),
                ),
            )
            inserted += cur.rowcount
    return inserted
