"""The OLTP loader against real PostgreSQL servers: the source database and the warehouse."""

from __future__ import annotations

import datetime as dt
import itertools

import psycopg
import pytest

from loaders.core.warehouse import LoaderError
from loaders.oltp import landing
from loaders.oltp.client import open_source
from loaders.oltp.job import STREAMS, load_all, load_table, reset_table
from loaders.oltp.settings import OltpSettings
from tests.loaders.oltp.helpers import (
    HOSTILE_NAMES,
    T0,
    raw_rows,
    scalar,
    seed,
    source_rows,
    versions,
    watermark,
)


class Interrupted(Exception):
    pass


def stop_after(batches: int):
    """A progress callback that interrupts the load once ``batches`` batches have committed."""
    seen = {"n": 0}

    def progress(_result) -> None:
        seen["n"] += 1
        if seen["n"] >= batches:
            raise Interrupted

    return progress


def test_streams_are_in_foreign_key_order() -> None:
    assert STREAMS == ("product_categories", "products", "users", "orders", "order_details")


def test_first_load_lands_every_row_as_the_source_prints_it(src, oltp, warehouse) -> None:
    seed(src, users=len(HOSTILE_NAMES), orders=12, details=3)
    results = {r.table: r for r in load_all(batch_size=5)}
    for table in STREAMS:
        expected = source_rows(oltp, table)
        assert results[table].landed == sum(expected.values()), table
        assert raw_rows(warehouse, table) == expected, table
    assert results["order_details"].batches == 8  # 36 rows in batches of 5
    # Hostile text survives the COPY text round trip; NULL stays NULL, "\N" stays text.
    names = {r[1] for r in raw_rows(warehouse, "users")}
    assert names == set(HOSTILE_NAMES)
    assert scalar(warehouse, "select count(*) from raw_oltp.users where phone is null") == 4
    # Text as the source session prints it: UTC, ISO.
    assert scalar(warehouse, "select updated_at from raw_oltp.orders where order_id = '1'") == (
        (T0 + dt.timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S+00")
    )
    # The watermark is the last (updated_at, key), to the microsecond.
    assert watermark(warehouse, "users") == {
        "updated_at": (T0 + dt.timedelta(microseconds=7)).isoformat(),
        "pk": 7,
    }
    assert watermark(warehouse, "order_details") == {
        "updated_at": (T0 + dt.timedelta(seconds=12)).isoformat(),
        "pk": 36,
    }
    # Tables load in foreign-key order, and every batch is recorded with its counts.
    with psycopg.connect(warehouse) as conn:
        batches = conn.execute(
            "select stream, sum(rows_landed), min(batch_id), max(batch_id) from loader.batches"
            " where source = 'oltp' group by stream order by min(batch_id)"
        ).fetchall()
        stamped = conn.execute(
            "select count(*) from raw_oltp.orders r join loader.batches b"
            " on b.batch_id = r._batch_id and b.stream = 'orders'"
        ).fetchone()[0]
    assert [b[0] for b in batches] == list(STREAMS)
    assert all(b[2] > prev[3] for prev, b in itertools.pairwise(batches))
    assert {b[0]: b[1] for b in batches} == {t: r.landed for t, r in results.items()}
    assert stamped == 12  # every raw row names the batch that landed it


def test_a_rerun_with_nothing_new_lands_nothing_and_records_no_batch(src, oltp, warehouse) -> None:
    seed(src)
    load_all()
    before = scalar(warehouse, "select count(*) from loader.batches")
    again = load_all()
    assert [(r.landed, r.batches, r.rejected) for r in again] == [(0, 0, 0)] * len(STREAMS)
    assert {r.table: r.skipped for r in again}["orders"] == 10  # re-read in the lookback only
    assert scalar(warehouse, "select count(*) from loader.batches") == before


def test_an_update_lands_a_second_version_and_untouched_rows_are_not_re_landed(
    src, oltp, warehouse
) -> None:
    seed(src)
    load_all()
    # The trigger stamps updated_at with the source's clock: the change is after the watermark.
    src.execute("update orders set status = 'paid' where order_id = 4")
    results = {r.table: r for r in load_all()}
    assert {t: r.landed for t, r in results.items()} == {t: 0 for t in STREAMS} | {"orders": 1}
    assert versions(warehouse, "orders") == {i: 1 for i in range(1, 11)} | {4: 2}
    statuses = {r[3] for r in raw_rows(warehouse, "orders") if r[0] == "4"}
    assert statuses == {"pending", "paid"}
    assert raw_rows(warehouse, "orders") >= source_rows(oltp, "orders")


def test_equal_write_times_across_batch_boundaries_are_neither_skipped_nor_doubled(
    src, warehouse
) -> None:
    src.execute(
        "insert into product_categories select g, 'c' || g, %(t)s, %(t)s"
        " from generate_series(1, 10) g",
        {"t": T0},
    )
    with pytest.raises(Interrupted):
        load_all(["product_categories"], batch_size=3, progress=stop_after(1))
    assert versions(warehouse, "product_categories") == {1: 1, 2: 1, 3: 1}
    assert watermark(warehouse, "product_categories") == {"updated_at": T0.isoformat(), "pk": 3}
    [rest] = load_all(["product_categories"], batch_size=3)
    assert (rest.landed, rest.batches, rest.skipped) == (7, 3, 3)
    assert versions(warehouse, "product_categories") == {i: 1 for i in range(1, 11)}


def test_a_crash_inside_a_batch_rolls_it_back_whole(src, oltp, warehouse, monkeypatch) -> None:
    seed(src, orders=30, details=1)
    calls = {"n": 0}
    real_close = landing.close_batch

    def crash_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash after COPY, before commit")
        return real_close(*args, **kwargs)

    monkeypatch.setattr(landing, "close_batch", crash_on_third)
    with pytest.raises(RuntimeError, match="simulated crash"):
        load_table("orders", batch_size=10)
    assert sum(versions(warehouse, "orders").values()) == 20  # two committed batches, not 30
    assert watermark(warehouse, "orders")["pk"] == 20
    monkeypatch.setattr(landing, "close_batch", real_close)
    result = load_table("orders", batch_size=10)
    assert (result.landed, result.skipped) == (10, 20)
    assert raw_rows(warehouse, "orders") == source_rows(oltp, "orders")


def test_one_snapshot_per_load_keeps_the_tables_consistent(src, oltp, warehouse) -> None:
    seed(src)

    def write_meanwhile(result) -> None:
        if result.table == "product_categories":  # users and orders are not read yet
            src.execute(
                "insert into users values (99, 'New', 'User', 'new@example.com', null,"
                " '2026-01-15', 'gold', now(), now())"
            )
            src.execute("insert into orders values (99, 99, now(), 'paid', 1, now(), now())")

    first = {r.table: r.landed for r in load_all(progress=write_meanwhile)}
    assert (first["users"], first["orders"]) == (5, 10)  # neither the user nor its order
    second = {r.table: r.landed for r in load_all()}
    assert (second["users"], second["orders"]) == (1, 1)  # both, in the next load
    for table in STREAMS:
        assert raw_rows(warehouse, table) == source_rows(oltp, table), table


def test_load_all_takes_names_in_any_order_and_refuses_unknown_ones(src, warehouse) -> None:
    seed(src)
    results = load_all(["order_details", "users"])
    assert [r.table for r in results] == ["users", "order_details"]
    with pytest.raises(LoaderError, match=r"unknown OLTP table\(s\) payments"):
        load_all(["payments"])
    assert load_table("orders").landed == 10


def test_concurrent_load_of_the_same_table_is_refused(src, warehouse) -> None:
    seed(src)
    load_all(["users"])  # creates the control tables
    with psycopg.connect(warehouse) as holder:
        holder.execute("select pg_advisory_lock(hashtext('oltp.orders'))")
        with pytest.raises(LoaderError, match=r"another load of oltp\.orders is running"):
            load_table("orders")


def test_reset_forgets_raw_rows_rejects_and_watermark(src, oltp, warehouse) -> None:
    seed(src)
    src.execute("insert into orders values (50, 1, now(), 'paid', 1, now(), 'infinity')")
    first = load_table("orders")
    assert (first.landed, first.rejected) == (10, 1)
    reset_table("orders")
    assert sum(versions(warehouse, "orders").values()) == 0
    assert watermark(warehouse, "orders") is None
    assert scalar(warehouse, "select count(*) from loader.rejects where stream = 'orders'") == 0
    again = load_table("orders")
    assert (again.landed, again.rejected) == (10, 1)


def test_the_source_session_is_a_read_only_snapshot_in_utc(oltp) -> None:
    with open_source(OltpSettings.from_env()) as source:
        settings = {
            name: source.conn.execute(f"show {name}").fetchone()[0]
            for name in ("transaction_isolation", "transaction_read_only", "timezone", "datestyle")
        }
        with pytest.raises(LoaderError, match="read-only transaction"), source.errors("writing"):
            source.conn.execute("insert into product_categories values (1, 'x')")
    assert settings == {
        "transaction_isolation": "repeatable read",
        "transaction_read_only": "on",
        "timezone": "UTC",
        "datestyle": "ISO, MDY",
    }
