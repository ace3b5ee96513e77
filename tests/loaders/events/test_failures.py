"""Servers that are down or fail mid-load: one line naming the server, never a traceback or a
password, and the day in the warehouse is the old one or the new one, never half."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time

import psycopg
import pytest
import urllib3

from config import PROJECT_ROOT
from datagen.events_writer import write_day
from loaders.core.warehouse import LoaderError
from loaders.events.client import EventSource
from loaders.events.job import load_days, load_table_day
from tests.conftest import PG_PASSWORD, free_port
from tests.loaders.events.helpers import batches, day, pop, raw_rows, source_rows

SECRET = PG_PASSWORD  # the test server's: quotes, a backslash, a space


def test_clickhouse_down_is_one_line_from_the_cli(warehouse, clickhouse_db) -> None:
    env = {**os.environ, "CLICKHOUSE_PORT": str(free_port()), "CLICKHOUSE_PASSWORD": SECRET,
           "WAREHOUSE_PASSWORD": SECRET, "EMBEDDED_SERVICES": "none"}  # fmt: skip
    for args in ([], ["--date", "2026-10-01", "--days", "2"]):
        proc = subprocess.run(
            [sys.executable, "-m", "loaders", "events", *args], cwd=PROJECT_ROOT, env=env,
            capture_output=True, text=True,
        )  # fmt: skip
        assert proc.returncode == 1 and proc.stdout == ""
        [line] = proc.stderr.splitlines()  # no traceback, no driver warning
        assert line.startswith(
            f"loaders events: cannot connect to ClickHouse at http://127.0.0.1:"
            f"{env['CLICKHOUSE_PORT']} (user default, database {clickhouse_db.database}): "
            "Connection refused"
        )
        assert SECRET not in line and "CLICKHOUSE_HOST/CLICKHOUSE_PORT" in line


def test_the_warehouse_down_is_one_line(ch, warehouse, monkeypatch) -> None:
    monkeypatch.setenv("WAREHOUSE_PORT", str(free_port()))
    monkeypatch.setenv("WAREHOUSE_PASSWORD", SECRET)
    with pytest.raises(LoaderError) as caught:
        load_days(day(0))
    message = str(caught.value)
    assert message.startswith("cannot connect to the warehouse at postgresql://")
    assert "\n" not in message and SECRET not in message


@pytest.fixture
def landed_then_changed(ch, warehouse):
    """Day 0 landed, then rewritten at the source (other incidents: other rows)."""
    population = pop(scale=0.2)
    write_day(ch, population, day(0), incidents=())
    load_days(day(0))
    before = {t: raw_rows(warehouse, t) for t in ("feed_actions", "message_actions")}
    write_day(ch, pop(scale=0.2, seed=7), day(0), incidents=())  # other users: other rows
    assert source_rows(ch, "feed_actions", day(0)) != before["feed_actions"]
    return before


def _cut_stream(monkeypatch, ch, body) -> None:
    """Make the loader's ClickHouse stream end as ``body(data)`` says (a failure mid-stream)."""
    real = type(ch).raw_stream

    def raw_stream(self, query, *args, **kwargs):
        data = real(self, query, *args, **kwargs).read()
        cut, headers = body(data)
        return urllib3.HTTPResponse(
            body=io.BytesIO(cut), headers=headers, status=200, preload_content=False
        )

    monkeypatch.setattr(type(ch), "raw_stream", raw_stream)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (  # the connection is cut: fewer bytes than announced
            lambda data: (data[: len(data) // 2], {"Content-Length": str(len(data))}),
            "IncompleteRead",
        ),
        (  # the server writes an error into the stream it has started (ClickHouse 25.x)
            lambda data: (
                data[: len(data) // 2] + b"__exception__\r\nTAG\r\nCode: 241. DB::Exception: "
                b"Memory limit exceeded. (version 25.8.1)\r\n60 TAG\r\n__exception__\r\n",
                {"X-ClickHouse-Exception-Tag": "TAG"},
            ),
            "code 241: Memory limit exceeded.",
        ),
        (  # an older server appends it
            lambda data: (data + b"Code: 241. DB::Exception: Memory limit exceeded.\n", {}),
            "code 241: Memory limit exceeded.",
        ),
    ],
    ids=["connection-cut", "tagged-error", "appended-error"],
)
def test_a_stream_that_fails_midway_lands_nothing(
    ch, warehouse, landed_then_changed, body, expected
) -> None:
    n_batches = len(batches(warehouse, "feed_actions"))
    with pytest.MonkeyPatch.context() as mp, pytest.raises(LoaderError) as caught:
        _cut_stream(mp, ch, body)
        load_table_day("feed_actions", day(0))
    message = str(caught.value)
    assert message.startswith("ClickHouse at http://") and "\n" not in message
    assert f"failed while reading feed_actions for {day(0)}: " in message and expected in message
    assert raw_rows(warehouse, "feed_actions") == landed_then_changed["feed_actions"]
    assert len(batches(warehouse, "feed_actions")) == n_batches
    load_table_day("feed_actions", day(0))
    assert raw_rows(warehouse, "feed_actions") == source_rows(ch, "feed_actions", day(0))


def test_losing_the_warehouse_mid_copy_is_one_line_and_keeps_the_old_day(
    ch, warehouse, pg_server, landed_then_changed
) -> None:
    database = os.environ["WAREHOUSE_DB"]
    read_day = EventSource.read_day

    def slow(self, *args, **kwargs):
        for chunk in read_day(self, *args, **kwargs):
            time.sleep(0.05)
            yield chunk

    def cut() -> None:
        with psycopg.connect(pg_server.conninfo(), autocommit=True) as admin:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                (n,) = admin.execute(
                    "select count(*) from pg_stat_progress_copy p join pg_database d"
                    " on d.oid = p.datid where d.datname = %s and p.tuples_processed > 0",
                    (database,),
                ).fetchone()
                if n:
                    admin.execute(
                        "select pg_terminate_backend(pid) from pg_stat_activity"
                        " where datname = %s and application_name = 'store-analytics'",
                        (database,),
                    )
                    return
                time.sleep(0.005)

    cutter = threading.Thread(target=cut)
    cutter.start()
    with pytest.MonkeyPatch.context() as mp, pytest.raises(LoaderError) as caught:
        mp.setattr(EventSource, "read_day", slow)
        load_table_day("feed_actions", day(0))
    cutter.join()
    message = str(caught.value)
    assert message.startswith("lost the connection to the warehouse at postgresql://")
    assert "\n" not in message
    assert raw_rows(warehouse, "feed_actions") == landed_then_changed["feed_actions"]
    load_table_day("feed_actions", day(0))
    assert raw_rows(warehouse, "feed_actions") == source_rows(ch, "feed_actions", day(0))
