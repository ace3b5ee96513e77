"""Entry points shared by the CLI, ``make run`` and Airflow: connect from settings, load, reset."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable

import psycopg
from psycopg import sql
from pymongo.database import Database
from pymongo.errors import PyMongoError

from config import LoaderSettings, MongoSettings, WarehouseSettings, advice
from loaders.core.control import ensure_control_tables, read_watermark, stream_lock
from loaders.core.raw_tables import ensure_raw_tables
from loaders.core.warehouse import LoaderError, connect, first_line
from loaders.mongo.checks import COLLECTIONS, CollectionSpec
from loaders.mongo.client import keyset_filter, mongo_database, prefetch
from loaders.mongo.landing import SOURCE, LoadResult, land_documents, raw_table
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
    ensure_raw_tables(conn, [raw_table(spec)])
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
                f"MongoDB failed while reading {spec.name}: {first_line(exc)[:200]} "
                f"({advice('mongo', 'MONGO_URI')})"
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


def load_all(
    collections: Iterable[str] | None = None,
    *,
    batch_size: int | None = None,
    progress: Callable[[LoadResult], None] | None = None,
) -> list[LoadResult]:
    """Load the named collections (default: all) from the configured servers."""
    names = list(collections or COLLECTIONS)
    size = batch_size or LoaderSettings.from_env().batch_size
    client, db = mongo_database(MongoSettings.from_env())
    try:
        with connect(WarehouseSettings.from_env()) as conn:
            ensure_all_raw_tables(conn)
            return [
                load_collection(db, conn, COLLECTIONS[n], batch_size=size, progress=progress)
                for n in names
            ]
    finally:
        client.close()


def reset_collection(name: str) -> None:
    """Forget a collection's watermark and raw rows, so the next load starts over."""
    spec = COLLECTIONS[name]
    with connect(WarehouseSettings.from_env()) as conn:
        ensure_control_tables(conn)
        with conn.transaction():
            conn.execute(sql.SQL("drop table if exists {}").format(raw_table(spec).identifier))
            conn.execute(
                "delete from loader.watermarks where source = %s and stream = %s", (SOURCE, name)
            )
