"""MongoDB -> PostgreSQL raw landing, incremental by a per-collection watermark.

Each collection lands in ``raw_mongo.<collection>``: one row per document
version, the document as JSONB plus ``_id``, the source write time, the batch
id and ``_loaded_at``. Raw is append-only; dbt staging picks the latest version.

The watermark is the pair (write-time field, ``_id``) of the last landed
document; documents are read in that order with a keyset filter, so equal
timestamps are neither skipped nor re-read. Batches are bounded
(LOADER_BATCH_SIZE) and each commits its rows with the advanced watermark.
"""

from __future__ import annotations

import datetime as dt
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

import orjson
import psycopg
from bson import Decimal128, ObjectId, json_util
from bson.binary import Binary
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
from pymongo.database import Database
from pymongo.errors import PyMongoError

from loaders.warehouse import (
    CopyRow,
    LoaderError,
    Reject,
    close_batch,
    copy_rows,
    copy_statement,
    copy_text,
    ensure_control_tables,
    open_batch,
    read_watermark,
    stream_lock,
    write_rejects,
)

SOURCE = "mongo"
RAW_SCHEMA = "raw_mongo"
RAW_COLUMNS = ("_id", "doc", "_source_updated_at", "_batch_id")


@dataclass(frozen=True)
class CollectionSpec:
    name: str
    watermark_field: str  # the app's write-time field: set on every insert and update


# Every collection of the app database (SPEC.md: all are replicated).
COLLECTIONS: dict[str, CollectionSpec] = {
    spec.name: spec
    for spec in (
        CollectionSpec("user_sessions", "updated_at"),
        CollectionSpec("product_price_history", "updated_at"),
        CollectionSpec("event_logs", "updated_at"),
        CollectionSpec("support_tickets", "updated_at"),
        CollectionSpec("user_recommendations", "last_updated"),
        CollectionSpec("moderation_queue", "updated_at"),
        CollectionSpec("search_queries", "updated_at"),
    )
}


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


# --- documents -> COPY lines ----------------------------------------------------
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _bson_default(value: object) -> object:
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, Decimal128):
        return str(value.to_decimal())
    if isinstance(value, Binary | bytes):
        return json_util.dumps(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


_JSON_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


def encode_document(doc: dict) -> bytes:
    """The document as JSON; naive datetimes from pymongo are UTC."""
    return orjson.dumps(doc, default=_bson_default, option=_JSON_OPTIONS)


def _as_utc(ts: dt.datetime) -> dt.datetime:
    return ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts.astimezone(dt.UTC)


def to_copy_row(doc: dict, spec: CollectionSpec, batch_id: int) -> CopyRow | Reject:
    """One COPY line for a document, or a Reject saying why it cannot be landed.

    This runs once per document and dominates the loader's own CPU time, so it
    stays lean: everything is bytes, and text is decoded only for rejects.
    """
    oid = doc.get("_id")
    written = doc.get(spec.watermark_field)
    if not isinstance(written, dt.datetime):
        return Reject(
            str(oid),
            "invalid",
            f"{spec.watermark_field} is missing or not a date, so no watermark can track it",
            repr(doc)[:100_000],
        )
    version = orjson.dumps(written, option=_JSON_OPTIONS)[1:-1]  # ISO-8601 UTC, 10x isoformat()
    try:
        body = encode_document(doc)
    except (TypeError, orjson.JSONEncodeError) as exc:
        return Reject(
            str(oid), version.decode(), f"not representable as JSON: {exc}", repr(doc)[:100_000]
        )
    if b"\\u0000" in body and _NUL_ESCAPE.search(body):
        return Reject(
            str(oid),
            version.decode(),
            "contains a NUL character (\\u0000), which PostgreSQL jsonb cannot store",
            body.decode(),
        )
    key = str(oid).encode() if isinstance(oid, ObjectId) else copy_text(str(oid))
    escaped = body.replace(b"\\", b"\\\\") if b"\\" in body else body
    return CopyRow(b"%b\t%b\t%b\t%d\n" % (key, escaped, version, batch_id), key, version, body)


# --- watermark ----------------------------------------------------------------
def encode_watermark(doc: dict, spec: CollectionSpec) -> dict:
    return {
        "field": spec.watermark_field,
        "ts": _as_utc(doc[spec.watermark_field]).isoformat(),
        "id": json_util.dumps(doc["_id"]),
    }


def keyset_filter(spec: CollectionSpec, watermark: dict | None) -> dict:
    """Documents strictly after the watermark in (write time, _id) order."""
    f = spec.watermark_field
    if watermark is None:
        return {}  # documents without a valid write time are rejected, visibly
    ts = dt.datetime.fromisoformat(watermark["ts"]).astimezone(dt.UTC).replace(tzinfo=None)
    last_id = json_util.loads(watermark["id"])
    return {"$or": [{f: {"$gt": ts}}, {f: ts, "_id": {"$gt": last_id}}]}


# --- raw tables -----------------------------------------------------------------
def raw_table(spec: CollectionSpec) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(RAW_SCHEMA), sql.Identifier(spec.name))


def ensure_raw_table(conn: psycopg.Connection, spec: CollectionSpec) -> None:
    table = raw_table(spec)
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('loader.ddl'))")
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(RAW_SCHEMA)))
        conn.execute(
            sql.SQL(
                """create table if not exists {} (
                    _id                 text not null,
                    doc                 jsonb not null,
                    _source_updated_at  timestamptz not null,
                    _batch_id           bigint not null,
                    _loaded_at          timestamptz not null default now()
                )"""
            ).format(table)
        )
        for cols in (("_id",), ("_loaded_at",)):
            name = sql.Identifier(f"{spec.name}__{'_'.join(c.strip('_') for c in cols)}_idx")
            conn.execute(
                sql.SQL("create index if not exists {} on {} ({})").format(
                    name, table, sql.SQL(", ").join(map(sql.Identifier, cols))
                )
            )


def _batched(docs: Iterable[dict], size: int) -> Iterator[list[dict]]:
    it = iter(docs)
    while chunk := list(islice(it, size)):
        yield chunk


_DONE = object()


def prefetch(docs: Iterable[dict], chunk: int = 1_000, depth: int = 20) -> Iterator[dict]:
    """Read ``docs`` in a background thread, up to ``depth`` chunks ahead.

    The source server produces the next documents while this process encodes
    and COPYs the current batch (network waits release the GIL). Documents
    cross the queue in chunks to keep the hand-over cheap. Errors in the reader
    are re-raised in the consumer, and the reader stops if the consumer does.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for part in _batched(docs, chunk):
                if not put(part):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer
            put(exc)

    reader = threading.Thread(target=read, name="mongo-prefetch", daemon=True)
    reader.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        reader.join(timeout=5)


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
    conn: psycopg.Connection,
    spec: CollectionSpec,
    table: sql.Composable,
    docs: list[dict],
    batch_id: int,
) -> tuple[list[CopyRow], list[Reject], list[Reject]]:
    """COPY one batch; returns (rows, rejects found while encoding, rows PostgreSQL refused).

    Documents are encoded and streamed in ~1 MB pieces, so PostgreSQL parses
    one piece while Python encodes the next (the two use different cores). If
    PostgreSQL refuses a row, the savepoint rolls the stream back and
    ``copy_rows`` isolates the bad rows.
    """
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
    table = raw_table(spec)
    for chunk in _batched(docs, batch_size):
        with conn.transaction():
            batch_id = open_batch(conn, SOURCE, spec.name)
            rows, rejects, refused = _copy_batch(conn, spec, table, chunk, batch_id)
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


def load_collection(
    db: Database,
    conn: psycopg.Connection,
    spec: CollectionSpec,
    *,
    batch_size: int,
    progress: Callable[[LoadResult], None] | None = None,
    max_batches: int | None = None,
) -> LoadResult:
    """Land every document written since the watermark; returns what was landed.

    ``max_batches`` stops after that many committed batches (used to simulate an
    interrupted load in tests; a rerun picks up where it stopped).
    """
    started = time.monotonic()
    ensure_control_tables(conn)
    ensure_raw_table(conn, spec)
    with stream_lock(conn, SOURCE, spec.name):
        watermark = read_watermark(conn, SOURCE, spec.name)
        collection = db[spec.name]
        try:
            unwatermarked = collection.count_documents({spec.watermark_field: None})
            cursor = collection.find(
                keyset_filter(spec, watermark), batch_size=min(batch_size, 10_000)
            )
            cursor = cursor.sort([(spec.watermark_field, 1), ("_id", 1)])
            result = land_documents(
                conn,
                spec,
                prefetch(cursor),
                batch_size=batch_size,
                progress=progress,
                max_batches=max_batches,
            )
        except PyMongoError as exc:
            raise LoaderError(
                f"MongoDB failed while reading {spec.name}: {str(exc).splitlines()[0][:200]} "
                "(is the server up? run `make up` or fix MONGO_URI)"
            ) from None
    result.watermark = result.watermark or watermark
    result.unwatermarked = unwatermarked
    if unwatermarked:
        result.notes.append(
            f"{unwatermarked} document(s) in {spec.name} have no {spec.watermark_field} "
            "and cannot be loaded incrementally"
        )
    result.seconds = time.monotonic() - started
    return result
