"""The MongoDB app database: its collections, watermark by write time."""

from __future__ import annotations

import datetime as dt

from loaders.mongo import job as mongo_job
from loaders.mongo.landing import RAW_TABLES
from pipelines.definition import Landed, Source, Step, StepContext
from pipelines.sources._common import simulation


def simulate_mongo(day: dt.date) -> dict[str, int] | None:
    """The app writes ``day`` (and any missing days before it); None if already written."""
    from pymongo.errors import PyMongoError

    from datagen.mongo_writer import play_day
    from loaders.core.warehouse import LoaderError, first_line
    from loaders.mongo.client import mongo_database
    from loaders.mongo.settings import MongoSettings

    gen, population = simulation()
    client, db = mongo_database(MongoSettings.from_env())
    try:
        return play_day(db, population, day, gen.history_days)
    except PyMongoError as exc:
        raise LoaderError(
            f"the simulator could not write {day} to MongoDB: {first_line(exc)}"
        ) from None
    finally:
        client.close()


def load_mongo_collection(ctx: StepContext) -> dict:
    assert ctx.stream is not None
    return Landed.of(*mongo_job.load_all([ctx.stream], progress=mongo_job.print_progress))


SOURCE = Source(
    name="mongo",
    description="MongoDB app database -> raw_mongo.* (incremental by write-time watermark)",
    raw_tables=RAW_TABLES,
    steps=(Step("load", load_mongo_collection, streams=mongo_job.STREAMS),),
    daily=False,
    simulate=simulate_mongo,
    servers=("mongo",),
)
