"""Every source's raw tables are created together, and a renamed schema keeps its rows."""

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
