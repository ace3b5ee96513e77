"""Reconciling the events with ClickHouse over the whole history finds what the loads miss."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from config import PROJECT_ROOT
from datagen.events_writer import write_day
from loaders.__main__ import main
from loaders.events import job
from loaders.events.reconcile import reconcile
from tests.loaders.events.helpers import STREAMS, day, pop, raw_rows, scalar, source_rows

COLUMNS = list(job.TABLES["feed_actions"].column_names)


def feed(at: dt.datetime, post: int, action: str = "view") -> list:
    return [7, post, action, at, "male", 30, "Russia", "Moscow", "iOS", "ads", 1]


def test_late_rows_old_days_and_rewrites_are_relanded(ch, warehouse, monkeypatch, capsys) -> None:
    monkeypatch.setenv("EVENTS_LOOKBACK_DAYS", "1")
    population = pop()
    for n in range(4):
        write_day(ch, population, day(n), incidents=())
    job.load_days(day(0), 4)
    # Late by more than the lookback (day 0, seen from day 3), and a row from 1970.
    late = dt.datetime(2026, 10, 1, 12, 0, 0, tzinfo=dt.UTC)
    ch.insert("feed_actions", [feed(late, 90)] * 3, column_names=COLUMNS)
    epoch = dt.datetime(1970, 1, 1, 0, 0, 5, tzinfo=dt.UTC)
    ch.insert("feed_actions", [feed(epoch, 91)], column_names=COLUMNS)
    # A day rewritten with as many rows: one action changed (a count cannot see it).
    ch.command(
        "ALTER TABLE feed_actions UPDATE action = if(action = 'view', 'like', 'view')"
        " WHERE toDate(time, 'UTC') = '2026-10-02' AND user_id = ("
        " SELECT min(user_id) FROM feed_actions WHERE toDate(time, 'UTC') = '2026-10-02')"
        " SETTINGS mutations_sync = 1"
    )
    # A normal load does not see any of it.
    job.load_day(day(3))
    assert raw_rows(warehouse, "feed_actions", day(0)) != source_rows(ch, "feed_actions", day(0))

    [feed_result, messages] = reconcile()
    assert {d.partition for d in feed_result.differences} == {
        "1970-01-01",
        day(0).isoformat(),
        day(1).isoformat(),
    }
    assert feed_result.relanded == 3 and feed_result.checked == 5
    assert messages.differences == [] and messages.checked == 4
    for on in (dt.date(1970, 1, 1), day(0), day(1), day(2), day(3)):
        assert raw_rows(warehouse, "feed_actions", on) == source_rows(ch, "feed_actions", on)
    recorded = scalar(
        warehouse,
        "select array_agg(differed order by stream) from loader.reconciliations",
    )
    assert recorded == [3, 0]
    # The watermark is the latest day still: a reconciliation never moves it.
    assert scalar(
        warehouse,
        "select value from loader.watermarks where source = 'events' and stream = 'feed_actions'",
    ) == {"increment_date": str(day(3))}

    # Again: everything is equal; the command says so in one line per table.
    assert main(["reconcile", "events"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == [f"reconciled events.{t}" for t in STREAMS]
    assert all("all equal" in line for line in out), out


def test_a_day_with_rejects_is_compared_by_count(ch, warehouse) -> None:
    population = pop()
    write_day(ch, population, day(0), incidents=())
    ch.insert("feed_actions", [feed(dt.datetime(2026, 10, 1, 1, tzinfo=dt.UTC), 5, "share")],
              column_names=COLUMNS)  # fmt: skip
    job.load_day(day(0))
    assert scalar(warehouse, "select count(*) from loader.rejects") == 1
    [feed_result, _] = reconcile()
    assert feed_result.differences == []


def test_sigkill_mid_reconciliation_then_rerun_equals_an_uninterrupted_one(ch, warehouse) -> None:
    population = pop(scale=0.3)
    for n in range(3):
        write_day(ch, population, day(n), incidents=())
    job.load_days(day(0), 3)
    for n in range(3):  # every day gets late rows: three days to reland
        at = dt.datetime.combine(day(n), dt.time(6), dt.UTC)
        ch.insert("feed_actions", [feed(at, 100 + n)] * 2, column_names=COLUMNS)
    with psycopg.connect(warehouse, autocommit=True) as watch:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loaders", "reconcile", "events"],
            cwd=PROJECT_ROOT, env=os.environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        killed = False
        while proc.poll() is None and time.monotonic() < deadline:
            busy = watch.execute(
                "select exists (select from pg_stat_activity where datname = current_database()"
                " and state = 'active' and query ilike 'copy %%raw_events%%')"
            ).fetchone()[0]
            if busy:
                proc.send_signal(signal.SIGKILL)
                killed = True
                break
        proc.wait(timeout=60)
        proc.stderr.close()
    assert killed, "the reconciliation ended before it could be killed"
    reconcile()
    for n in range(3):
        assert raw_rows(warehouse, "feed_actions", day(n)) == source_rows(
            ch, "feed_actions", day(n)
        )


def test_an_unknown_source_is_refused(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["reconcile", "nowhere"])
    assert "no reconciliation for nowhere; choose from events" in capsys.readouterr().err


def test_a_reconciliation_waits_for_a_load_of_the_same_table(ch, warehouse) -> None:
    import threading

    from loaders.core.control import ensure_control_tables, stream_lock

    write_day(ch, pop(), day(0), incidents=())
    job.load_day(day(0))
    with psycopg.connect(warehouse) as held:
        ensure_control_tables(held)
        with stream_lock(held, "events", "feed_actions"):
            done: list = []
            worker = threading.Thread(target=lambda: done.append(reconcile(["feed_actions"])))
            worker.start()
            worker.join(timeout=1.5)
            assert worker.is_alive()  # waiting for the lock, not refused
        worker.join(timeout=60)
    assert done and done[0][0].differences == []


def test_nothing_landed_yet_is_nothing_to_reconcile(clickhouse_db, warehouse) -> None:
    # ClickHouse has no events tables yet, as when Airflow starts before the first load.
    assert reconcile() == []
