"""A load SIGKILLed mid-COPY leaves the old day; the rerun leaves exactly what one clean run
leaves (rows, batches' counts, watermarks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter

import psycopg
import pytest
from psycopg import sql

from config import PROJECT_ROOT
from datagen.events_writer import write_day
from loaders.events.job import load_days
from loaders.events.landing import TABLES
from tests.loaders.events.helpers import STREAMS, day, pop, raw_rows, source_rows


def copying(conn: psycopg.Connection) -> bool:
    """Has the loader's COPY into this database started landing rows?"""
    return conn.execute(
        "select exists (select from pg_stat_progress_copy p join pg_database d"
        " on d.oid = p.datid where d.datname = current_database() and p.tuples_processed > 0)"
    ).fetchone()[0]


def kill_mid_copy(warehouse: str, first: str, days: int) -> None:
    with psycopg.connect(warehouse, autocommit=True) as watch:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loaders", "events", "--date", first, "--days", str(days)],
            cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if copying(watch):
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, (
        f"the load ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
    )
    proc.stderr.close()


def state(conninfo: str) -> dict:
    """What a load leaves: raw rows, the counts of their batches, watermarks, rejects."""
    with psycopg.connect(conninfo) as conn:
        control = {
            # The batches that landed the rows raw holds now (a killed run committed none).
            "batches": conn.execute(
                "select stream, rows_landed, rows_rejected, watermark from loader.batches"
                " where batch_id in (select _batch_id from raw_events.feed_actions union"
                " select _batch_id from raw_events.message_actions) order by 1, 2"
            ).fetchall(),
            "watermarks": conn.execute(
                "select source, stream, value from loader.watermarks order by 1, 2"
            ).fetchall(),
            "rejects": conn.execute("select count(*) from loader.rejects").fetchone()[0],
        }
        # Each raw table as a multiset of rows (loader columns left out), hashed server-side.
        rows = {
            table: conn.execute(
                sql.SQL(
                    "select count(*), md5(string_agg(r, e'\\n' order by r collate \"C\"))"
                    " from (select ({})::text as r from {}) t"
                ).format(
                    sql.SQL(", ").join(map(sql.Identifier, TABLES[table].column_names)),
                    sql.Identifier("raw_events", table),
                )
            ).fetchone()
            for table in STREAMS
        }
    return {**rows, **control}


@pytest.fixture
def reference(pg_server, monkeypatch):
    """A second, fresh warehouse for the uninterrupted load."""
    name = f"ref_{uuid.uuid4().hex[:10]}"
    pg_server.ensure_database(name)
    own = os.environ["WAREHOUSE_DB"]

    def clean_load(first, days) -> dict:
        monkeypatch.setenv("WAREHOUSE_DB", name)
        try:
            load_days(first, days)
        finally:
            monkeypatch.setenv("WAREHOUSE_DB", own)
        return state(pg_server.conninfo(name))

    yield clean_load
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def test_sigkill_mid_copy_then_rerun_equals_one_clean_run(ch, warehouse, reference) -> None:
    population = pop(scale=1.0)
    for n in range(2):
        write_day(ch, population, day(n), incidents=())
    expected = reference(day(0), 2)

    kill_mid_copy(warehouse, str(day(0)), 2)  # in the first COPY that moves (day 0)
    load_days(day(0), 2)
    assert state(warehouse) == expected
    assert raw_rows(warehouse, "feed_actions") == sum(
        (source_rows(ch, "feed_actions", day(n)) for n in range(2)), Counter()
    )

    # A reload of a landed day killed mid-COPY keeps the day as it was, whole.
    before = state(warehouse)
    kill_mid_copy(warehouse, str(day(1)), 1)
    assert {t: before[t] for t in STREAMS} == {t: state(warehouse)[t] for t in STREAMS}
    load_days(day(1))
    after = state(warehouse)
    assert {t: after[t] for t in STREAMS} == {t: expected[t] for t in STREAMS}
