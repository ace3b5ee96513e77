"""Entry points shared by the CLI and Airflow tasks: connect from settings, load, reset."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable

from psycopg import sql
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from loaders.mongo import (
    COLLECTIONS,
    SOURCE,
    LoadResult,
    load_collection,
    raw_table,
)
from loaders.raw_schemas import ensure_all_raw_tables
from loaders.settings import LoaderSettings, MongoSettings, WarehouseSettings
from loaders.warehouse import LoaderError, connect, ensure_control_tables


def print_progress(result: LoadResult) -> None:
    """One stderr line per committed batch, so long loads show they are moving."""
    rate = result.landed / result.seconds if result.seconds else 0.0
    print(
        f"  mongo.{result.collection}: batch {result.batches}, {result.landed:,} landed, "
        f"{result.rejected:,} rejected ({rate:,.0f} docs/s)",
        file=sys.stderr,
        flush=True,
    )


def mongo_database(settings: MongoSettings):
    """The app database, failing with one line if the server does not answer."""
    client: MongoClient = MongoClient(settings.uri, serverSelectionTimeoutMS=5000)
    try:
        client.admin.command("ping")
    except PyMongoError:
        client.close()
        raise LoaderError(
            f"cannot reach MongoDB at {settings.uri} "
            "(run `make up` for the embedded server, or fix MONGO_URI in .env)"
        ) from None
    return client, client[settings.database]


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
            conn.execute(sql.SQL("drop table if exists {}").format(raw_table(spec)))
            conn.execute(
                "delete from loader.watermarks where source = %s and stream = %s", (SOURCE, name)
            )
