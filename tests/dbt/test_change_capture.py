"""Changes a write-time watermark misses reach staging, the marts and the snapshots.

The order system's database is changed with SQL, the real loader captures the
changes from its slot (OLTP_CAPTURE=cdc), and a real `dbt build` of the order
pipeline runs: the first build full, the next ones incremental, with the
snapshots reading only new batches, as `make run`'s daily builds do. After
each, every staging model holds exactly the source's rows, and the marts and
snapshots follow.
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from config import WarehouseSettings
from loaders.oltp.job import load_all
from stack import dbt_state
from stack.dbt_build import run_dbt
from stack.dbt_state import dbt_scope, warehouse_now
from tests.dbt.conftest import rows
from tests.loaders.oltp.helpers import seed

# staging model -> (its key, the source query giving the same columns as text)
STAGING = {
    "stg_oltp__orders": (
        "order_id",
        "select order_id, user_id, status, total_amount::text, updated_at from orders",
        "select order_id, user_id, status, total_amount::text, updated_at"
        " from staging.stg_oltp__orders",
    ),
    "stg_oltp__order_details": (
        "order_detail_id",
        "select order_detail_id, order_id, quantity, total_price::text from order_details",
        "select order_detail_id, order_id, quantity, total_price::text"
        " from staging.stg_oltp__order_details",
    ),
    "stg_oltp__users": (
        "user_id",
        "select user_id, loyalty_status, email from users",
        "select user_id, loyalty_status, email from staging.stg_oltp__users",
    ),
    "stg_oltp__products": (
        "product_id",
        "select product_id, name, price::text from products",
        "select product_id, product_name, price::text from staging.stg_oltp__products",
    ),
    "stg_oltp__product_categories": (
        "category_id",
        "select category_id, name from product_categories",
        "select category_id, category_name from staging.stg_oltp__product_categories",
    ),
}


def assert_staging_equals_source(oltp: str, warehouse: str) -> None:
    for model, (key, source_query, staging_query) in STAGING.items():
        expected = rows(oltp, f"{source_query} order by {key}")
        assert rows(warehouse, f"{staging_query} order by {key}") == expected, model


def build(logs, tested: dbt_state.Tested | None) -> dbt_state.Tested:
    started = warehouse_now(WarehouseSettings.from_env())
    with dbt_scope(dt.date(2026, 10, 10), tested):
        summary = run_dbt(["build", "--select", "tag:orders"], logs)
    assert summary.success, summary.failures
    assert set(summary.counts["snapshot"]) == {"success"}
    return dbt_state.Tested(started, dt.date(2026, 10, 10))


@pytest.mark.e2e
def test_deletes_truncates_and_backdated_updates_reach_staging_marts_and_snapshots(
    oltp, warehouse, local_dirs, dbt_target, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("OLTP_CAPTURE", "cdc")
    logs = tmp_path / "dbt-logs"
    with psycopg.connect(oltp, autocommit=True) as src:
        src.execute("set timezone to 'UTC'")
        seed(src, users=5, orders=10, details=2)
        load_all()
        tested = build(logs, None)
        assert_staging_equals_source(oltp, warehouse)
        sold = "select coalesce(sum(total_quantity_sold), 0) from marts.mart_product_sales"
        assert rows(warehouse, sold) == [(30,)]  # 10 orders x (1 + 2) units

        # Deletes, a backdated status correction, a key deleted and inserted again.
        src.execute("delete from order_details where order_id in (2, 3)")
        src.execute("delete from orders where order_id = 3")
        src.execute(
            "update orders set status = 'shipped', updated_at = '2020-01-01' where order_id = 4"
        )
        src.execute("update users set loyalty_status = 'gold' where user_id = 2")
        src.execute("delete from order_details where order_detail_id = 10")
        src.execute(
            "insert into order_details values (10, 5, 1, 7, 1.00, 7.00, now(), '2019-06-01')"
        )
        load_all()
        tested = build(logs, tested)
        assert_staging_equals_source(oltp, warehouse)
        assert rows(warehouse, sold) == [(30 - 6 - 2 + 7,)]  # 2 orders' lines gone, one re-sold
        # The deleted order's status history is closed; the corrected one opened a version.
        closed = rows(
            warehouse,
            "select order_id, status, dbt_valid_to is not null from snapshots.snap_orders_status"
            " where order_id in (3, 4) order by order_id, dbt_valid_to is null",
        )
        assert closed == [(3, "pending", True), (4, "pending", True), (4, "shipped", False)]

        # A truncate of the lines, then new ones.
        with src.transaction():
            src.execute("truncate order_details")
            src.execute("insert into order_details values (50, 1, 2, 4, 2.00, 8.00, now(), now())")
        load_all()
        build(logs, tested)
        assert_staging_equals_source(oltp, warehouse)
        assert rows(warehouse, sold) == [(4,)]

        # A full refresh agrees with the incremental runs.
        summary = run_dbt(["build", "--select", "tag:orders", "--full-refresh"], logs)
        assert summary.success, summary.failures
        assert_staging_equals_source(oltp, warehouse)


@pytest.mark.e2e
def test_a_document_deleted_at_the_source_leaves_staging_after_reconciliation(
    mongo_db, warehouse, local_dirs, dbt_target, tmp_path
) -> None:
    from loaders.mongo.job import load_all as load_mongo
    from loaders.mongo.reconcile import reconcile
    from tests.loaders.mongo.test_job import query_doc

    logs = tmp_path / "dbt-logs"
    at = dt.datetime(2026, 10, 5, 12, tzinfo=dt.UTC)
    docs = [query_doc(i, at + dt.timedelta(minutes=i)) for i in range(4)]
    mongo_db.search_queries.insert_many(docs)
    load_mongo(["search_queries"])
    select = ["--select", "stg_mongo__search_queries"]
    kept = "select query_id from staging.stg_mongo__search_queries order by 1"
    assert run_dbt(["build", *select], logs).success
    assert rows(warehouse, kept) == [("Q0",), ("Q1",), ("Q2",), ("Q3",)]

    mongo_db.search_queries.delete_one({"_id": docs[2]["_id"]})
    reconcile(["search_queries"])
    summary = run_dbt(["build", *select], logs)  # incremental: the tombstone's batch
    assert summary.success, summary.failures
    assert rows(warehouse, kept) == [("Q0",), ("Q1",), ("Q3",)]
    summary = run_dbt(["build", *select, "--full-refresh"], logs)
    assert summary.success, summary.failures
    assert rows(warehouse, kept) == [("Q0",), ("Q1",), ("Q3",)]
