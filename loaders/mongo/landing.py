"""``raw_mongo.<collection>``: one row per document version, landed in bounded batches.

Each row is the document as JSONB plus ``_id``, the source write time, the
batch id and ``_loaded_at``. Raw is append-only; dbt staging picks the latest
version. Each batch commits its rows, rejects, ``loader.batches`` row and the
advanced watermark in one transaction.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psycopg
from psycopg.copy import QueuedLibpqWriter

from loaders.core.control import Reject, close_batch, open_batch, write_rejects
from loaders.core.copy import CopyRow, copy_rows, copy_statement
from loaders.core.raw_tables import RawTable
from loaders.mongo.checks import COLLECTIONS, CollectionSpec, encode_watermark, to_copy_row
from loaders.mongo.client import batched

SOURCE = "mongo"
RAW_SCHEMA = "raw_mongo"
RAW_COLUMNS = ("_id", "doc", "_source_updated_at", "_batch_id")


def raw_table(spec: CollectionSpec) -> RawTable:
    return RawTable(
        RAW_SCHEMA,
        spec.name,
        (
            ("_id", "text not null"),
            ("doc", "jsonb not null"),
            ("_source_updated_at", "timestamptz not null"),
            ("_batch_id", "bigint not null"),
            ("_loaded_at", "timestamptz not null default now()"),
        ),
        indexes=(("_id",), ("_loaded_at",)),
    )


RAW_TABLES = tuple(raw_table(spec) for spec in COLLECTIONS.values())


@dataclass
class LoadResult:
    collection: str
    landed: int = 0
    rejected: int = 0
    batches: int = 0
    seconds: float = 0.0
    watermark: dict | None = None
    unwatermarked: int = 0  # documents the watermark cannot reach (missing write time)
    notes: list[str] = field(default_factory=list)


_STREAM_CHUNK = 256 << 10  # bytes handed to COPY at a time


def _encode(
    spec: CollectionSpec, docs: list[dict], batch_id: int
) -> tuple[list[CopyRow], list[Reject]]:
    rows: list[CopyRow] = []
    rejects: list[Reject] = []
    for doc in docs:
        item = to_copy_row(doc, spec, batch_id)
        (rows if isinstance(item, CopyRow) else rejects).append(item)
    return rows, rejects


def _copy_batch(
    conn: psycopg.Connection, spec: CollectionSpec, docs: list[dict], batch_id: int
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
            for doc in docs:
                item = to_copy_row(doc, spec, batch_id)
                if isinstance(item, Reject):
                    rejects.append(item)
                    continue
                rows.append(item)
                pending.append(item.line)
                size += len(item.line)
                if size >= _STREAM_CHUNK:
                    copy.write(b"".join(pending))
                    pending.clear()
                    size = 0
            if pending:
                copy.write(b"".join(pending))
        return rows, rejects, []
    except psycopg.errors.DataError:
        rows, rejects = _encode(spec, docs, batch_id)
        return rows, rejects, copy_rows(conn, table, RAW_COLUMNS, rows)


def land_documents(
    conn: psycopg.Connection,
    spec: CollectionSpec,
    docs: Iterable[dict],
    *,
    batch_size: int,
    progress: Callable[[LoadResult], None] | None = None,
    max_batches: int | None = None,
) -> LoadResult:
    """Land ``docs`` (in watermark order) in bounded batches, one transaction each.

    Each transaction holds the batch's raw rows, its rejects, its ``loader.batches``
    row and the advanced watermark. The caller holds the stream lock.
    """
    result = LoadResult(spec.name)
    started = time.monotonic()
    for chunk in batched(docs, batch_size):
        with conn.transaction():
            batch_id = open_batch(conn, SOURCE, spec.name)
            rows, rejects, refused = _copy_batch(conn, spec, chunk, batch_id)
            landed = len(rows) - len(refused)
            rejected = write_rejects(conn, batch_id, SOURCE, spec.name, rejects + refused)
            dated = [d for d in chunk if isinstance(d.get(spec.watermark_field), dt.datetime)]
            if dated:
                result.watermark = encode_watermark(dated[-1], spec)
            close_batch(
                conn,
                batch_id,
                SOURCE,
                spec.name,
                landed,
                rejected,
                result.watermark if dated else None,
            )
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
