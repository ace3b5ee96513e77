"""Servers that are down or go away mid-load: one line that names the server, never a
traceback or a password, and committed batches stay for the rerun."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import psycopg
import pytest
from psycopg import sql

from config import PROJECT_ROOT
from loaders.core.warehouse import LoaderError
from loaders.oltp.job import load_all, load_table
from tests.conftest import PG_PASSWORD
from tests.loaders.oltp.helpers import raw_rows, seed, source_rows, versions

SECRET = PG_PASSWORD  # the test server's: quotes, a backslash, a space


def _terminate(pg_server, database: str) -> None:
    """Kill the loader's sessions on ``database`` (an admin's pg_terminate_backend)."""
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as admin:
        admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where datname = %s and application_name = 'store-analytics'",
            (database,),
        )


def _kill_after_first_batch(pg_server, database: str):
    calls = {"n": 0}

    def progress(_result) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            _terminate(pg_server, database)

    return progress


@pytest.fixture
def passwords(monkeypatch) -> None:
    """Both servers' passwords set (the same server: the test server's password)."""
    monkeypatch.setenv("OLTP_PASSWORD", SECRET)
    monkeypatch.setenv("WAREHOUSE_PASSWORD", SECRET)


def test_an_unreachable_source_is_one_clear_line(oltp, warehouse, passwords, monkeypatch) -> None:
    monkeypatch.setenv("OLTP_PORT", "1")
    with pytest.raises(LoaderError) as caught:
        load_all()
    message = str(caught.value)
    assert message.startswith(
        f"cannot connect to the order system database at postgresql://postgres@127.0.0.1:1/"
        f"{os.environ['OLTP_DB']}: "
    )
    assert "OLTP_*" in message and "\n" not in message and SECRET not in message


def test_losing_the_source_mid_load_is_one_line_and_committed_batches_stay(
    src, oltp, warehouse, pg_server, passwords
) -> None:
    seed(src, orders=30, details=1)
    progress = _kill_after_first_batch(pg_server, os.environ["OLTP_DB"])
    with pytest.raises(LoaderError) as caught:
        load_table("orders", batch_size=10, progress=progress)
    message = str(caught.value)
    assert message.startswith("lost the connection to the order system database at ")
    assert "while reading orders" in message and "rerun to resume" in message
    assert "\n" not in message and SECRET not in message
    assert sum(versions(warehouse, "orders").values()) == 10  # the committed batch is kept
    assert load_table("orders", batch_size=10).landed == 20
    assert raw_rows(warehouse, "orders") == source_rows(oltp, "orders")


def slow_orders(src: psycopg.Connection, seconds_a_row: float = 0.0005) -> None:
    """Make the source stream orders slowly, so a COPY can be cut mid-way."""
    src.execute("alter table orders rename to orders_data")
    src.execute(
        sql.SQL(
            "create view orders as select o.* from orders_data o where pg_sleep({}) is not null"
        ).format(seconds_a_row)
    )


class CutMidCopy(threading.Thread):
    """Once the loader runs a COPY matching ``query_like`` on ``database`` (and ``ready()``),
    terminate its sessions there; ``cut`` says whether it did."""

    def __init__(self, pg_server, database: str, query_like: str, ready=lambda: True) -> None:
        super().__init__()
        self.pg_server, self.database, self.query_like, self.ready = (
            pg_server, database, query_like, ready
        )  # fmt: skip
        self.cut = False
        self.start()

    def run(self) -> None:
        with psycopg.connect(self.pg_server.conninfo(), autocommit=True) as admin:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                (copying,) = admin.execute(
                    "select count(*) from pg_stat_activity where datname = %s"
                    " and application_name = 'store-analytics' and state = 'active'"
                    " and query like %s",
                    (self.database, self.query_like),
                ).fetchone()
                if copying and self.ready():
                    time.sleep(0.1)
                    _terminate(self.pg_server, self.database)
                    self.cut = True
                    return
                time.sleep(0.005)


def test_losing_the_source_in_the_middle_of_its_copy_is_one_line_too(
    src, oltp, warehouse, pg_server, passwords
) -> None:
    seed(src, orders=1500, details=1)
    slow_orders(src)

    def second_batch() -> bool:
        return sum(versions(warehouse, "orders").values()) > 0

    cutter = CutMidCopy(pg_server, os.environ["OLTP_DB"], "copy (select %", second_batch)
    try:
        with pytest.raises(LoaderError) as caught:
            load_table("orders", batch_size=500)
    finally:
        cutter.join()
    assert cutter.cut
    message = str(caught.value)
    assert message.startswith("lost the connection to the order system database at ")
    assert "while reading orders" in message and "\n" not in message and SECRET not in message
    assert sum(versions(warehouse, "orders").values()) == 500
    assert load_table("orders", batch_size=500).landed == 1000
    assert raw_rows(warehouse, "orders") == source_rows(oltp, "orders")


# What the CLI does with a load's error: print it, exit 1.
CLI_LIKE = """
import sys
from config import PROJECT_ROOT
from loaders.core.warehouse import LoaderError
from loaders.oltp.job import load_table
try:
    load_table("orders", batch_size=int(sys.argv[1]))
except LoaderError as exc:
    print(f"loaders oltp: {exc}", file=sys.stderr)
    sys.exit(1)
"""


@pytest.mark.parametrize(
    ("server", "query_like", "expected"),
    [
        ("WAREHOUSE_DB", "copy %from stdin", "lost the connection to the warehouse at "),
        ("OLTP_DB", "copy (select %", "lost the connection to the order system database at "),
    ],
)
def test_a_connection_cut_mid_copy_prints_one_line_and_nothing_else(
    src, oltp, warehouse, pg_server, passwords, server, query_like, expected
) -> None:
    # One batch of about 360 kB, sent to the warehouse in three writes, cut after the first:
    # the next write fails, and so does psycopg's attempt to end the COPY.
    seed(src, orders=6000, details=1)
    slow_orders(src, 0.0002)
    cutter = CutMidCopy(pg_server, os.environ[server], query_like)
    proc = subprocess.run(
        [sys.executable, "-c", CLI_LIKE, "6000"], cwd=PROJECT_ROOT, capture_output=True,
        text=True,
    )  # fmt: skip
    cutter.join()
    assert cutter.cut and proc.returncode == 1, proc.stderr
    [line] = proc.stderr.splitlines()  # no traceback, no driver warning
    assert line.startswith(f"loaders oltp: {expected}") and SECRET not in line


def test_losing_the_warehouse_mid_load_names_the_warehouse_not_the_source(
    src, oltp, warehouse, pg_server, passwords
) -> None:
    seed(src, orders=30, details=1)
    progress = _kill_after_first_batch(pg_server, os.environ["WAREHOUSE_DB"])
    with pytest.raises(LoaderError) as caught:
        load_table("orders", batch_size=10, progress=progress)
    message = str(caught.value)
    assert message.startswith("lost the connection to the warehouse at ")
    assert "\n" not in message and SECRET not in message
    assert sum(versions(warehouse, "orders").values()) == 10
    assert load_table("orders", batch_size=10).landed == 20


def test_an_unreachable_warehouse_is_one_clear_line(oltp, warehouse, passwords, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_PORT", "1")
    with pytest.raises(LoaderError) as caught:
        load_all()
    message = str(caught.value)
    assert message.startswith(
        "cannot connect to the warehouse at postgresql://postgres@127.0.0.1:1/"
    )
    assert "\n" not in message and SECRET not in message


def test_no_password_in_any_error_even_when_the_driver_quotes_it(
    src, warehouse, passwords, monkeypatch
) -> None:
    # A contract error, and a password the server itself refuses, both in one line, masked.
    src.execute("alter table users drop column email")
    with pytest.raises(LoaderError) as caught:
        load_all()
    assert "lacks column(s) email" in str(caught.value) and SECRET not in str(caught.value)
    monkeypatch.setenv("OLTP_DB", SECRET)  # a database name the server echoes back
    with pytest.raises(LoaderError) as caught:
        load_all()
    message = str(caught.value)
    assert "cannot connect to the order system database" in message
    assert SECRET not in message and "***" in message
