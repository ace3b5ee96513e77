"""``raw_oltp.<table>``: one row per replicated row version, landed COPY to COPY.

Values land as text exactly as the source's ``COPY ... TO STDOUT`` wrote them
(the source session runs in UTC with ISO dates), so no source value can be
refused; staging types them. Raw is append-only; staging keeps each key's
latest version.

A load has two phases, each in bounded batches of at most ``batch_size`` rows,
each batch one warehouse transaction (its raw rows, its rejects, its
``loader.batches`` row and, in phase 2, the advanced watermark):

1. the lookback window: the rows stamped from ``LOADER_LOOKBACK_SECONDS``
   before the watermark up to the watermark itself are read again, COPied into
   a temporary stage table, and only the versions raw does not hold yet are
   inserted (``insert ... select ... where not exists`` on (key, cursor), served
   by raw's (key, cursor) index). This catches a row committed late with a
   write time just behind the watermark (a long transaction: ``now()`` is its
   start time, not its commit time). A batch that finds nothing new is rolled
   back and leaves no trace. The watermark does not move.
2. beyond the watermark: the source's COPY stream goes straight into the raw
   table's ``COPY ... FROM STDIN``. No version beyond the watermark can be in
   raw (every committed row is at or behind it), so nothing needs skipping.

The batch's last (cursor, key) is its last COPY line (the source sends rows in
keyset order, one per chunk), so the watermark costs no query and no row loop.
A crash anywhere rolls the open batch back; the rerun re-reads the window and
skips what committed batches landed, so raw ends up exactly as an uninterrupted
load leaves it.

The trade-off of the lookback: every load re-reads the window (an hour of
changes by default) and compares it with raw; a write committed later than
that behind the watermark is out of reach (set the window above the source's
longest transaction). Logical replication would be exact, but needs
privileges and a slot on the source.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from functools import partial

import psycopg
from psycopg import sql

from loaders.core import result as core
from loaders.core.control import Reject, close_batch, open_batch, write_rejects
from loaders.core.copy import copy_rows, copy_statement
from loaders.core.raw_tables import RawTable
from loaders.oltp.checks import TABLES, OltpTable, Position, copy_row

SOURCE = "oltp"
RAW_SCHEMA = "raw_oltp"

# When a connection dies in the middle of a COPY, psycopg logs a warning as it
# fails to end the COPY ("error ignored terminating ... the connection is
# lost") before the error itself reaches us; without logging configured,
# Python would print it beside the one line the load stops with. It says
# nothing that line does not (an application that configures logging still
# gets it).
logging.getLogger("psycopg").addHandler(logging.NullHandler())

# What change capture adds to each row version: the kind of change (Debezium's
# codes: r snapshot read, c insert, u update, d delete, t truncate), the commit's
# LSN and the change's place in its transaction. Versions of a key rank by
# (_lsn, _seq): commit order. A keyset read has no _op and, as _lsn, the
# source's WAL position when its snapshot was taken: a later read ranks higher.
CHANGE_COLUMNS = (("_op", "text"), ("_lsn", "pg_lsn"), ("_seq", "integer"))

_TABLES = {
    t.name: RawTable(
        RAW_SCHEMA,
        t.name,
        (*((column, "text") for column in t.columns), *CHANGE_COLUMNS),
        # (key, cursor): the lookback's dedup; _batch_id: incremental dbt models;
        # _loaded_at: the daily tests that read raw rows landed since (text_key_castable).
        indexes=((t.primary_key, t.cursor), ("_batch_id",), ("_loaded_at",)),
    )
    for t in TABLES.values()
}
RAW_TABLES = tuple(_TABLES.values())


def raw_table(spec: OltpTable) -> RawTable:
    return _TABLES[spec.name]


def copy_columns(spec: OltpTable) -> tuple[str, ...]:
    """The columns a keyset batch's COPY fills: the source's, the batch id, the read's LSN."""
    return (*spec.columns, "_batch_id", "_lsn")


@dataclass(kw_only=True)
class LoadResult(core.LoadResult):
    """``rejected``: rejects recorded by this run (a row refused again is not counted twice)."""

    table: str
    batches: int = 0
    watermark: dict | None = None
    skipped: int = 0  # re-read in the lookback window, already landed
    held: int = 0  # stamped too far ahead of the source's clock: in loader.rejects, not landed
    unreachable: int = 0  # NULL (or BC) write time: no watermark reaches them

    @property
    def raw_table(self) -> str:
        return f"{RAW_SCHEMA}.{self.table}"


# Reads one batch from the source, given its batch id, where it starts, and
# where it must stop (the watermark, for the lookback window): COPY text in
# chunks of whole lines, in keyset order.
Chunk = bytes | bytearray
BatchReader = Callable[[int, Position, Position | None], Iterator[Chunk]]


def _pipe(chunks: Iterator[Chunk], copy: psycopg.Copy) -> tuple[int, bytes | None]:
    """Write the source's chunks into the warehouse's COPY as they come: (rows, last line)."""
    rows, chunk = 0, b""
    with closing(chunks):  # on a warehouse error, the source's COPY is cancelled
        for chunk in chunks:
            copy.write(chunk)
            rows += chunk.count(b"\n")
    return rows, last_line(chunk)


def last_line(chunk: Chunk) -> bytes | None:
    """The last line of a chunk of whole COPY text lines (None for no chunk)."""
    if not chunk:
        return None
    return bytes(chunk[chunk.rfind(b"\n", 0, len(chunk) - 1) + 1 :])


def copy_batch(
    conn: psycopg.Connection,
    spec: OltpTable,
    target: sql.Composable,
    read: Callable[[], Iterator[Chunk]],
    columns: tuple[str, ...] | None = None,
) -> tuple[int, bytes | None, list[Reject]]:
    """COPY one batch from the source into ``target``: (rows read, last line, rows refused).

    The fast path streams the source's COPY into the warehouse's inside a
    savepoint. Text columns take any value PostgreSQL can print, so the
    warehouse refuses a line only if it is not valid UTF-8 (a SQL_ASCII source
    passes its bytes through) or holds a NUL (COPY text turns ``\\0``,
    ``\\x00`` and ``\\000`` into one; PostgreSQL's own COPY TO never writes
    them, since text cannot hold a NUL and a backslash is sent doubled). Then
    the savepoint rolls back, the batch is read again (same snapshot, same
    rows) into memory, and ``copy_rows`` bisects it: only the refused rows
    become rejects, with the reason and the line. ``columns``: what each line
    holds (default: the contract's columns and the batch id).
    """
    columns = columns or copy_columns(spec)
    try:
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy(copy_statement(target, columns)) as copy,
        ):
            n, last = _pipe(read(), copy)
        return n, last, []
    except psycopg.errors.DataError:
        with closing(read()) as chunks:
            text = b"".join(chunks)
        lines = [line + b"\n" for line in text.split(b"\n")[:-1]]
        refused = copy_rows(conn, target, columns, [copy_row(line, spec) for line in lines])
        return len(lines), lines[-1] if lines else None, refused


def _stage(conn: psycopg.Connection, spec: OltpTable) -> sql.Composed:
    """This session's stage table for ``spec`` (emptied at every commit)."""
    stage = sql.Identifier("pg_temp", f"oltp_stage__{spec.name}")
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "create temporary table if not exists {} (like {} including defaults)"
                " on commit delete rows"
            ).format(sql.Identifier(f"oltp_stage__{spec.name}"), raw_table(spec).identifier)
        )
    return sql.SQL("{}").format(stage)


def insert_new_versions(conn: psycopg.Connection, spec: OltpTable, stage: sql.Composable) -> int:
    """Insert the staged versions raw does not hold yet; returns how many."""
    raw = raw_table(spec).identifier
    key, cursor = sql.Identifier(spec.primary_key), sql.Identifier(spec.cursor)
    columns = copy_columns(spec)
    statement = sql.SQL(
        "insert into {raw} ({columns}) select {staged} from {stage} as s"
        " where not exists (select from {raw} as r where r.{key} = s.{key}"
        " and r.{cursor} = s.{cursor})"
    ).format(
        raw=raw,
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        staged=sql.SQL(", ").join(sql.Identifier("s", c) for c in columns),
        stage=stage,
        key=key,
        cursor=cursor,
    )
    conn.execute(sql.SQL("analyze {}").format(stage))  # a fresh temp table has no statistics
    with conn.cursor() as cur:
        cur.execute(statement)
        return cur.rowcount


def land_lookback(
    conn: psycopg.Connection,
    spec: OltpTable,
    read: BatchReader,
    start: Position,
    watermark: Position,
    *,
    batch_size: int,
    result: LoadResult,
    progress: Callable[[LoadResult], None] | None = None,
) -> None:
    """Phase 1: re-read ``start`` .. ``watermark``, land only the versions raw lacks."""
    stage = _stage(conn, spec)
    after = start
    while True:
        with conn.transaction() as tx:
            batch_id = open_batch(conn, SOURCE, spec.name)
            n, last, refused = copy_batch(
                conn, spec, stage, partial(read, batch_id, after, watermark)
            )
            landed = insert_new_versions(conn, spec, stage) if n > len(refused) else 0
            rejected = write_rejects(conn, batch_id, SOURCE, spec.name, refused)
            if landed or rejected:
                close_batch(conn, batch_id, SOURCE, spec.name, landed, rejected, None)
            else:
                raise psycopg.Rollback(tx)  # nothing new: leave no empty batch behind
        result.skipped += n - landed - len(refused)
        if landed or rejected:
            _count(result, landed, rejected, progress)
        if n < batch_size or last is None:
            return
        after = Position.of_line(last, spec)


def land_new(
    conn: psycopg.Connection,
    spec: OltpTable,
    read: BatchReader,
    start: Position,
    *,
    batch_size: int,
    result: LoadResult,
    progress: Callable[[LoadResult], None] | None = None,
) -> None:
    """Phase 2: everything after ``start``, straight into raw; each batch moves the watermark."""
    raw = raw_table(spec).identifier
    after = start
    while True:
        with conn.transaction() as tx:
            batch_id = open_batch(conn, SOURCE, spec.name)
            n, last, refused = copy_batch(conn, spec, raw, partial(read, batch_id, after, None))
            if last is None:
                raise psycopg.Rollback(tx)  # nothing new: leave no empty batch behind
            landed = n - len(refused)
            rejected = write_rejects(conn, batch_id, SOURCE, spec.name, refused)
            position = Position.of_line(last, spec)
            close_batch(conn, batch_id, SOURCE, spec.name, landed, rejected, position.watermark())
        if last is None:
            return
        result.watermark = position.watermark()
        _count(result, landed, rejected, progress)
        if n < batch_size:
            return
        after = position


def _count(
    result: LoadResult, landed: int, rejected: int, progress: Callable[[LoadResult], None] | None
) -> None:
    result.landed += landed
    result.rejected += rejected
    result.batches += 1
    if progress:
        progress(result)


def latest_versions(spec: OltpTable, where: str = "true") -> sql.Composed:
    """Each key's latest version in raw among the rows matching ``where`` (its key as
    ``key``, and every column), ranked as staging ranks them: commit or read order
    (``_lsn``, ``_seq``), then the write time (ISO text in UTC sorts as time does), then
    the batch."""
    key = sql.Identifier(spec.primary_key)
    return sql.SQL(
        "select distinct on ({key}) {key} as key, * from {raw} where {where}"
        " order by {key}, _lsn desc nulls last, _seq desc nulls last, {cursor} desc nulls last,"
        " _batch_id desc"
    ).format(
        key=key,
        raw=raw_table(spec).identifier,
        where=sql.SQL(where),
        cursor=sql.Identifier(spec.cursor),
    )


def tombstone_missing(
    conn: psycopg.Connection,
    spec: OltpTable,
    batch_id: int,
    lsn: str,
    where: str = "true",
    refused: Iterable[Reject] = (),
) -> int:
    """Keys raw holds alive (among rows matching ``where``) that batch ``batch_id``, a
    full read of them, lacks: deleted at the source. Each gets a tombstone at ``lsn``.
    Keys the warehouse ``refused`` in that read are still at the source: none for them."""
    key = sql.Identifier(spec.primary_key)
    statement = sql.SQL(
        "insert into {raw} ({key}, _batch_id, _op, _lsn, _seq)"
        " select l.key, %(batch)s, 'd', %(lsn)s::pg_lsn, 0 from ({latest}) as l"
        " where l._op is distinct from 'd' and l._op is distinct from 't'"
        " and not exists (select from {raw} as s where s._batch_id = %(batch)s"
        " and s.{key} = l.key) and l.key <> all(%(refused)s)"
    ).format(
        raw=raw_table(spec).identifier,
        key=key,
        latest=latest_versions(spec, f"_batch_id < %(batch)s and ({where})"),
    )
    kept = [r.record_id for r in refused]
    with conn.cursor() as cur:
        cur.execute(statement, {"batch": batch_id, "lsn": lsn, "refused": kept})
        return cur.rowcount
