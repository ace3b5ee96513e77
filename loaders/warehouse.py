"""The warehouse side every loader shares: connections, control tables, COPY.

Control tables live in schema ``loader``:
- ``watermarks``: how far each (source, stream) has been landed;
- ``batches``: one row per committed batch (rows landed and rejected);
- ``rejects``: records that could not be landed, with the reason and the
  payload as text, so nothing is dropped silently.

A batch's raw rows, its rejects, its ``batches`` row and the advanced
watermark commit in one transaction: a crash at any point rolls all of them
back together, and a rerun resumes from the last committed watermark.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from loaders.settings import WarehouseSettings


class LoaderError(RuntimeError):
    """A load cannot proceed; the message is the one line shown to the user."""


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
"""


@contextmanager
def connect(settings: WarehouseSettings) -> Iterator[psycopg.Connection]:
    """A connection with a one-line error when the warehouse is unreachable."""
    try:
        conn = psycopg.connect(settings.conninfo())
    except psycopg.OperationalError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1].strip()
        raise LoaderError(
            f"cannot connect to the warehouse at {settings.describe()}: {reason} "
            "(run `make up` for the embedded server, or fix WAREHOUSE_* in .env)"
        ) from None
    try:
        yield conn
    finally:
        conn.close()


def ensure_control_tables(conn: psycopg.Connection) -> None:
    with conn.transaction():
        # Serialise concurrent first runs: CREATE ... IF NOT EXISTS can still race.
        conn.execute("select pg_advisory_xact_lock(hashtext('loader.ddl'))")
        conn.execute(CONTROL_DDL)


@contextmanager
def stream_lock(conn: psycopg.Connection, source: str, stream: str) -> Iterator[None]:
    """Refuse to run two loads of the same stream at once (they would both land a batch)."""
    key = f"{source}.{stream}"
    got = conn.execute("select pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()
    conn.commit()
    if not got or not got[0]:
        raise LoaderError(f"another load of {key} is running; wait for it to finish")
    try:
        yield
    finally:
        conn.execute("select pg_advisory_unlock(hashtext(%s))", (key,))
        conn.commit()


def read_watermark(conn: psycopg.Connection, source: str, stream: str) -> dict | None:
    row = conn.execute(
        "select value from loader.watermarks where source = %s and stream = %s", (source, stream)
    ).fetchone()
    conn.commit()
    return row[0] if row else None


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


def write_rejects(
    conn: psycopg.Connection,
    batch_id: int | None,
    source: str,
    stream: str,
    rejects: Sequence[Reject],
) -> int:
    """Insert rejects; a record already rejected for the same reason is not counted twice."""
    inserted = 0
    for r in rejects:
        cur = conn.execute(
            "insert into loader.rejects"
            " (batch_id, source, stream, record_id, record_version, reason, payload)"
            " values (%s, %s, %s, %s, %s, %s, %s) on conflict do nothing",
            (batch_id, source, stream, r.record_id, r.record_version, r.reason, r.payload),
        )
        inserted += cur.rowcount
    return inserted


@dataclass(frozen=True, slots=True)
class CopyRow:
    """One line of COPY text format plus what to record if the database refuses it.

    Built once per record on the hot path, so it holds bytes and decodes only
    when a row is actually refused.
    """

    line: bytes
    record_id: bytes
    record_version: bytes
    body: bytes  # the payload kept in loader.rejects if PostgreSQL refuses the line

    def refused(self, reason: str) -> Reject:
        return Reject(
            self.record_id.decode(errors="replace"),
            self.record_version.decode(),
            f"refused by PostgreSQL: {reason}",
            self.body.decode(errors="replace"),
        )


def copy_statement(table: sql.Composable, columns: Sequence[str]) -> sql.Composed:
    return sql.SQL("copy {} ({}) from stdin").format(
        table, sql.SQL(", ").join(map(sql.Identifier, columns))
    )


def copy_rows(
    conn: psycopg.Connection, table: sql.Composable, columns: Sequence[str], rows: Sequence[CopyRow]
) -> list[Reject]:
    """COPY ``rows`` in; rows the database refuses come back as rejects.

    The fast path is one COPY of the whole batch. If PostgreSQL refuses a row
    (a data error our own checks did not foresee), the batch is split in halves
    inside savepoints until the bad rows are isolated: k bad rows cost
    O(k log n) COPYs, and every good row still lands.
    """
    if not rows:
        return []
    try:
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy(copy_statement(table, columns)) as copy,
        ):
            copy.write(b"".join(r.line for r in rows))
        return []
    except psycopg.errors.DataError as exc:
        if len(rows) == 1:
            return [rows[0].refused((str(exc).strip().splitlines() or ["data error"])[0])]
        mid = len(rows) // 2
        return copy_rows(conn, table, columns, rows[:mid]) + copy_rows(
            conn, table, columns, rows[mid:]
        )


def copy_text(value: str) -> bytes:
    """Escape a value for COPY's text format."""
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    ).encode()
