"""The feed and messenger events written into ClickHouse, against the embedded server."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from datagen import events_writer
from datagen.__main__ import main
from datagen.events_writer import (
    MARKERS,
    ClickHouseUnavailable,
    days_to_generate,
    generated_days,
    play_day,
    recorded_incidents,
    write_day,
)
from datagen.feed_events import (
    FEED_SCHEMA,
    FEED_TABLE,
    MESSAGE_SCHEMA,
    MESSAGE_TABLE,
    Incident,
    day_events,
    incidents_for,
    midnight,
)
from datagen.population import Population
from loaders.events.settings import ClickHouseSettings
from tests.conftest import free_port

START = dt.date(2026, 10, 1)
SCALE = 0.1
TABLES = (FEED_TABLE, MESSAGE_TABLE)
SCHEMAS = {FEED_TABLE: FEED_SCHEMA, MESSAGE_TABLE: MESSAGE_SCHEMA}


def pop(scale: float = SCALE, seed: int = 42) -> Population:
    return Population(seed=seed, scale=scale, start_date=START)


def day(n: int) -> dt.date:
    return START + dt.timedelta(days=n)


def at(n: int, hh: int, mm: int = 0) -> dt.datetime:
    return midnight(day(n)) + dt.timedelta(hours=hh, minutes=mm)


@pytest.fixture
def settings(clickhouse_db: ClickHouseSettings) -> ClickHouseSettings:
    return clickhouse_db


@pytest.fixture
def ch(settings: ClickHouseSettings) -> Iterator[Client]:
    client = events_writer.client(settings)
    yield client
    client.close()


def stored_rows(client: Client, table: str, d: dt.date) -> list[tuple]:
    """The day's rows in the schema's column order, time as epoch seconds, sorted."""
    columns = [f"toUnixTimestamp({f.name})" if f.name == "time" else f.name for f in SCHEMAS[table]]
    result = client.query(
        f"SELECT {', '.join(columns)} FROM {table} WHERE toDate(time) = {{d:Date}}",
        parameters={"d": d},
    )
    return sorted(result.result_rows)


def generated_rows(rows: pa.Table) -> list[tuple]:
    epoch = pc.cast(rows["time"], pa.int64())
    plain = rows.set_column(rows.schema.get_field_index("time"), "time", epoch)
    return sorted(tuple(r.values()) for r in plain.to_pylist())


def checksum(client: Client, table: str, d: dt.date) -> tuple:
    return client.query(
        f"SELECT count(), sum(user_id), min(time), max(time) FROM {table}"
        " WHERE toDate(time) = {d:Date}",
        parameters={"d": d},
    ).result_rows[0]


def expected_checksum(rows: pa.Table) -> tuple:
    times = pc.min_max(rows["time"])
    return (
        rows.num_rows,
        pc.sum(rows["user_id"]).as_py(),
        times["min"].as_py().replace(tzinfo=None),
        times["max"].as_py().replace(tzinfo=None),
    )


def assert_day_is(client: Client, d: dt.date, events: tuple[pa.Table, pa.Table]) -> None:
    """Both tables hold exactly ``events`` for ``d`` (checksums, then row by row)."""
    for table, rows in zip(TABLES, events, strict=True):
        assert checksum(client, table, d) == expected_checksum(rows), table
        assert stored_rows(client, table, d) == generated_rows(rows), table


def total_rows(client: Client) -> dict[str, int]:
    return {t: client.command(f"SELECT count() FROM {t}") for t in TABLES}


def incidents_by_table(incidents: tuple[Incident, ...]) -> dict[str, list[dict]]:
    return {t: [i.as_dict() for i in incidents if i.applies_to(t)] for t in TABLES}


def test_tables_are_typed_partitioned_by_day_and_ordered_by_time(ch: Client) -> None:
    events_writer.ensure_tables(ch)
    events_writer.ensure_tables(ch)  # again: nothing changes
    columns = dict(
        ch.query(
            "SELECT name, type FROM system.columns"
            " WHERE database = currentDatabase() AND table = 'feed_actions' ORDER BY position"
        ).result_rows
    )
    assert columns == {
        "user_id": "UInt32",
        "post_id": "UInt32",
        "action": "LowCardinality(String)",
        "time": "DateTime('UTC')",
        "gender": "LowCardinality(String)",
        "age": "UInt8",
        "country": "LowCardinality(String)",
        "city": "LowCardinality(String)",
        "os": "LowCardinality(String)",
        "source": "LowCardinality(String)",
        "exp_group": "UInt8",
    }
    message_columns = ch.query(
        "SELECT name FROM system.columns"
        " WHERE database = currentDatabase() AND table = 'message_actions' ORDER BY position"
    ).result_rows
    assert [name for (name,) in message_columns] == MESSAGE_SCHEMA.names
    keys = ch.query(
        "SELECT name, engine, partition_key, sorting_key FROM system.tables"
        " WHERE database = currentDatabase() ORDER BY name"
    ).result_rows
    assert keys == [
        (MARKERS, "MergeTree", "day", "day, table_name"),
        (FEED_TABLE, "MergeTree", "toDate(time)", "time, user_id"),
        (MESSAGE_TABLE, "MergeTree", "toDate(time)", "time, user_id"),
    ]


def test_a_day_written_holds_exactly_the_generators_rows(ch: Client) -> None:
    population = pop()
    events = day_events(population, day(1))
    counts = write_day(ch, population, day(1))
    assert counts == {FEED_TABLE: events.feed.num_rows, MESSAGE_TABLE: events.messages.num_rows}
    assert_day_is(ch, day(1), events[:2])
    for table in TABLES:  # every row inside its day
        _, _, first, last = checksum(ch, table, day(1))
        assert midnight(day(1)).replace(tzinfo=None) <= first <= last
        assert last < midnight(day(2)).replace(tzinfo=None)
    assert total_rows(ch) == counts
    assert generated_days(ch) == [day(1)]


def test_rewriting_a_day_leaves_the_same_rows(ch: Client) -> None:
    population = pop()
    events = day_events(population, day(1))
    first = write_day(ch, population, day(1))
    assert write_day(ch, population, day(1)) == first
    assert total_rows(ch) == first  # no duplicates
    assert_day_is(ch, day(1), events[:2])
    assert ch.command(f"SELECT count() FROM {MARKERS}") == len(TABLES)  # one marker per table
    tables = {name for (name,) in ch.query("SHOW TABLES").result_rows}
    assert tables == {MARKERS, *TABLES}  # no stage table left behind


def test_two_days_then_a_rerun_of_the_first(ch: Client) -> None:
    population = pop()
    drop = (Incident.likes_drop(at(1, 18), factor=0.0, minutes=60),)
    write_day(ch, population, day(1), incidents=())
    write_day(ch, population, day(2))
    second = day_events(population, day(2))
    before = ch.query(f"SELECT * FROM {FEED_TABLE} WHERE toDate(time) = '{day(2)}'").result_rows

    write_day(ch, population, day(1), incidents=drop)  # the rerun changes the day
    rerun = day_events(population, day(1), drop)
    clean = day_events(population, day(1), ())
    assert rerun.feed.num_rows < clean.feed.num_rows
    assert_day_is(ch, day(1), rerun[:2])
    assert_day_is(ch, day(2), second[:2])
    after = ch.query(f"SELECT * FROM {FEED_TABLE} WHERE toDate(time) = '{day(2)}'").result_rows
    assert after == before  # the other day untouched
    assert total_rows(ch) == {
        FEED_TABLE: rerun.feed.num_rows + second.feed.num_rows,
        MESSAGE_TABLE: rerun.messages.num_rows + second.messages.num_rows,
    }
    partitions = ch.query(
        "SELECT DISTINCT table, partition FROM system.parts"
        " WHERE database = currentDatabase() AND active ORDER BY table, partition"
    ).result_rows
    assert partitions == [
        (table, str(d)) for table in sorted((MARKERS, *TABLES)) for d in (day(1), day(2))
    ]
    assert recorded_incidents(ch, day(1)) == incidents_by_table(drop)
    assert generated_days(ch) == [day(1), day(2)]


def test_incidents_recorded_are_the_generators(ch: Client) -> None:
    population = pop()
    seeded = next(d for d in map(day, range(30)) if incidents_for(population, d))
    write_day(ch, population, seeded)
    assert recorded_incidents(ch, seeded) == incidents_by_table(incidents_for(population, seeded))

    chosen = (
        Incident.os_outage(at(2, 12), os="Android"),  # both tables
        Incident.messages_spike(at(2, 19, 15), factor=4.0),
        Incident.likes_drop(at(2, 20), factor=0.3, gender="female"),
    )
    write_day(ch, population, day(2), incidents=chosen)
    recorded = recorded_incidents(ch, day(2))
    assert recorded == incidents_by_table(chosen)
    assert [i["kind"] for i in recorded[FEED_TABLE]] == ["os_outage", "likes_drop"]
    assert [i["kind"] for i in recorded[MESSAGE_TABLE]] == ["os_outage", "messages_spike"]
    marked = ch.query(f"SELECT table_name, rows FROM {MARKERS} WHERE day = '{day(2)}'")
    rows = dict(marked.result_rows)
    assert rows == {t: rows_on(ch, t, day(2)) for t in TABLES}

    write_day(ch, population, day(2), incidents=())  # a clean rerun records none
    assert recorded_incidents(ch, day(2)) == {FEED_TABLE: [], MESSAGE_TABLE: []}
    assert recorded_incidents(ch, day(9)) == {}


def test_a_day_without_rows_empties_its_partitions(ch: Client) -> None:
    population = pop()
    write_day(ch, population, day(1))
    write_day(ch, population, day(2))
    everyone_out = tuple(
        Incident.os_outage(midnight(day(1)), os=os, minutes=24 * 60) for os in ("iOS", "Android")
    )
    assert write_day(ch, population, day(1), incidents=everyone_out) == dict.fromkeys(TABLES, 0)
    assert {t: rows_on(ch, t, day(1)) for t in TABLES} == dict.fromkeys(TABLES, 0)
    assert {t: rows_on(ch, t, day(2)) for t in TABLES} == write_day(ch, population, day(2))
    assert generated_days(ch) == [day(1), day(2)]
    assert recorded_incidents(ch, day(1)) == incidents_by_table(everyone_out)


def rows_on(client: Client, table: str, d: dt.date) -> int:
    return client.command(f"SELECT count() FROM {table} WHERE toDate(time) = '{d}'")


def test_a_crash_between_the_tables_is_repaired_by_the_rerun(
    ch: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    population = pop()
    spike = (Incident.messages_spike(at(1, 18), factor=5.0),)
    write_day(ch, population, day(1), incidents=())
    replace = events_writer._replace_day

    def crash_on_messages(client: Client, table: str, d: dt.date, rows: pa.Table) -> int:
        if table == MESSAGE_TABLE:
            raise ConnectionError("the writer died here")
        return replace(client, table, d, rows)

    monkeypatch.setattr(events_writer, "_replace_day", crash_on_messages)
    with pytest.raises(ConnectionError):
        write_day(ch, population, day(1), incidents=spike)
    # The day is not complete: no marker; each table holds one whole version of it.
    assert generated_days(ch) == []
    assert days_to_generate(ch, START, 7) == [day(k) for k in range(7)]
    clean = day_events(population, day(1), ())
    assert rows_on(ch, MESSAGE_TABLE, day(1)) == clean.messages.num_rows

    monkeypatch.setattr(events_writer, "_replace_day", replace)
    write_day(ch, population, day(1), incidents=spike)
    assert_day_is(ch, day(1), day_events(population, day(1), spike)[:2])
    assert generated_days(ch) == [day(1)]


def test_play_day_writes_the_history_then_the_missing_days(ch: Client) -> None:
    population = pop(scale=0.05)
    assert days_to_generate(ch, START, 3) == [day(0), day(1), day(2)]
    first = play_day(ch, population, day(2), history_days=3)
    assert generated_days(ch) == [day(0), day(1), day(2)]
    assert first == total_rows(ch)
    assert days_to_generate(ch, START, 3) == [day(3)]
    assert play_day(ch, population, day(2), history_days=3) is None  # already written
    assert play_day(ch, population, day(1), history_days=3) is None  # behind the clock
    later = play_day(ch, population, day(4), history_days=3)  # day 3 is missing: written first
    assert generated_days(ch) == [day(k) for k in range(5)]
    assert later == {
        t: sum(rows_on(ch, t, d) for d in (day(3), day(4))) for t in (FEED_TABLE, MESSAGE_TABLE)
    }
    with pytest.raises(ValueError, match="before the simulation start"):
        play_day(ch, population, day(-1))


def test_play_day_starting_late_writes_at_most_the_history(ch: Client) -> None:
    play_day(ch, pop(scale=0.05), day(10), history_days=2)
    assert generated_days(ch) == [day(9), day(10)]


LINE = re.compile(
    r"datagen events (\S+): (\d+) rows \(feed_actions=(\d+), message_actions=(\d+)\);"
    r" incidents: (.+)"
)


def test_cli_prints_one_line_per_day(
    settings: ClickHouseSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    env = {"DATAGEN_SEED": "42", "DATAGEN_SCALE": "0.05", "DATAGEN_START_DATE": str(START)}
    for name, value in (env | {"DATAGEN_HISTORY_DAYS": "3"}).items():
        monkeypatch.setenv(name, value)
    population = pop(scale=0.05)
    assert main(["events"]) == 0  # the first run: the history days
    lines = capsys.readouterr().out.splitlines()
    assert [LINE.fullmatch(line)[1] for line in lines] == [str(day(k)) for k in range(3)]
    for line in lines:
        found = LINE.fullmatch(line)
        events = day_events(population, dt.date.fromisoformat(found[1]))
        feed, messages = events.feed.num_rows, events.messages.num_rows
        assert [int(n) for n in found.groups()[1:4]] == [feed + messages, feed, messages]
        assert (found[5] == "none") == (not events.incidents)
    assert "os_outage 19:00+60min x0 os=iOS (all)" in lines[1]  # seed 42's day 2

    assert main(["events"]) == 0  # the next day
    assert capsys.readouterr().out.startswith(f"datagen events {day(3)}: ")
    assert main(["events", "--date", str(day(1)), "--days", "2", "--clean"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [LINE.fullmatch(line)[1] for line in lines] == [str(day(1)), str(day(2))]
    assert all(line.endswith("incidents: none") for line in lines)
    with events_writer.client(settings) as client:
        assert recorded_incidents(client, day(1)) == {FEED_TABLE: [], MESSAGE_TABLE: []}
        assert generated_days(client) == [day(k) for k in range(4)]

    assert main(["events", "--date", "2026-09-30"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"datagen: day 2026-09-30 is before the simulation start {START}"
    )


def test_cli_says_one_line_when_clickhouse_is_down(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv("CLICKHOUSE_HOST", "127.0.0.1")
    monkeypatch.setenv("CLICKHOUSE_PORT", str(port))
    monkeypatch.setenv("CLICKHOUSE_PASSWORD", "s3cret-pw")
    monkeypatch.setenv("CLICKHOUSE_DB", "events")
    assert main(["events"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(
        f"datagen: ClickHouse at http://127.0.0.1:{port} (user default, database events) failed: "
    )
    assert "Connection refused" in captured.err
    assert "CLICKHOUSE_HOST/CLICKHOUSE_PORT" in captured.err
    assert "s3cret-pw" not in captured.err
    assert "Traceback" not in captured.err
    with pytest.raises(ClickHouseUnavailable, match="Connection refused"):
        events_writer.client(ClickHouseSettings.from_env())


def test_a_refusal_is_one_line_with_the_servers_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLICKHOUSE_PASSWORD", "s3cret-pw")
    settings = ClickHouseSettings.from_env()
    refused = DatabaseError(
        "Received ClickHouse exception, code: 516, server response: Code: 516. DB::Exception: "
        "default: Authentication failed: password is incorrect, or there is no user with such "
        "name. (AUTHENTICATION_FAILED) (version 26.9.2.1) (for url http://x:8123?password=s3cret-pw)"
    )
    message = str(events_writer.unavailable(settings, refused))
    assert "\n" not in message
    assert message.startswith(f"ClickHouse at {settings.describe()} failed: code 516: default: ")
    assert "(AUTHENTICATION_FAILED);" in message
    assert "version" not in message and "s3cret-pw" not in message


def test_time_to_write_one_day_at_scale_one(ch: Client) -> None:
    population = pop(scale=1.0)
    started = time.perf_counter()
    events = day_events(population, day(1))
    generated = time.perf_counter()
    counts = write_day(ch, population, day(1), incidents=events.incidents)
    done = time.perf_counter()
    assert counts == {FEED_TABLE: events.feed.num_rows, MESSAGE_TABLE: events.messages.num_rows}
    print(
        f"\nscale 1.0, one day: {sum(counts.values()):,} rows; generated in "
        f"{generated - started:.2f}s, written (generated again, stage, replace) in "
        f"{done - generated:.2f}s"
    )
