"""Entry points shared by the CLI, ``make run`` and Airflow: connect from settings, load, reset."""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing

import psycopg
from bson.errors import InvalidBSON
from psycopg import sql
from pymongo.database import Database
from pymongo.errors import PyMongoError

from config import LoaderSettings, WarehouseSettings, advice
from loaders.core.control import (
    Reject,
    ensure_control_tables,
    full_check_due,
    mark_full_check,
    read_watermark,
    stream_lock,
    write_rejects,
)
from loaders.core.raw_tables import ensure_raw_tables
from loaders.core.warehouse import LoaderError, connect, first_line
from loaders.mongo.checks import (
    COLLECTIONS,
    CollectionSpec,
    as_utc,
    decode_document,
    to_copy_row,
    watermark_time,
)
from loaders.mongo.client import mongo_database, prefetch, read_since, unreachable
from loaders.mongo.landing import SOURCE, LoadResult, land_documents, raw_table
from loaders.mongo.settings import MongoSettings
from loaders.raw_tables import ensure_all_raw_tables

STREAMS = tuple(COLLECTIONS)


def print_progress(result: LoadResult) -> None:
    """One stderr line per committed batch, so long loads show they are moving."""
    rate = result.landed / result.seconds if result.seconds else 0.0
    print(
        f"  mongo.{result.collection}: batch {result.batches}, {result.landed:,} landed, "
        f"{result.rejected:,} rejected ({rate:,.0f} docs/s)",
        file=sys.stderr,
        flush=True,
    )


def already_landed(
    conn: psycopg.Connection, spec: CollectionSpec, since: dt.datetime
) -> set[tuple[str, dt.datetime]]:
    """(_id, write time) of every version landed at or after ``since``: the lookback's dedup."""
    query = sql.SQL("select _id, _source_updated_at from {} where _source_updated_at >= %s")
    with conn.cursor() as cur:
        rows = cur.execute(query.format(raw_table(spec).identifier), (since,)).fetchall()
    conn.commit()
    return set(rows)


def _not_landed_yet(
    docs: Iterable, spec: CollectionSpec, landed: set[tuple[str, dt.datetime]], result: LoadResult
) -> Iterator[dict | Reject]:
    """Decoded documents minus the versions already in raw (re-read by the lookback)."""
    for raw in docs:
        item = decode_document(raw)
        if landed and isinstance(item, dict):
            written = item.get(spec.watermark_field)
            if (
                isinstance(written, dt.datetime)
                and (str(item.get("_id")), as_utc(written)) in landed
            ):
                result.skipped += 1
                continue
        yield item


def _reject_unreachable(
    db: Database, conn: psycopg.Connection, spec: CollectionSpec, result: LoadResult
) -> None:
    """Every document no watermark can reach goes to loader.rejects (once per version).

    A scan of the whole collection (a null or wrong-type write time is not a
    range of the write-time index on every server): the caller runs it on
    the LOADER_FULL_CHECK_HOURS schedule, not on every load.
    """
    rejects: list[Reject] = []
    for raw in unreachable(db, spec):
        item = decode_document(raw)
        row = item if isinstance(item, Reject) else to_copy_row(item, spec, 0)
        if isinstance(row, Reject):
            rejects.append(row)
    result.unreachable = len(rejects)
    if rejects:
        with conn.transaction():
            result.rejected += write_rejects(conn, None, SOURCE, spec.name, rejects)
        result.notes.append(
            f"{len(rejects)} document(s) in {spec.name} have no usable {spec.watermark_field} "
            "(missing, null or not a date): they are in loader.rejects and re-checked every run"
        )


def load_collection(
    db: Database,
    conn: psycopg.Connection,
    spec: CollectionSpec,
    *,
    batch_size: int,
    settings: LoaderSettings | None = None,
    now: dt.datetime | None = None,
    progress: Callable[[LoadResult], None] | None = None,
    max_batches: int | None = None,
    create_tables: bool = True,
    full_check: bool | None = None,
) -> LoadResult:
    """Land every document version written since the watermark; returns what was landed.

    Reads re-start ``LOADER_LOOKBACK_SECONDS`` before the watermark, so a write
    committed late with an earlier write time is still read; versions already
    in raw are skipped. Write times further ahead of ``now`` than the tolerance
    are rejected and never move the watermark. ``max_batches`` stops after that
    many committed batches (tests use it to simulate an interrupted load).
    ``full_check``: scan for documents no watermark can reach now (True), never
    (False), or when LOADER_FULL_CHECK_HOURS have passed since the last scan (None).
    """
    started = time.monotonic()
    settings = settings or LoaderSettings.from_env()
    now = now or dt.datetime.now(dt.UTC)
    not_after = now + dt.timedelta(seconds=settings.future_tolerance_seconds)
    if create_tables:  # load_all has created every table already
        ensure_control_tables(conn)
        ensure_raw_tables(conn, [raw_table(spec)])
    with stream_lock(conn, SOURCE, spec.name):
        watermark = read_watermark(conn, SOURCE, spec.name)
        since = watermark_time(watermark)
        if since is not None:
            since -= dt.timedelta(seconds=settings.lookback_seconds)
        landed = already_landed(conn, spec, since) if since is not None else set()
        result = LoadResult(collection=spec.name)
        try:
            # The reader thread stops (and closes its cursor) as soon as the landing does.
            with closing(prefetch(read_since(db, spec, since, batch_size))) as read:
                loaded = land_documents(
                    conn,
                    spec,
                    _not_landed_yet(read, spec, landed, result),
                    batch_size=batch_size,
                    watermark=watermark,
                    not_after=not_after,
                    progress=progress,
                    max_batches=max_batches,
                )
            loaded.skipped = result.skipped
            if full_check is None:
                full_check = full_check_due(conn, SOURCE, spec.name, settings.full_check_hours)
            if full_check:
                _reject_unreachable(db, conn, spec, loaded)
                mark_full_check(conn, SOURCE, spec.name)
                loaded.full_check = True
        except (PyMongoError, InvalidBSON) as exc:
            # InvalidBSON: a reply the driver cannot decode (the documents themselves are
            # read as raw BSON and checked one by one, so this is the batch, not a document).
            raise LoaderError(
                f"MongoDB failed while reading {spec.name}: {first_line(exc)[:200]} "
                f"({advice('mongo', 'MONGO_URI')}); the batches landed before it are kept"
            ) from None
    loaded.seconds = time.monotonic() - started
    return loaded


def load_all(
    collections: Iterable[str] | None = None,
    *,
    batch_size: int | None = None,
    progress: Callable[[LoadResult], None] | None = None,
    full_check: bool | None = None,
) -> list[LoadResult]:
    """Load the named collections (default: all) from the configured servers."""
    names = list(collections or COLLECTIONS)
    size = batch_size or LoaderSettings.from_env().batch_size
    client, db = mongo_database(MongoSettings.from_env())
    try:
        with connect(WarehouseSettings.from_env()) as conn:
            ensure_all_raw_tables(conn)
            return [
                load_collection(
                    db,
                    conn,
                    COLLECTIONS[n],
                    batch_size=size,
                    progress=progress,
                    create_tables=False,
                    full_check=full_check,
                )
                for n in names
            ]
    finally:
        client.close()


def reset_collection(name: str) -> None:
    """Forget a collection's watermark, raw rows and rejects, so the next load starts over.

    Holds the collection's lock (a load running now is not cut off). The
    staging models of the collection then need `make dbt ARGS="build
    --full-refresh -s stg_mongo__<collection>+"`.
    """
    spec = COLLECTIONS[name]
    with connect(WarehouseSettings.from_env()) as conn:
        ensure_control_tables(conn)
        with stream_lock(conn, SOURCE, name), conn.transaction():
            conn.execute(sql.SQL("drop table if exists {}").format(raw_table(spec).identifier))
            for table in ("watermarks", "rejects"):
                conn.execute(
                    sql.SQL("delete from loader.{} where source = %s and stream = %s").format(
                        sql.Identifier(table)
                    ),
                    (SOURCE, name),
                )
