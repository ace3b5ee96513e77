"""``raw_mongo.<collection>``: one row per document version, landed in bounded batches.

Each row is the document as JSONB plus ``_id``, the source write time, the
batch id and ``_loaded_at``. Raw is append-only; dbt staging picks the latest
version. Each batch commits its rows, rejects, ``loader.batches`` row and the
advanced watermark in one transaction.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import psycopg
from psycopg.copy import QueuedLibpqWriter

from loaders.core import result as core
from loaders.core.control import Reject, close_batch, open_batch, write_rejects
from loaders.core.copy import CopyRow, copy_rows, copy_statement
from loaders.core.raw_tables import RawTable
from loaders.mongo.checks import (
    COLLECTIONS,
    CollectionSpec,
    as_utc,
    encode_watermark,
    to_copy_row,
    watermark_time,
)
from loaders.mongo.client import batched

SOURCE = "mongo"
RAW_SCHEMA = "raw_mongo"
RAW_COLUMNS = ("_id", "doc", "_source_updated_at", "_batch_id")


# One raw table per collection, all alike: the document as JSONB and its version.
_TABLES = {
    name: RawTable(
        RAW_SCHEMA,
        name,
        (
            ("_id", "text not null"),
            ("doc", "jsonb not null"),
            ("_source_updated_at", "timestamptz not null"),
            # d: a tombstone, the document deleted at the source (found by reconciliation).
            ("_op", "text"),
        ),
        # _source_updated_at: each load looks up what it already landed in its lookback window.
        indexes=(("_id",), ("_loaded_at",), ("_source_updated_at",)),
    )
    for name in COLLECTIONS
}
RAW_TABLES = tuple(_TABLES.values())


def raw_table(spec: CollectionSpec) -> RawTable:
    return _TABLES[spec.name]


@dataclass(kw_only=True)
class LoadResult(core.LoadResult):
    collection: str
    batches: int = 0
    watermark: dict | None = None
    skipped: int = 0  # re-read in the lookback window, already landed
    unreachable: int = 0  # documents no watermark can reach (write time missing or not a date)
    full_check: bool = False  # whether this load ran the history-wide scan for them

    @property
    def raw_table(self) -> str:
        return f"{RAW_SCHEMA}.{self.collection}"


_STREAM_CHUNK = 256 << 10  # bytes handed to COPY at a time


Item = dict | Reject  # a decoded document, or one that failed to decode


def _encoded(
    spec: CollectionSpec, items: Iterable[Item], batch_id: int, not_after: dt.datetime | None
) -> Iterator[CopyRow | Reject]:
    for item in items:
        yield item if isinstance(item, Reject) else to_copy_row(item, spec, batch_id, not_after)


def _copy_batch(
    conn: psycopg.Connection,
    spec: CollectionSpec,
    items: list[Item],
    batch_id: int,
    not_after: dt.datetime | None,
) -> tuple[list[CopyRow], list[Reject], list[Reject]]:
    """COPY one batch; returns (rows, rejects found while encoding, rows PostgreSQL refused).

    Documents are encoded and streamed in pieces, so PostgreSQL parses one
    piece while Python encodes the next (the two use different cores). If
    PostgreSQL refuses a row, the savepoint rolls the stream back and
    ``copy_rows`` isolates the bad rows.
    """
    table = raw_table(spec).identifier
    rows: list[CopyRow] = []
    rejects: list[Reject] = []
    try:
        with (
            conn.transaction(),
            conn.cursor() as cur,
            # A writer thread sends while this thread encodes the next piece.
            cur.copy(copy_statement(table, RAW_COLUMNS), writer=QueuedLibpqWriter(cur)) as copy,
        ):
            pending: list[bytes] = []
            size = 0
            for row in _encoded(spec, items, batch_id, not_after):
                if isinstance(row, Reject):
                    rejects.append(row)
                    continue
                rows.append(row)
                pending.append(row.line)
                size += len(row.line)
                if size >= _STREAM_CHUNK:
                    copy.write(b"".join(pending))
                    pending.clear()
                    size = 0
            if pending:
                copy.write(b"".join(pending))
        return rows, rejects, []
    except psycopg.errors.DataError:
        rows, rejects = [], []
        for row in _encoded(spec, items, batch_id, not_after):
            (rows if isinstance(row, CopyRow) else rejects).append(row)
        return rows, rejects, copy_rows(conn, table, RAW_COLUMNS, rows)


def _advance(
    watermark: dict | None, items: list[Item], spec: CollectionSpec, not_after: dt.datetime | None
) -> dict | None:
    """The watermark after a batch: its last document with a usable write time, if later.

    Documents held back for a future write time never move it, and documents
    re-read in the lookback window never move it backwards.
    """
    current = watermark_time(watermark)
    for item in reversed(items):
        if isinstance(item, Reject):
            continue
        written = item.get(spec.watermark_field)
        if not isinstance(written, dt.datetime):
            continue
        ts = as_utc(written)
        if not_after is not None and ts > not_after:
            continue
        if current is None or ts >= current:
            return encode_watermark(item, spec)
        return watermark
    return watermark


def land_documents(
    conn: psycopg.Connection,
    spec: CollectionSpec,
    docs: Iterable[Item],
    *,
    batch_size: int,
    watermark: dict | None = None,
    not_after: dt.datetime | None = None,
    progress: Callable[[LoadResult], None] | None = None,
    max_batches: int | None = None,
) -> LoadResult:
    """Land ``docs`` (in watermark order) in bounded batches, one transaction each.

    Each transaction holds the batch's raw rows, its rejects, its ``loader.batches``
    row and the advanced watermark. The caller holds the stream lock.
    """
    result = LoadResult(collection=spec.name, watermark=watermark)
    started = time.monotonic()
    for chunk in batched(docs, batch_size):
        with conn.transaction():
            batch_id = open_batch(conn, SOURCE, spec.name)
            rows, rejects, refused = _copy_batch(conn, spec, chunk, batch_id, not_after)
            landed = len(rows) - len(refused)
            rejected = write_rejects(conn, batch_id, SOURCE, spec.name, rejects + refused)
            advanced = _advance(result.watermark, chunk, spec, not_after)
            close_batch(
                conn,
                batch_id,
                SOURCE,
                spec.name,
                landed,
                rejected,
                advanced if advanced is not result.watermark else None,
            )
            result.watermark = advanced
        result.landed += landed
        result.rejected += rejected
        result.batches += 1
        result.seconds = time.monotonic() - started
        if progress:
            progress(result)
        if max_batches is not None and result.batches >= max_batches:
            break
    result.seconds = time.monotonic() - started
    return result
