"""A load SIGKILLed mid-way, then rerun, leaves exactly what an uninterrupted load leaves."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from config import PROJECT_ROOT
from loaders.oltp.job import STREAMS, load_all
from tests.loaders.oltp.helpers import T0, raw_rows, seed, versions

BATCH = 500


def committed_batches(conn: psycopg.Connection) -> int:
    if conn.execute("select to_regclass('loader.batches')").fetchone()[0] is None:
        return 0
    return conn.execute("select count(*) from loader.batches where source = 'oltp'").fetchone()[0]


def copying(conn: psycopg.Connection) -> bool:
    """Is the loader in the middle of a COPY into the warehouse right now?"""
    return conn.execute(
        "select exists (select from pg_stat_activity where datname = current_database()"
        " and application_name = 'store-analytics' and state = 'active'"
        " and query ilike 'copy %% from stdin')"
    ).fetchone()[0]


def kill_mid_load(warehouse: str, after: int) -> None:
    """Start ``load_all`` in a process and SIGKILL it mid-COPY once ``after`` more batches
    have committed."""
    with psycopg.connect(warehouse, autocommit=True) as watch:
        target = committed_batches(watch) + after
        proc = subprocess.Popen(
            [sys.executable, "-c",
             f"from loaders.oltp.job import load_all; load_all(batch_size={BATCH})"],
            cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if committed_batches(watch) >= target and copying(watch):
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, (
        f"the load ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
    )
    proc.stderr.close()


@pytest.fixture
def reference(pg_server, monkeypatch) -> Iterator:
    """Run a function against a second, fresh warehouse (the uninterrupted load's)."""
    name = f"ref_{uuid.uuid4().hex[:10]}"
    pg_server.ensure_database(name)

    def uninterrupted_load() -> dict:
        own = os.environ["WAREHOUSE_DB"]
        monkeypatch.setenv("WAREHOUSE_DB", name)
        try:
            load_all(batch_size=BATCH)
        finally:
            monkeypatch.setenv("WAREHOUSE_DB", own)
        return {t: raw_rows(pg_server.conninfo(name), t) for t in STREAMS}

    yield uninterrupted_load
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def test_sigkill_mid_load_then_rerun_equals_an_uninterrupted_load(
    src, oltp, warehouse, reference
) -> None:
    seed(src, users=50, orders=4000, details=6)
    expected = reference()
    kill_mid_load(warehouse, after=5)  # in orders
    kill_mid_load(warehouse, after=20)  # in order_details, resumed from the watermark
    load_all(batch_size=BATCH)
    for table in STREAMS:
        assert raw_rows(warehouse, table) == expected[table], table
    assert sum(expected["order_details"].values()) == 24_000

    # An incremental load (a lookback window to re-read, new versions, late rows) killed too.
    src.execute("update order_details set quantity = quantity + 1 where order_detail_id % 2 = 0")
    src.execute("update orders set status = 'paid' where order_id % 3 = 0")
    late = T0 + 4000 * dt.timedelta(seconds=1) - dt.timedelta(minutes=10)  # behind the watermark
    src.execute(
        "insert into orders select g, 1, %(t)s, 'pending', 1, %(t)s, %(t)s"
        " from generate_series(5001, 5100) g",
        {"t": late},
    )
    expected = reference()
    kill_mid_load(warehouse, after=8)
    load_all(batch_size=BATCH)
    for table in STREAMS:
        assert raw_rows(warehouse, table) == expected[table], table
    assert versions(warehouse, "orders")[3] == 2 and versions(warehouse, "orders")[5050] == 1
