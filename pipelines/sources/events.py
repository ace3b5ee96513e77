"""The feed and messenger events in ClickHouse, a UTC day at a time."""

from __future__ import annotations

import datetime as dt

from loaders.events import job as events_job
from loaders.events.landing import RAW_TABLES
from pipelines.definition import Landed, Source, Step, StepContext
from pipelines.sources._common import simulation


def simulate_events(day: dt.date) -> dict[str, int] | None:
    """The app writes ``day``'s feed and messenger events (and any missing days before it)."""
    from clickhouse_connect.driver.exceptions import ClickHouseError

    from datagen import events_writer
    from loaders.core.warehouse import LoaderError, first_line
    from loaders.events.settings import ClickHouseSettings

    gen, population = simulation()
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
    return Landed.of(events_job.load_table_day(ctx.stream, ctx.day))


SOURCE = Source(
    name="events",
    description="ClickHouse feed and messenger events -> raw_events.* (a UTC day at a time)",
    raw_tables=RAW_TABLES,
    # One task per table: both are extracted in parallel.
    steps=(Step("load", load_event_table, streams=events_job.STREAMS, parallel=True),),
    daily=True,
    simulate=simulate_events,
    # The same models are also built on ClickHouse, from the events in place.
    dbt_targets=("warehouse", "clickhouse"),
    servers=("clickhouse",),
)
