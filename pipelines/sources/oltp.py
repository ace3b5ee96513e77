"""The order system's OLTP PostgreSQL: every table in one snapshot, keyset watermark."""

from __future__ import annotations

import datetime as dt

from loaders.oltp import job as oltp_job
from loaders.oltp.landing import RAW_TABLES
from pipelines.definition import Landed, Source, Step, StepContext
from pipelines.sources._common import simulation


def simulate_orders(day: dt.date) -> dict[str, int] | None:
    """The order system writes ``day`` (and any missing days) and publishes its registrations."""
    import psycopg

    from datagen import oltp_db, registrations
    from loaders.core.warehouse import LoaderError, first_line
    from loaders.kafka.settings import KafkaSettings
    from loaders.oltp.settings import OltpSettings

    gen, population = simulation()
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
    return Landed.of(*oltp_job.load_all(progress=oltp_job.print_progress))


SOURCE = Source(
    name="oltp",
    description="Order system OLTP PostgreSQL -> raw_oltp.* (keyset watermark, COPY to COPY)",
    raw_tables=RAW_TABLES,
    # One task, not one per table: the tables are read in one snapshot.
    steps=(Step("load", load_oltp_tables),),
    daily=False,
    simulate=simulate_orders,
    transform="orders",
    servers=("postgres",),
)
