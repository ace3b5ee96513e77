"""Every source, its steps and its raw tables: what ``make run`` and the DAGs both run.

Each step is a thin adapter from a ``StepContext`` to the source's loader
entry points (``loaders.<source>.job``), returning plain data (Airflow passes
it to the next step as an XCom).
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from loaders.events import job as events_job
from loaders.events.landing import RAW_TABLES as EVENTS_RAW_TABLES
from loaders.kafka import job as kafka_job
from loaders.kafka.landing import RAW_TABLES as KAFKA_RAW_TABLES
from loaders.mongo import job as mongo_job
from loaders.mongo.landing import RAW_TABLES as MONGO_RAW_TABLES
from loaders.oltp import job as oltp_job
from loaders.oltp.landing import RAW_TABLES as OLTP_RAW_TABLES
from loaders.sales_api import job as sales_job
from loaders.sales_api.landing import RAW_TABLES as SALES_RAW_TABLES
from pipelines.definition import Landed, Source, Step, StepContext

# Step details go to the task log in Airflow; make run shows only its summary.
log = logging.getLogger(__name__)


# --- MongoDB app database ----------------------------------------------------------
def simulate_mongo(day: dt.date) -> dict[str, int] | None:
    """The app writes ``day`` (and any missing days before it); None if already written."""
    from pymongo.errors import PyMongoError

    from config import DatagenSettings
    from datagen.mongo_writer import play_day
    from datagen.population import Population
    from loaders.core.warehouse import LoaderError, first_line
    from loaders.mongo.client import mongo_database
    from loaders.mongo.settings import MongoSettings

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
    servers=("mongo",),
)


# --- Partner sales API ------------------------------------------------------------------
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
        Step("get_report", get_report, sensor=True, poke_seconds=10),  # polled every 10 s
        Step("get_increment", get_increment),
        Step("check_files", check_files),
        Step("load", load_increment),
    ),
    daily=True,
    servers=("sales_api",),
)


# --- Order system: OLTP PostgreSQL and its Kafka stream of registrations --------------
def simulate_orders(day: dt.date) -> dict[str, int] | None:
    """The order system writes ``day`` (and any missing days) and publishes its registrations."""
    import psycopg

    from config import DatagenSettings
    from datagen import oltp_db, registrations
    from datagen.population import Population
    from loaders.core.warehouse import LoaderError, first_line
    from loaders.kafka.settings import KafkaSettings
    from loaders.oltp.settings import OltpSettings

    gen = DatagenSettings.from_env()
    population = Population(gen.seed, gen.scale, dt.date.fromisoformat(gen.start_date))
    oltp, kafka = OltpSettings.from_env(), KafkaSettings.from_env()
    try:
        with psycopg.connect(oltp.conninfo()) as conn:
            counts = oltp_db.play_day(conn, population, day, gen.history_days)
            written = registrations.publish_days(
                conn, kafka, population, oltp_db.days_up_to(conn, day)
            )
    except psycopg.Error as exc:
        raise LoaderError(
            f"the simulator could not write {day} to the OLTP database at {oltp.describe()}: "
            f"{first_line(exc)}"
        ) from None
    except registrations.KafkaUnavailable as exc:
        raise LoaderError(f"the simulator could not publish registrations: {exc}") from None
    except ValueError as exc:  # the database holds another seed/scale, or a day before the start
        raise LoaderError(f"the order system simulator refused {day}: {exc}") from None
    if counts is None and not written:
        return None
    return {**(counts or {}), **{f"kafka_{k}": v for k, v in written.items()}}


def load_oltp_tables(ctx: StepContext) -> dict:
    """Every table in one source snapshot, so no order lands without its user."""
    results = oltp_job.load_all(progress=oltp_job.print_progress)
    tables = {f"raw_oltp.{r.table}": {"landed": r.landed, "rejected": r.rejected} for r in results}
    return Landed(tables, [n for r in results for n in r.notes]).as_dict()


def load_kafka_topic(ctx: StepContext) -> dict:
    r = kafka_job.load_topic(progress=kafka_job.print_progress)
    lag = sum(r.lag.values())
    notes = [*r.notes, *([f"consumer lag after the load: {lag:,} message(s)"] if lag else [])]
    [raw] = KAFKA_RAW_TABLES
    table = raw.qualified_name
    return Landed({table: {"landed": r.landed, "rejected": r.rejected}}, notes).as_dict()


OLTP = Source(
    name="oltp",
    description="Order system OLTP PostgreSQL -> raw_oltp.* (keyset watermark, COPY to COPY)",
    raw_tables=OLTP_RAW_TABLES,
    # One task, not one per table: the tables are read in one snapshot.
    steps=(Step("load", load_oltp_tables),),
    daily=False,
    simulate=simulate_orders,
    transform="orders",
    servers=("postgres",),
)

KAFKA = Source(
    name="kafka",
    description="Kafka new_users_events -> raw_kafka.new_users_events (offsets in the warehouse)",
    raw_tables=KAFKA_RAW_TABLES,
    steps=(Step("load", load_kafka_topic),),
    daily=False,
    transform="orders",
    servers=("kafka",),
)


# --- Social feed and messenger events: ClickHouse ------------------------------------
def simulate_events(day: dt.date) -> dict[str, int] | None:
    """The app writes ``day``'s feed and messenger events (and any missing days before it)."""
    from clickhouse_connect.driver.exceptions import ClickHouseError

    from config import DatagenSettings
    from datagen import events_writer
    from datagen.population import Population
    from loaders.core.warehouse import LoaderError, first_line
    from loaders.events.settings import ClickHouseSettings

    gen = DatagenSettings.from_env()
    population = Population(gen.seed, gen.scale, dt.date.fromisoformat(gen.start_date))
    try:
        client = events_writer.client(ClickHouseSettings.from_env())
    except events_writer.ClickHouseUnavailable as exc:
        raise LoaderError(f"the events simulator could not reach ClickHouse: {exc}") from None
    try:
        return events_writer.play_day(client, population, day, gen.history_days)
    except ClickHouseError as exc:
        raise LoaderError(
            f"the events simulator could not write {day} to ClickHouse: {first_line(exc)}"
        ) from None
    except ValueError as exc:  # a day before the simulation start
        raise LoaderError(f"the events simulator refused {day}: {exc}") from None
    finally:
        client.close()


def load_event_table(ctx: StepContext) -> dict:
    """The logical day of one event table (and late events of the days before it)."""
    assert ctx.stream is not None
    r = events_job.load_table_day(ctx.stream, ctx.day)
    table = f"raw_events.{ctx.stream}"
    return Landed({table: {"landed": r.landed, "rejected": r.rejected}}, r.notes).as_dict()


EVENTS = Source(
    name="events",
    description="ClickHouse feed and messenger events -> raw_events.* (a UTC day at a time)",
    raw_tables=EVENTS_RAW_TABLES,
    # One task per table: both are extracted in parallel.
    steps=(Step("load", load_event_table, streams=events_job.STREAMS, parallel=True),),
    daily=True,
    simulate=simulate_events,
    # The same models are also built on ClickHouse, from the events in place.
    dbt_targets=("warehouse", "clickhouse"),
    servers=("clickhouse",),
)

SOURCES: tuple[Source, ...] = (MONGO, SALES_API, OLTP, KAFKA, EVENTS)
SOURCES_BY_NAME = {s.name: s for s in SOURCES}

# dbt tags whose models read several sources' models (user_activity: the app's
# sessions and reviews, the order system's orders). Their transform runs once
# every transform it reads from has built, never half-way through one of them.
COMBINED_TRANSFORMS: dict[str, tuple[str, ...]] = {"activity": ("mongo", "orders")}
