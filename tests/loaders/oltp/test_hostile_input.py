"""Hostile source rows and clocks: each row lands once or is rejected with its reason, one bad
row never blocks the others, and no clock can freeze or skip past the watermark."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from psycopg import sql

from loaders.core.warehouse import LoaderError
from loaders.oltp.checks import MIN_CURSOR, TABLES
from loaders.oltp.client import future_query, unreachable_query
from loaders.oltp.job import load_all, load_table
from loaders.oltp.landing import copy_batch, raw_table
from loaders.raw_tables import ensure_all_raw_tables
from tests.loaders.oltp.helpers import (
    T0,
    raw_rows,
    rejects,
    seed,
    source_rows,
    versions,
    watermark,
)

ORDER = "insert into orders values (%s, 1, %s, 'paid', 9.99, %s, %s)"


def stamped(src: psycopg.Connection, order_id: int, updated_at: str) -> None:
    """An order of user 1 whose updated_at is the SQL expression ``updated_at``."""
    src.execute(
        sql.SQL("insert into orders values ({}, 1, now(), 'paid', 1, now(), {})").format(
            order_id, sql.SQL(updated_at)
        )
    )


def test_a_late_commit_behind_the_watermark_lands_once_within_the_lookback(
    src, oltp, warehouse
) -> None:
    seed(src, orders=3, details=1)
    # A long transaction: its row is stamped with the transaction's start (now()) ...
    late = psycopg.connect(oltp)
    late.execute(
        "insert into orders values (100, 1, now(), 'pending', 1, now(), now())"
    )  # not committed yet
    # ... while a later transaction commits a later write time, which a load then follows.
    src.execute("insert into orders values (101, 1, now(), 'paid', 2, now(), now())")
    first = load_table("orders")
    assert first.landed == 4 and 100 not in versions(warehouse, "orders")
    late.commit()  # committed behind the watermark: a strict keyset would never see it
    late.close()
    second = load_table("orders")
    assert (second.landed, second.skipped) == (1, 1)  # the window (101) re-read, 100 landed
    assert versions(warehouse, "orders")[100] == 1
    third = load_table("orders")
    assert (third.landed, third.batches) == (0, 0)  # and a rerun lands nothing
    assert raw_rows(warehouse, "orders") == source_rows(oltp, "orders")


def test_the_lookback_window_bounds_how_late_a_commit_can_be(
    src, oltp, warehouse, monkeypatch
) -> None:
    user = "insert into users values (1, 'A', 'B', 'a@b', null, '2026-01-01', 'gold', %s, %s)"
    src.execute(user, (T0, T0))
    src.execute(ORDER, (1, T0, T0, T0))
    src.execute(ORDER, (2, T0, T0, T0 + dt.timedelta(minutes=30)))
    assert load_table("orders").landed == 2
    # Stamped 20 minutes behind the watermark: inside the default hour.
    src.execute(ORDER, (3, T0, T0, T0 + dt.timedelta(minutes=10)))
    # Stamped 3 hours behind: out of reach of the default window (the documented trade-off) ...
    src.execute(ORDER, (4, T0, T0, T0 - dt.timedelta(hours=3)))
    assert load_table("orders").landed == 1
    assert set(versions(warehouse, "orders")) == {1, 2, 3}
    monkeypatch.setenv("LOADER_LOOKBACK_SECONDS", "0")  # no window: a late row is never read
    src.execute(ORDER, (5, T0, T0, T0 + dt.timedelta(minutes=20)))
    assert load_table("orders").landed == 0
    # ... and a wider window reaches both, each once.
    monkeypatch.setenv("LOADER_LOOKBACK_SECONDS", str(4 * 3600))
    result = load_table("orders")
    assert (result.landed, result.skipped) == (2, 3)
    assert raw_rows(warehouse, "orders") == source_rows(oltp, "orders")


def test_a_future_write_time_is_held_back_then_lands_when_its_time_comes(
    src, oltp, warehouse
) -> None:
    seed(src, orders=2, details=1)
    src.execute(
        "insert into orders values (10, 1, now(), 'paid', 1, now(), now() + interval '1 day')"
    )
    src.execute("insert into orders values (11, 1, now(), 'paid', 1, now(), '9999-12-31')")
    src.execute("insert into orders values (12, 1, now(), 'paid', 1, now(), 'infinity')")
    src.execute(
        "insert into orders values (13, 1, now(), 'paid', 1, now(), now() + interval '60 s')"
    )
    first = load_table("orders")
    assert (first.landed, first.rejected, first.held) == (3, 3, 3)  # 13 is within the tolerance
    assert set(versions(warehouse, "orders")) == {1, 2, 13}
    held = rejects(warehouse, "orders")
    assert set(held) == {"10", "11", "12"}
    assert all("ahead of the source's clock" in reason for _, reason in held.values())
    assert held["12"][0] == "infinity" and held["11"][0].startswith("9999-12-31")
    assert any("held back" in note for note in first.notes)
    assert watermark(warehouse, "orders")["pk"] == 13  # the bad clocks never moved it
    # A row written after the good ones is still followed; the held rows are not rejected twice.
    stamped(src, 14, "now()")
    second = load_table("orders")
    assert (second.landed, second.rejected, second.held) == (1, 0, 3)
    # Its time comes (simulated by the row being stamped now): it lands, once.
    src.execute("update orders set updated_at = now() where order_id in (10, 12)")
    third = load_table("orders")
    assert (third.landed, third.held) == (2, 1)
    assert versions(warehouse, "orders") == {1: 1, 2: 1, 10: 1, 12: 1, 13: 1, 14: 1}
    assert load_table("orders").landed == 0


def test_rows_no_watermark_reaches_are_rejected_once_and_re_checked(src, oltp, warehouse) -> None:
    src.execute("alter table orders alter column updated_at drop not null")  # a laxer real source
    seed(src, orders=3, details=1)
    load_table("orders")  # later loads are incremental: the bad rows are behind nothing
    stamped(src, 20, "null")
    stamped(src, 21, "'-infinity'")
    stamped(src, 22, "'0044-03-15 BC'")
    stamped(src, 23, "now()")
    result = load_table("orders")
    assert (result.landed, result.rejected, result.unreachable) == (1, 3, 3)
    reasons = rejects(warehouse, "orders")
    assert reasons["20"] == ("null", reasons["20"][1]) and "is null" in reasons["20"][1]
    assert reasons["21"][0] == "-infinity" and "before year 1" in reasons["21"][1]
    assert "BC" in reasons["22"][0]
    assert any("no usable updated_at" in note for note in result.notes)
    again = load_table("orders")
    assert (again.landed, again.rejected, again.unreachable) == (0, 0, 3)  # recorded once
    with psycopg.connect(warehouse) as conn:
        payload = conn.execute(
            "select payload from loader.rejects where record_id = '20'"
        ).fetchone()[0]
    assert '"order_id":20' in payload and '"updated_at":null' in payload


@pytest.mark.parametrize("query", [unreachable_query, future_query])
def test_the_reject_queries_are_served_by_the_keyset_index(src, query) -> None:
    src.execute("set enable_seqscan = off")
    plan = "\n".join(
        r[0]
        for r in src.execute(
            sql.SQL("explain {}").format(query(TABLES["orders"])), (MIN_CURSOR,)
        ).fetchall()
    )
    assert "orders__updated_at_idx" in plan and "Seq Scan" not in plan, plan


def test_bytes_a_sql_ascii_source_holds_that_are_not_utf8_are_rejected_row_by_row(
    oltp_encoded, warehouse
) -> None:
    src = oltp_encoded("SQL_ASCII")
    # Latin-1 bytes stored as they came (SQL_ASCII checks nothing), and a literal backslash-zero.
    src.execute(
        "insert into product_categories select g, case g when 4 then E'caf\\xe9'"
        " when 6 then E'nul? \\\\0' else 'c' || g end, %(t)s, %(t)s + g * interval '1 s'"
        " from generate_series(1, 9) g",
        {"t": T0},
    )
    [first] = load_all(["product_categories"], batch_size=5)
    assert (first.landed, first.rejected) == (8, 1)
    reason = rejects(warehouse)["4"][1]
    assert reason.startswith("refused by PostgreSQL: invalid byte sequence for encoding")
    names = {r[0]: r[1] for r in raw_rows(warehouse, "product_categories")}
    assert names["6"] == "nul? \\0" and "4" not in names
    assert watermark(warehouse, "product_categories")["pk"] == 9  # the refused row is passed
    [again] = load_all(["product_categories"], batch_size=5)
    assert (again.landed, again.rejected) == (0, 0)  # re-read in the window, refused once


def test_a_latin1_source_arrives_as_utf8(oltp_encoded, warehouse) -> None:
    src = oltp_encoded("LATIN1")
    src.execute("set client_encoding to 'UTF8'")
    src.execute("insert into product_categories values (1, 'café crème', %s, %s)", (T0, T0))
    [result] = load_all(["product_categories"])
    assert result.landed == 1
    stamp = T0.strftime("%Y-%m-%d %H:%M:%S+00")
    assert raw_rows(warehouse, "product_categories") == {("1", "café crème", stamp, stamp): 1}


def test_a_nul_in_copy_text_is_refused_by_the_warehouse_and_isolated(warehouse) -> None:
    # PostgreSQL's COPY TO never writes one (text cannot hold a NUL, and a backslash is sent
    # doubled), but COPY text decodes \0, \x00 and \000 into NUL: such a line is isolated.
    # Each line: the table's columns, the batch id and the read's LSN.
    spec = TABLES["product_categories"]
    ts = b"2026-10-01 00:00:00+00"
    lines = [
        b"1\tfine\t%b\t%b\t7\t0/1A\n" % (ts, ts),
        b"2\tbad\\0nul\t%b\t%b\t7\t0/1A\n" % (ts, ts),
        b"3\tbad\\x00hex\t%b\t%b\t7\t0/1A\n" % (ts, ts),
        b"4\tliteral \\\\0\t%b\t%b\t7\t0/1A\n" % (ts, ts),
    ]
    with psycopg.connect(warehouse) as conn:
        ensure_all_raw_tables(conn)
        with conn.transaction():
            n, last, refused = copy_batch(
                conn, spec, raw_table(spec).identifier, lambda: (line for line in lines)
            )
        landed = conn.execute(
            "select category_id, name from raw_oltp.product_categories"
        ).fetchall()
    assert (n, last) == (4, lines[-1])
    assert sorted(r.record_id for r in refused) == ["2", "3"]
    assert all("0x00" in r.reason for r in refused)
    assert sorted(landed) == [("1", "fine"), ("4", "literal \\0")]


def test_a_source_table_without_a_contract_column_stops_the_load_naming_it(src, warehouse) -> None:
    seed(src)
    src.execute("alter table orders drop column status")
    with pytest.raises(LoaderError) as caught:
        load_all()
    message = str(caught.value)
    assert "table orders lacks column(s) status" in message and "\n" not in message
    assert "the order system database at postgresql://" in message
    with psycopg.connect(warehouse) as conn:  # checked before anything lands
        assert conn.execute("select to_regclass('loader.batches')").fetchone()[0] is None


def test_a_missing_table_or_a_cursor_of_the_wrong_type_is_one_line(src, warehouse) -> None:
    src.execute("drop table order_details")
    with pytest.raises(LoaderError, match=r"has no table order_details, which the loader"):
        load_all()
    src.execute("alter table orders alter column updated_at type text")
    with pytest.raises(LoaderError, match=r"orders\.updated_at is text, but the watermark"):
        load_table("orders")
