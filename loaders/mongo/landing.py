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
from dataclasses import dataclass, field
from itertools import chain, islice

import psycopg

from loaders.core import result as core
from loaders.core.control import Reject, close_batch, open_batch, write_rejects
from loaders.core.copy import CopyRow, copy_rows, copy_statement
from loaders.core.raw_tables import RawTable
from loaders.mongo.checks import (
    COLLECTIONS,
    CollectionSpec,
    as_utc,
    batch_suffix,
    encode_row,
    encode_watermark,
    naive_utc,
    watermark_time,
)

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
_END = object()


@dataclass
class _Batch:
    """What encoding a batch found. Neither its decoded documents nor a row object per
    document are kept (the garbage collector would walk the former again and again, and
    either costs as much as the encoding): only the pieces of COPY text sent, from which
    the rare fallback rebuilds its rows."""

    pieces: list[bytes] = field(default_factory=list)
    rows: int = 0
    rejects: list[Reject] = field(default_factory=list)
    last: dict | None = None  # the last document whose write time moves the watermark


def _moves_watermark(item: Item, spec: CollectionSpec, limit: dt.datetime | None) -> bool:
    """Whether a rejected document still moves the watermark past it: any with a write
    time the watermark can follow (a date, not ahead of the clock)."""
    if type(item) is Reject:
        return False
    written = item.get(spec.watermark_field)
    if not isinstance(written, dt.datetime):
        return False
    return limit is None or as_utc(written).replace(tzinfo=None) <= limit


def _lines(
    docs: Iterator[Item],
    spec: CollectionSpec,
    suffix: bytes,
    limit: dt.datetime | None,
    batch: _Batch,
) -> Iterator[bytes]:
    """Each document's COPY line, in order; rejects and the watermark go to ``batch``."""
    rejects = batch.rejects
    for item in docs:
        row = item if type(item) is Reject else encode_row(item, spec, suffix, limit)
        if type(row) is tuple:
            batch.last = item
            yield row[0]
        else:
            rejects.append(row)
            if _moves_watermark(item, spec, limit):
                batch.last = item


def _copy_row(line: bytes) -> CopyRow:
    """A line's ``CopyRow`` again: its fields hold no raw tab (orjson escapes them in
    strings, ``copy_text`` in ids), and the body's backslashes were doubled for COPY."""
    key, escaped, version, _ = line.split(b"\t")
    return CopyRow(line, key, version, escaped.replace(b"\\\\", b"\\"))


def _copy_batch(
    conn: psycopg.Connection,
    spec: CollectionSpec,
    docs: Iterator[Item],
    batch_id: int,
    not_after: dt.datetime | None,
) -> tuple[_Batch, list[Reject]]:
    """COPY one batch as its documents arrive; returns it and the rows PostgreSQL refused.

    Each document is encoded as it comes from the reader and sent in pieces, so
    PostgreSQL parses the batch while the source still sends it (and, through the
    socket's buffer, while Python encodes). If PostgreSQL refuses a row, the
    savepoint rolls the stream back and ``copy_rows`` isolates the bad rows.
    """
    table = raw_table(spec).identifier
    suffix, limit = batch_suffix(batch_id), naive_utc(not_after)
    batch = _Batch()
    pending: list[bytes] = []
    try:
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy(copy_statement(table, RAW_COLUMNS)) as copy,
        ):
            size = 0
            for line in _lines(docs, spec, suffix, limit, batch):
                pending.append(line)
                size += len(line)
                if size >= _STREAM_CHUNK:
                    batch.rows += len(pending)
                    batch.pieces.append(piece := b"".join(pending))
                    pending.clear()
                    size = 0
                    copy.write(piece)
            if pending:
                batch.rows += len(pending)
                batch.pieces.append(piece := b"".join(pending))
                pending.clear()
                copy.write(piece)
        return batch, []
    except psycopg.errors.DataError:
        # The rest of the batch too, had PostgreSQL stopped the stream early.
        pending += _lines(docs, spec, suffix, limit, batch)
        batch.rows += len(pending)
        text = b"".join(batch.pieces) + b"".join(pending)
        rows = [_copy_row(line + b"\n") for line in text.split(b"\n")[:-1]]
        return batch, copy_rows(conn, table, RAW_COLUMNS, rows)


def _advance(watermark: dict | None, last: dict | None, spec: CollectionSpec) -> dict | None:
    """The watermark after a batch: at its last document with a usable write time, if later.

    Documents held back for a future write time never move it, and documents
    re-read in the lookback window never move it backwards.
    """
    if last is None:
        return watermark
    current = watermark_time(watermark)
    if current is None or as_utc(last[spec.watermark_field]) >= current:
        return encode_watermark(last, spec)
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
    docs = iter(docs)
    # A batch is opened once its first document has come: a load with nothing new opens none.
    while (first := next(docs, _END)) is not _END:
        with conn.transaction():
            batch_id = open_batch(conn, SOURCE, spec.name)
            batch = chain((first,), islice(docs, batch_size - 1))
            encoded, refused = _copy_batch(conn, spec, batch, batch_id, not_after)
            landed = encoded.rows - len(refused)
            rejected = write_rejects(conn, batch_id, SOURCE, spec.name, encoded.rejects + refused)
            advanced = _advance(result.watermark, encoded.last, spec)
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
