"""Write the simulated app's feed and messenger events into ClickHouse, a day at a time.

The rows are ``datagen.feed_events.day_events``: a pure function of (seed,
scale, start date, day, incidents), so a day can be rewritten at any time and
comes out the same. Three tables in the ``CLICKHOUSE_DB`` database:

- ``feed_actions`` and ``message_actions``, SPEC.md's columns, MergeTree
  partitioned by ``toDate(time)`` (UTC): one partition per logical day, which
  is the unit a rerun replaces and the loader extracts;
- ``datagen_days``: what each day wrote, one row per (day, table), with the
  incidents injected into that table (``Incident.as_dict()`` as a JSON array),
  so tests and the anomaly checks can see what they should flag. It is the
  simulator's own bookkeeping, not part of the app's data.

**A day is written** (``write_day``) in this order:

1. its ``datagen_days`` rows are dropped (``DROP PARTITION``): from here on
   the day counts as not written;
2. for each table: the rows go into a fresh stage table of the same structure
   (``CREATE TABLE ... AS``, ``insert_arrow``), its row count is checked, and
   ``ALTER TABLE ... REPLACE PARTITION <day> FROM <stage>`` swaps the day in:
   readers see the old day or the new one, never an empty or half-written
   day, and no row is ever there twice (a day with no rows for a table drops
   that table's partition instead: ClickHouse refuses to replace from an
   empty source). The stage table is then dropped;
3. its ``datagen_days`` rows are inserted (one insert: both rows or none).

**A crash** (or a lost connection) part-way leaves the day without its
``datagen_days`` rows, with each table holding either its previous version of
the day, or none, or the new one, whole (e.g. a crash between the two tables:
``feed_actions`` new, ``message_actions`` still the old version). Since the day
has no marker, ``days_to_generate`` and ``play_day`` pick it up again, and the
rerun replaces both partitions and writes the marker: the same rows as a
clean run. A process killed between steps 2's create and drop also leaves its
``_stage_*`` table behind; nothing reads it, and it can be dropped at any time.

Writers are not locked against each other (ClickHouse has no such lock): two
writers of the same day still end with one whole copy of each table's day
(each REPLACE swaps in a whole day), but the day's markers may then be
recorded twice, and with different incidents if theirs differed. The
scheduler and ``make run`` write one day at a time.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress

import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.binding import quote_identifier
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from config import advice, redact
from datagen.feed_events import FEED_TABLE, MESSAGE_TABLE, Incident, day_events
from datagen.population import Population
from loaders.events.settings import ClickHouseSettings

MARKERS = "datagen_days"
TABLES = (FEED_TABLE, MESSAGE_TABLE)

# Ids fit UInt32 (the generator's int32), ages and experiment groups UInt8; the
# few-valued strings are LowCardinality. The sort key serves the time-window
# reads (a day's 15-minute slices, the loader's day) and keeps a user's rows of
# a slice together; the partition is the day a rerun replaces.
FEED_DDL = f"""
CREATE TABLE IF NOT EXISTS {FEED_TABLE}
(
    user_id    UInt32,
    post_id    UInt32,
    action     LowCardinality(String) COMMENT 'view | like',
    time       DateTime('UTC'),
    gender     LowCardinality(String),
    age        UInt8,
    country    LowCardinality(String),
    city       LowCardinality(String),
    os         LowCardinality(String),
    source     LowCardinality(String),
    exp_group  UInt8
)
ENGINE = MergeTree
PARTITION BY toDate(time)
ORDER BY (time, user_id)
COMMENT 'Simulated feed actions: one row per view or like of a post'
"""
MESSAGE_DDL = f"""
CREATE TABLE IF NOT EXISTS {MESSAGE_TABLE}
(
    user_id      UInt32 COMMENT 'the sender',
    receiver_id  UInt32,
    time         DateTime('UTC'),
    source       LowCardinality(String),
    exp_group    UInt8,
    gender       LowCardinality(String),
    age          UInt8,
    country      LowCardinality(String),
    city         LowCardinality(String),
    os           LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toDate(time)
ORDER BY (time, user_id)
COMMENT 'Simulated messenger actions: one row per message, the sender''s attributes'
"""
MARKERS_DDL = f"""
CREATE TABLE IF NOT EXISTS {MARKERS}
(
    day         Date,
    table_name  LowCardinality(String) COMMENT 'feed_actions | message_actions',
    rows        UInt64,
    incidents   String COMMENT 'JSON array of Incident.as_dict() injected into this table',
    seed        Int64,
    scale       Float64,
    written_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY day
ORDER BY (day, table_name)
COMMENT 'Days the event simulator wrote (not app data); a day without rows here is not complete'
"""
MARKER_COLUMNS = ("day", "table_name", "rows", "incidents", "seed", "scale")


_SERVER_ERROR = re.compile(r"Code: (\d+)\. DB::Exception: (.*?)(?: \(version |\n|$)")


class ClickHouseUnavailable(RuntimeError):
    """ClickHouse did not answer or refused us; the message is one line, without the password."""


def _reason(exc: BaseException) -> str:
    """The useful part of a clickhouse-connect error, on one line."""
    text = str(exc)
    if found := _SERVER_ERROR.search(text):
        return f"code {found[1]}: {found[2].strip()}"[:200]
    if found := re.search(r"\[Errno -?\d+\] ([^\"')]+)", text):
        return found[1].strip()[:200]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:200] if lines else type(exc).__name__


def unavailable(settings: ClickHouseSettings, exc: BaseException) -> ClickHouseUnavailable:
    """A ``ClickHouseUnavailable`` naming the server, the cause, and what to do."""
    return ClickHouseUnavailable(
        redact(
            f"ClickHouse at {settings.describe()} failed: {_reason(exc)}; "
            + advice("clickhouse", "CLICKHOUSE_HOST/CLICKHOUSE_PORT")
        )
    )


def client(settings: ClickHouseSettings) -> Client:
    """A clickhouse-connect client on ``settings.database``, created first if missing.

    Raises ``ClickHouseUnavailable`` when the server is down or refuses.
    """
    options = {
        "host": settings.host,
        "port": settings.port,
        "username": settings.user,
        "password": settings.password.get_secret_value(),
        "secure": settings.secure,
    }
    try:
        database = quote_identifier(settings.database)
        admin = clickhouse_connect.get_client(**options)
        try:  # asked first: a user may use a database without the right to create one
            if not admin.command(f"EXISTS DATABASE {database}"):
                admin.command(f"CREATE DATABASE IF NOT EXISTS {database}")
        finally:
            admin.close()
        return clickhouse_connect.get_client(**options, database=settings.database)
    except ClickHouseError as exc:
        raise unavailable(settings, exc) from exc


def ensure_tables(client: Client) -> None:
    """Create ``feed_actions``, ``message_actions`` and ``datagen_days`` if they are missing."""
    for ddl in (FEED_DDL, MESSAGE_DDL, MARKERS_DDL):
        client.command(ddl)


def _partition(day: dt.date) -> str:
    return f"'{day.isoformat()}'"  # the partition key is a Date: its literal names the partition


def _replace_day(client: Client, table: str, day: dt.date, rows: pa.Table) -> int:
    """Make ``rows`` the whole of ``day`` in ``table``, in one swap; returns the row count."""
    if rows.num_rows == 0:
        client.command(f"ALTER TABLE {table} DROP PARTITION {_partition(day)}")
        return 0
    stage = f"_stage_{table}_{day:%Y%m%d}_{uuid.uuid4().hex[:8]}"
    client.command(f"CREATE TABLE {stage} AS {table}")
    try:
        client.insert_arrow(stage, rows)
        staged = client.command(f"SELECT count() FROM {stage}")
        if staged != rows.num_rows:
            raise RuntimeError(f"{stage} holds {staged} rows, {rows.num_rows} were inserted")
        client.command(f"ALTER TABLE {table} REPLACE PARTITION {_partition(day)} FROM {stage}")
    finally:
        with suppress(ClickHouseError):  # keep the first error; a leftover stage is harmless
            client.command(f"DROP TABLE IF EXISTS {stage} SYNC")
    return rows.num_rows


def write_day(
    client: Client,
    population: Population,
    day: dt.date,
    incidents: Sequence[Incident] | None = None,
) -> dict[str, int]:
    """Write (or rewrite) ``day``'s events; returns rows per table.

    ``incidents``: None injects ``incidents_for(population, day)``, ``()`` none
    (a clean day), or the given list. A rerun replaces the day whole; see the
    module docstring for what a crash leaves. Any day from the start date on
    can be written, in any order.
    """
    events = day_events(population, day, incidents)  # a bad day or incident fails here
    ensure_tables(client)
    client.command(f"ALTER TABLE {MARKERS} DROP PARTITION {_partition(day)}")
    counts = {
        FEED_TABLE: _replace_day(client, FEED_TABLE, day, events.feed),
        MESSAGE_TABLE: _replace_day(client, MESSAGE_TABLE, day, events.messages),
    }
    markers = [
        (
            day,
            table,
            counts[table],
            json.dumps([i.as_dict() for i in events.incidents if i.applies_to(table)]),
            population.seed,
            population.scale,
        )
        for table in TABLES
    ]
    client.insert(MARKERS, markers, column_names=MARKER_COLUMNS)
    return counts


def write_days(
    client: Client,
    population: Population,
    days: Iterable[dt.date],
    incidents: Sequence[Incident] | None = None,
) -> Iterator[tuple[dt.date, dict[str, int]]]:
    """Write each of ``days`` in turn: (day, rows per table)."""
    for day in days:
        yield day, write_day(client, population, day, incidents)


def _has_markers(client: Client) -> bool:
    return bool(client.command(f"EXISTS TABLE {MARKERS}"))


def generated_days(client: Client) -> list[dt.date]:
    """The days written whole (both tables recorded in ``datagen_days``), oldest first."""
    if not _has_markers(client):
        return []
    rows = client.query(
        f"SELECT day FROM {MARKERS} GROUP BY day HAVING uniqExact(table_name) = {len(TABLES)}"
        " ORDER BY day"
    ).result_rows
    return [row[0] for row in rows]


def recorded_incidents(client: Client, day: dt.date) -> dict[str, list[dict[str, object]]]:
    """The incidents ``datagen_days`` records for ``day``, per table (``{}``: not written)."""
    if not _has_markers(client):
        return {}
    rows = client.query(
        f"SELECT table_name, incidents FROM {MARKERS} WHERE day = {{day:Date}} ORDER BY table_name",
        parameters={"day": day},
    ).result_rows
    return {table: json.loads(incidents) for table, incidents in rows}


def days_to_generate(client: Client, start: dt.date, history_days: int) -> list[dt.date]:
    """First run: ``history_days`` days from ``start``; later runs: the day after the last."""
    done = generated_days(client)
    if not done:
        return [start + dt.timedelta(days=k) for k in range(max(1, history_days))]
    return [done[-1] + dt.timedelta(days=1)]


def play_day(
    client: Client, population: Population, day: dt.date, history_days: int = 7
) -> dict[str, int] | None:
    """Write ``day`` as the app would, for a scheduler's run of that logical date.

    Missing days before ``day`` are written first, at most ``history_days``
    days in all (from the start date on a first run), like the other
    simulators' ``play_day``. Returns rows written per table, or None if
    ``day`` is at or before the last day written (the clock only moves
    forward; ``write_day`` rewrites a past day on purpose).
    """
    if day < population.start_date:
        raise ValueError(f"day {day} is before the simulation start {population.start_date}")
    done = generated_days(client)
    if done and day <= done[-1]:
        return None
    first = done[-1] + dt.timedelta(days=1) if done else population.start_date
    first = max(first, day - dt.timedelta(days=max(1, history_days) - 1))
    span = [first + dt.timedelta(days=k) for k in range((day - first).days + 1)]
    counts = dict.fromkeys(TABLES, 0)
    for _, day_counts in write_days(client, population, span):
        for table, n in day_counts.items():
            counts[table] += n
    return counts
