"""Raw tables: made together, a renamed schema keeps its rows, a rule is added."""

from __future__ import annotations

import dataclasses

import psycopg

from loaders.core.raw_tables import ensure_raw_tables
from loaders.raw_tables import all_raw_tables, ensure_all_raw_tables


def test_every_source_folder_declares_raw_tables_in_its_own_schema() -> None:
    from pipelines import SOURCES

    schemas = {t.schema for t in all_raw_tables()}
    assert schemas == {f"raw_{s.name}" for s in SOURCES}


def test_a_warehouse_with_the_former_sales_schema_is_moved_not_emptied(warehouse) -> None:
    from loaders.sales_api.landing import RAW_TABLES

    # The warehouse as the last release left it: the sales tables in raw_sales.
    former = [dataclasses.replace(t, schema="raw_sales", former_schemas=()) for t in RAW_TABLES]
    with psycopg.connect(warehouse, autocommit=True) as conn:
        ensure_raw_tables(conn, former)
        conn.execute(
            "insert into raw_sales.user_order_log (_increment_date, _file_name, _row_number,"
            " _batch_id) values ('2026-10-05', 'kept.csv', 1, 7)"
        )
        ensure_all_raw_tables(conn)
        ensure_all_raw_tables(conn)  # and again: nothing left to move, nothing lost
        rows = conn.execute(
            "select _file_name, _batch_id from raw_sales_api.user_order_log"
        ).fetchall()
        gone = conn.execute("select to_regnamespace('raw_sales') is null").fetchone()[0]
        tables = conn.execute(
            "select count(*) from information_schema.tables where table_schema = 'raw_sales_api'"
        ).fetchone()[0]
    assert rows == [("kept.csv", 7)] and gone and tables == len(RAW_TABLES)


def test_a_table_made_before_its_rule_gets_it_for_new_rows_only(warehouse) -> None:
    from loaders.events.landing import RAW_TABLES

    feed = next(t for t in RAW_TABLES if t.name == "feed_actions")
    assert feed.checks  # the rule this test is about
    insert = (
        "insert into raw_events.feed_actions (action, _event_date, _batch_id)"
        " values (%s, '2026-10-01', 1)"
    )
    with psycopg.connect(warehouse, autocommit=True) as conn:
        ensure_raw_tables(conn, [dataclasses.replace(feed, checks=())])  # the last release's
        conn.execute(insert, ("share",))
        for _ in range(2):  # adding it twice is a no-op
            ensure_raw_tables(conn, [feed])
        assert conn.execute("select action from raw_events.feed_actions").fetchall() == [("share",)]
        conn.execute(insert, ("like",))
        try:
            conn.execute(insert, ("share",))
        except psycopg.errors.CheckViolation as exc:
            assert "feed_actions_action_known" in str(exc)
        else:
            raise AssertionError("a row breaking the rule was accepted")


def test_a_table_made_by_an_older_release_gets_the_new_columns_rows_kept(warehouse) -> None:
    orders = next(t for t in all_raw_tables() if t.qualified_name == "raw_oltp.orders")
    older = dataclasses.replace(
        orders, columns=tuple(c for c in orders.columns if not c[0].startswith("_"))
    )
    with psycopg.connect(warehouse) as conn:
        ensure_raw_tables(conn, [older])
        conn.execute("insert into raw_oltp.orders (order_id, _batch_id) values ('1', 1)")
        conn.commit()
        ensure_all_raw_tables(conn)  # this release: the change columns are added in place
        ensure_all_raw_tables(conn)  # and found there the next time
        columns = [
            name
            for (name,) in conn.execute(
                "select column_name from information_schema.columns where table_schema ="
                " 'raw_oltp' and table_name = 'orders' order by ordinal_position"
            )
        ]
        kept = conn.execute("select order_id, _op, _lsn from raw_oltp.orders").fetchall()
    assert columns[-3:] == ["_op", "_lsn", "_seq"]
    assert set(columns) == {name for name, _ in orders.all_columns}
    assert kept == [("1", None, None)]
