"""Every source, its steps and its raw tables: what ``make run`` and the DAGs both run.

Each step is a thin adapter from a ``StepContext`` to the source's loader
entry points (``loaders.<source>.job``), returning plain data (Airflow passes
it to the next step as an XCom).
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from loaders.mongo import job as mongo_job
from loaders.mongo.landing import RAW_TABLES as MONGO_RAW_TABLES
from loaders.sales_api import job as sales_job
from loaders.sales_api.landing import RAW_TABLES as SALES_RAW_TABLES
from pipelines.definition import Landed, Source, Step, StepContext

# Step details go to the task log in Airflow; make run shows only its summary.
log = logging.getLogger(__name__)


# --- MongoDB app database ----------------------------------------------------------
def simulate_mongo(day: dt.date) -> dict[str, int] | None:
    """The app writes ``day`` (and any missing days before it); None if already written."""
    from pymongo.errors import PyMongoError

    from config import DatagenSettings, MongoSettings
    from datagen.mongo_writer import play_day
    from datagen.population import Population
    from loaders.core.warehouse import LoaderError, first_line
    from loaders.mongo.client import mongo_database

    gen = DatagenSettings.from_env()
    population = Population(gen.seed, gen.scale, dt.date.fromisoformat(gen.start_date))
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
    [r] = mongo_job.load_all([ctx.stream], progress=mongo_job.print_progress)
    table = f"raw_mongo.{r.collection}"
    return Landed({table: {"landed": r.landed, "rejected": r.rejected}}, r.notes).as_dict()


MONGO = Source(
    name="mongo",
    description="MongoDB app database -> raw_mongo.* (incremental by write-time watermark)",
    raw_tables=MONGO_RAW_TABLES,
    steps=(Step("load", load_mongo_collection, streams=mongo_job.STREAMS),),
    daily=False,
    simulate=simulate_mongo,
)


# --- Partner sales API (seed 004) -------------------------------------------------------
def generate_report(ctx: StepContext) -> str:
    return sales_job.request_report()


def get_report(ctx: StepContext) -> tuple[bool, str | None]:
    return sales_job.report_ready(ctx.upstream, wait=ctx.wait)


def get_increment(ctx: StepContext) -> str:
    folder = sales_job.fetch_increment(ctx.upstream, ctx.day)
    log.info("saved the %s increment in %s", ctx.day, folder)
    return str(folder)


def check_files(ctx: StepContext) -> str:
    counts = sales_job.check_folder(Path(ctx.upstream))
    log.info("checked %s: %s", ctx.upstream, counts)
    return ctx.upstream


def load_increment(ctx: StepContext) -> dict:
    r = sales_job.land_folder(Path(ctx.upstream), ctx.day)
    tables = {
        f"raw_sales.{t}": {"landed": n, "rejected": r.rejected.get(t, 0)} for t, n in r.rows.items()
    }
    return Landed(tables, r.notes).as_dict()


SALES_API = Source(
    name="sales_api",
    description="Partner sales API increments -> raw_sales.* (one logical day at a time)",
    raw_tables=SALES_RAW_TABLES,
    steps=(
        Step("generate_report", generate_report),
        Step("get_report", get_report, sensor=True, poke_seconds=10),  # seed 004 polls every 10 s
        Step("get_increment", get_increment),
        Step("check_files", check_files),
        Step("load", load_increment),
    ),
    daily=True,
)

SOURCES: tuple[Source, ...] = (MONGO, SALES_API)
SOURCES_BY_NAME = {s.name: s for s in SOURCES}
