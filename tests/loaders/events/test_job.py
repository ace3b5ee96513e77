"""The events loader against the embedded ClickHouse and PostgreSQL: days land exactly,
reruns replace, late events reload their day, and a day the source lost is kept."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from datagen.events_writer import write_day
from loaders.__main__ import main
from loaders.events import job
from loaders.events.job import latest_day, load_day, load_days, load_table_day
from tests.loaders.events.helpers import (
    STREAMS,
    batches,
    day,
    pop,
    raw_rows,
    scalar,
    source_rows,
    watermark,
)


def test_a_day_lands_exactly_both_tables_in_parallel(ch, warehouse, monkeypatch) -> None:
    population = pop()
    counts = write_day(ch, population, day(0), incidents=())
    write_day(ch, population, day(1), incidents=())
    # Both tables' threads must be running at once to pass this barrier.
    barrier = threading.Barrier(len(STREAMS), timeout=20)
    load_table_days = job._load_table_days

    def together(*args):
        barrier.wait()
        return load_table_days(*args)

    monkeypatch.setattr(job, "_load_table_days", together)
    results = load_day(day(0))
    assert [(r.table, r.day) for r in results] == [(t, day(0)) for t in STREAMS]
    for r in results:
        assert r.landed == counts[r.table] > 0 and r.rejected == 0, r
        assert raw_rows(warehouse, r.table) == source_rows(ch, r.table, day(0)), r.table
        assert watermark(warehouse, r.table) == {"increment_date": str(day(0))}
        assert batches(warehouse, r.table) == [(r.landed, 0, {"increment_date": str(day(0))})]
    # Every row's _event_date is its UTC day, and times are the same instants.
    assert (
        scalar(
            warehouse,
            "select count(*) from raw_events.feed_actions"
            " where _event_date <> (time at time zone 'UTC')::date",
        )
        == 0
    )


def test_a_rerun_replaces_the_day_and_the_watermark_never_moves_back(ch, warehouse) -> None:
    population = pop()
    for n in range(3):
        write_day(ch, population, day(n), incidents=())
    load_days(day(0), 3)
    first = {t: raw_rows(warehouse, t) for t in STREAMS}
    assert sum(first["feed_actions"].values()) == sum(
        sum(source_rows(ch, "feed_actions", day(n)).values()) for n in range(3)
    )
    again = load_day(day(2))
    for r in again:
        assert raw_rows(warehouse, r.table) == first[r.table], r.table  # no duplicates
        assert r.reloaded == {} and r.notes == []  # the lookback found nothing to do
        assert batches(warehouse, r.table)[-1] == (
            r.landed, 0, {"increment_date": str(day(2))}
        )  # fmt: skip
    # Reloading an older day replaces it and keeps the watermark at the latest day.
    older = load_table_day("message_actions", day(0))
    assert older.landed == sum(source_rows(ch, "message_actions", day(0)).values())
    assert watermark(warehouse, "message_actions") == {"increment_date": str(day(2))}
    assert batches(warehouse, "message_actions")[-1][2] == {"increment_date": str(day(2))}
    assert raw_rows(warehouse, "message_actions") == first["message_actions"]
    assert len(batches(warehouse, "feed_actions")) == 4
    assert len(batches(warehouse, "message_actions")) == 5


def test_late_events_reload_their_day_within_the_lookback(ch, warehouse, monkeypatch) -> None:
    monkeypatch.setenv("EVENTS_LOOKBACK_DAYS", "2")
    population = pop()
    for n in range(4):
        write_day(ch, population, day(n), incidents=())
    load_days(day(0), 2)
    # Five feed actions of day 0 arrive late; day 0 is two days before day 2 (in the window).
    late = dt.datetime(2026, 10, 1, 23, 59, 58, tzinfo=dt.UTC)
    ch.insert(
        "feed_actions",
        [[7, 8, "view", late, "male", 30, "Russia", "Moscow", "iOS", "ads", 1]] * 5,
        column_names=list(job.TABLES["feed_actions"].column_names),
    )
    [feed, messages] = load_day(day(2))
    assert feed.reloaded == {day(0): sum(source_rows(ch, "feed_actions", day(0)).values())}
    assert f"feed_actions {day(0)}: 5 late event(s), day reloaded" in feed.notes
    assert messages.reloaded == {}
    for on in (day(0), day(1), day(2)):
        assert raw_rows(warehouse, "feed_actions", on) == source_rows(ch, "feed_actions", on)
    assert watermark(warehouse, "feed_actions") == {"increment_date": str(day(2))}

    # Outside the window (EVENTS_LOOKBACK_DAYS=1 from day 3: only day 2): not seen.
    ch.insert(
        "feed_actions",
        [[7, 9, "like", late, "male", 30, "Russia", "Moscow", "iOS", "ads", 1]],
        column_names=list(job.TABLES["feed_actions"].column_names),
    )
    monkeypatch.setenv("EVENTS_LOOKBACK_DAYS", "1")
    [feed, _] = load_day(day(3))
    assert feed.reloaded == {} and feed.notes == []
    assert raw_rows(warehouse, "feed_actions", day(0)) != source_rows(ch, "feed_actions", day(0))


def test_a_day_the_source_lost_is_kept(ch, warehouse) -> None:
    population = pop()
    for n in range(2):
        write_day(ch, population, day(n), incidents=())
    load_days(day(0), 2)
    kept = raw_rows(warehouse, "message_actions", day(0))
    ch.command(f"ALTER TABLE message_actions DROP PARTITION '{day(0)}'")
    ch.command(f"ALTER TABLE message_actions DROP PARTITION '{day(1)}'")
    n_batches = len(batches(warehouse, "message_actions"))
    # As the day loaded (kept, no batch) and as a late day in the window (kept, a note).
    [_, messages] = load_day(day(1))
    assert messages.batch_id is None and messages.landed == 0
    assert messages.notes == [
        f"ClickHouse has no message_actions rows for {day(0)}; kept the {sum(kept.values()):,} "
        "landed rows",
        f"ClickHouse has no message_actions rows for {day(1)}; kept the "
        f"{sum(raw_rows(warehouse, 'message_actions', day(1)).values()):,} landed rows",
    ]
    assert raw_rows(warehouse, "message_actions", day(0)) == kept
    assert len(batches(warehouse, "message_actions")) == n_batches
    # A day with no rows that never landed lands none (a batch of 0).
    empty = load_table_day("message_actions", day(5))
    assert (empty.landed, empty.batch_id is not None) == (0, True)
    assert empty.notes == [f"ClickHouse has no message_actions rows for {day(5)}: landed none"]


def test_the_cli_lands_the_latest_day_by_default(ch, warehouse, capsys) -> None:
    population = pop()
    for n in range(2):
        write_day(ch, population, day(n), incidents=())
    assert latest_day() == day(1)
    assert main(["events"]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["events.feed_actions", str(day(1))],
        ["events.message_actions", str(day(1))],
    ]
    # The lookback landed day 0 too (never landed, in the window), with a note each.
    assert out.err.count("not landed before, day reloaded") == 2
    assert main(["events", "--date", str(day(0)), "--days", "2", "-t", "feed_actions"]) == 0
    assert [line.split()[:2] for line in capsys.readouterr().out.splitlines()] == [
        ["events.feed_actions", str(day(0))],
        ["events.feed_actions", str(day(1))],
    ]


def test_an_empty_clickhouse_has_no_latest_day(ch, warehouse, capsys) -> None:
    from datagen.events_writer import ensure_tables

    ensure_tables(ch)
    assert main(["events"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no events in feed_actions or message_actions" in err


@pytest.mark.parametrize("value", ["-1", "x"])
def test_a_bad_lookback_setting_is_one_line(monkeypatch, capsys, value) -> None:
    monkeypatch.setenv("EVENTS_LOOKBACK_DAYS", value)
    assert main(["events", "--date", str(day(0))]) == 1
    assert "EVENTS_LOOKBACK_DAYS" in capsys.readouterr().err
