"""Entry points shared by the CLI, ``make run`` and Airflow: land days of feed and messenger events.

- ``load_table_day(table, day)``: one table, one day (Airflow's per-stream task);
- ``load_day(day)`` / ``load_days(first, days)``: both tables, extracted in
  parallel, each in its own thread with its own ClickHouse client
  and warehouse connection;
- ``latest_day()``: the latest day ClickHouse has events of (the CLI's default).

Every load of a day D first re-checks the ``EVENTS_LOOKBACK_DAYS`` days
before it: ClickHouse's rows per day against what the warehouse holds (landed
plus rejected), and reloads every day whose counts differ, e.g. events that
arrived after the day was landed. Days before that window are only loaded
when asked for. The trade-off: a day whose rows changed but whose count did
not (a rewrite with as many rows) is not noticed; reload it by date.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial

import psycopg

from config import LoaderSettings, WarehouseSettings
from loaders.core.control import stream_lock
from loaders.core.warehouse import LoaderError, connect
from loaders.events.client import EventSource, open_source
from loaders.events.landing import (
    SOURCE,
    STREAMS,
    TABLES,
    DayReplaced,
    EventTable,
    LoadResult,
    land_day,
    landed_counts,
)
from loaders.events.settings import ClickHouseSettings
from loaders.raw_tables import ensure_all_raw_tables


def table_specs(tables: Iterable[str] | None) -> list[EventTable]:
    names = set(STREAMS if tables is None else [tables] if isinstance(tables, str) else tables)
    unknown = sorted(names - set(STREAMS))
    if unknown:
        raise LoaderError(
            f"unknown events table(s) {', '.join(unknown)}; the loader lands {', '.join(STREAMS)}"
        )
    return [TABLES[name] for name in STREAMS if name in names]


def prepare_warehouse(conn: psycopg.Connection) -> None:
    # ClickHouse's TSV is UTF-8 bytes (or not: then the warehouse refuses the row).
    conn.execute("set client_encoding to 'UTF8'")
    conn.commit()


def horizon() -> dt.datetime:
    """The latest event time a load takes (``LoaderSettings.horizon``)."""
    return LoaderSettings.from_env().horizon()


def _refuse_future(days: Iterable[dt.date], limit: dt.datetime) -> None:
    future = sorted(d for d in days if d > limit.date())
    if future:
        raise LoaderError(
            f"the events of {future[0]} are not landed: that day has not begun "
            f"(loader clock plus LOADER_FUTURE_TOLERANCE_SECONDS: {limit:%Y-%m-%d %H:%M} UTC)"
        )


def land_source_day(
    source: EventSource,
    conn: psycopg.Connection,
    spec: EventTable,
    day: dt.date,
    limit: dt.datetime,
) -> DayReplaced:
    read = partial(source.read_day, spec, day, horizon=limit)
    return land_day(conn, spec, day, read, last_day=limit.date())


def _reject_note(spec: EventTable, day: dt.date, landed: DayReplaced) -> list[str]:
    if not landed.refused:
        return []
    return [
        f"{spec.name} {day}: {len(landed.refused)} row(s) rejected (in loader.rejects), "
        f"e.g. {landed.refused[0].reason}"
    ]


def _recheck(
    source: EventSource,
    conn: psycopg.Connection,
    spec: EventTable,
    day: dt.date,
    lookback_days: int,
    result: LoadResult,
    limit: dt.datetime,
) -> None:
    """Reload the days before ``day`` in the window whose counts differ from the source's."""
    first = day - dt.timedelta(days=lookback_days)
    window = [first + dt.timedelta(days=k) for k in range(lookback_days)]
    at_source = source.day_counts(spec, first, day, limit)
    held = landed_counts(conn, spec, window)
    for late in window:
        now, before = at_source.get(late, 0), held[late]
        if now == before:
            continue
        if now == 0:
            result.notes.append(
                f"ClickHouse has no {spec.name} rows for {late}; kept the {before:,} landed rows"
            )
            continue
        landed = land_source_day(source, conn, spec, late, limit)
        if landed.batch_id is None:  # emptied at the source between the count and the read
            result.notes.append(
                f"ClickHouse has no {spec.name} rows for {late}; "
                f"kept the {landed.kept:,} landed rows"
            )
            continue
        result.reloaded[late] = landed.landed
        if before == 0:
            why = "not landed before"
        elif now > before:
            why = f"{now - before:,} late event(s)"
        else:
            why = f"{before - now:,} event(s) fewer at the source"
        result.notes.append(f"{spec.name} {late}: {why}, day reloaded")
        result.notes += _reject_note(spec, late, landed)


def load_source_table_day(
    source: EventSource,
    conn: psycopg.Connection,
    spec: EventTable,
    day: dt.date,
    lookback_days: int,
    limit: dt.datetime | None = None,
) -> LoadResult:
    """Under the stream's lock: re-check the lookback window, then replace ``day``.

    The contract has been checked, the raw tables exist and the session is UTF-8.
    ``limit``: the loader's horizon (default: now); a later day is refused.
    """
    started = time.monotonic()
    limit = limit or horizon()
    _refuse_future([day], limit)
    result = LoadResult(table=spec.name, day=day)
    with stream_lock(conn, SOURCE, spec.name):
        if lookback_days > 0:
            _recheck(source, conn, spec, day, lookback_days, result, limit)
        landed = land_source_day(source, conn, spec, day, limit)
    result.batch_id = landed.batch_id
    result.landed, result.rejected = landed.landed, landed.rejected
    if landed.batch_id is None:
        result.notes.append(
            f"ClickHouse has no {spec.name} rows for {day}; kept the {landed.kept:,} landed rows"
        )
    elif landed.landed + landed.rejected == 0:
        result.notes.append(f"ClickHouse has no {spec.name} rows for {day}: landed none")
    result.notes += _reject_note(spec, day, landed)
    result.seconds = time.monotonic() - started
    return result


def _load_table_days(
    spec: EventTable,
    days: list[dt.date],
    lookback_days: int,
    limit: dt.datetime,
    prepared: Future[None],
) -> list[LoadResult]:
    """One table's days in order, on a client and a connection of its own. ClickHouse's
    side is checked while ``prepared`` creates the warehouse's tables."""
    with open_source(ClickHouseSettings.from_env()) as source:
        source.check_contract(spec)
        prepared.result()
        with connect(WarehouseSettings.from_env()) as conn:
            prepare_warehouse(conn)
            return [
                load_source_table_day(source, conn, spec, day, lookback_days, limit) for day in days
            ]


def _prepare() -> None:
    """The control and raw tables, created once before the tables' threads start."""
    with connect(WarehouseSettings.from_env()) as conn:
        ensure_all_raw_tables(conn)


def load_table_day(table: str, day: dt.date) -> LoadResult:
    """One table's ``day`` (and the late days of its lookback window)."""
    [spec] = table_specs([table])
    lookback = LoaderSettings.from_env().events_lookback_days
    limit = horizon()
    _refuse_future([day], limit)
    [[result]] = _in_parallel([spec], [day], lookback, limit)
    return result


def load_days(
    first: dt.date, days: int = 1, tables: Iterable[str] | None = None
) -> list[LoadResult]:
    """``days`` days from ``first`` (a backfill), the tables in parallel; results by day, table.

    Each table's thread lands its days in order. If one table fails, the other
    still finishes (each day commits on its own), then the first error is raised.
    """
    specs = table_specs(tables)
    span = [first + dt.timedelta(days=k) for k in range(max(1, days))]
    lookback = LoaderSettings.from_env().events_lookback_days
    limit = horizon()
    _refuse_future(span, limit)
    per_table = _in_parallel(specs, span, lookback, limit)
    return [r for day in zip(*per_table, strict=True) for r in day]


def _in_parallel(
    specs: list[EventTable], days: list[dt.date], lookback: int, limit: dt.datetime
) -> list[list[LoadResult]]:
    """Each table's days in a thread of its own, beside one creating the warehouse's tables.

    If one table fails, the other still finishes (each day commits on its own), then
    the first error is raised: the warehouse's first, as when it was prepared first.
    """
    with ThreadPoolExecutor(max_workers=len(specs) + 1, thread_name_prefix="events") as pool:
        prepared = pool.submit(_prepare)
        futures = [
            pool.submit(_load_table_days, spec, days, lookback, limit, prepared) for spec in specs
        ]
        errors = [f.exception() for f in (prepared, *futures)]
    for error in errors:
        if error is not None:
            raise error
    return [f.result() for f in futures]


def load_day(day: dt.date, tables: Iterable[str] | None = None) -> list[LoadResult]:
    """Both tables' ``day``, extracted in parallel."""
    return load_days(day, 1, tables)


def latest_day(notes: list[str] | None = None) -> dt.date:
    """The day a default load lands: the latest UTC day with events in either table,
    of the days that have ended. Events stamped after the loader's horizon are left
    out (counted in ``notes``), so one row dated 2100 is never the day landed."""
    settings = ClickHouseSettings.from_env()
    limit = horizon()
    with open_source(settings) as source:
        found = []
        for spec in TABLES.values():
            source.check_contract(spec)
            latest, held = source.latest_day(spec, limit)
            found.append(latest)
            if held and notes is not None:
                notes.append(
                    f"{spec.name}: {held:,} event(s) stamped after {limit:%Y-%m-%d %H:%M} UTC "
                    "(the loader's clock plus LOADER_FUTURE_TOLERANCE_SECONDS) held back"
                )
    days = [d for d in found if d is not None]
    if not days:
        raise LoaderError(
            f"ClickHouse at {settings.describe()} has no events in {' or '.join(STREAMS)} yet; "
            "nothing to land (write some with python -m datagen events, or pass --date)"
        )
    # Today's events are still arriving: a default load lands the last day that ended.
    return min(max(days), limit.date() - dt.timedelta(days=1))
