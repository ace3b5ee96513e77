"""A row that breaks a domain rule is quarantined: the build stays green, the marts leave it out.

Every source gets readable values that break a rule its staging model states
(meta.quarantine): a rating of 9 and an unknown ticket status from the app
database, a negative order total, an unknown order status, a negative price and
a zero quantity from the order system, unknown loyalty levels from the
registrations stream (once a whole batch of them), a zero quantity and an
unknown status from the partner sales files. They go in beside good rows,
through the real Mongo loader and straight into the raw tables the other
loaders write, then a real `dbt build`. (The events' rule is checked as they
land: tests/loaders/events/test_hostile_input.py.)
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import psycopg
import pytest
from bson import ObjectId

from loaders.core.raw_tables import ensure_raw_tables
from loaders.mongo.job import load_all
from loaders.raw_tables import all_raw_tables
from stack.dbt_build import run_dbt
from tests.dbt.conftest import insert, rows

WRITTEN = "2026-10-01 12:00:00+00"
AT = dt.datetime(2026, 10, 1, 12)


def oid(n: int) -> ObjectId:
    return ObjectId(f"{n:024x}")


REVIEWS = [
    {"_id": oid(1), "review_id": "R1", "user_id": 1, "product_id": 10, "rating": 5,
     "moderation_status": "approved", "flags": [], "submitted_at": AT, "updated_at": AT},
    {"_id": oid(2), "review_id": "R9", "user_id": 2, "product_id": 10, "rating": 9,
     "moderation_status": "approved", "flags": [], "submitted_at": AT, "updated_at": AT},
]  # fmt: skip
TICKETS = [
    {"_id": oid(3), "ticket_id": "T1", "user_id": 1, "status": "closed", "issue_type": "bug",
     "created_at": AT, "messages": [], "updated_at": AT},
    {"_id": oid(4), "ticket_id": "T2", "user_id": 2, "status": "escalated", "issue_type": "bug",
     "created_at": AT, "messages": [], "updated_at": AT},
]  # fmt: skip


def _row(**values: str) -> dict[str, str]:
    return {"created_at": WRITTEN, "updated_at": WRITTEN, **values}


OLTP_ROWS = {
    "product_categories": [_row(category_id="1", name="Lighting")],
    "products": [
        _row(product_id="1", name="Lamp", category_id="1", price="12.50"),
        _row(product_id="2", name="Rug", category_id="1", price="-1.00"),
    ],
    "users": [
        _row(user_id="1", first_name="Ann", last_name="Lee", email="ann@example.com",
             phone="1", registration_date="2026-10-01", loyalty_status="gold"),
    ],
    "orders": [
        _row(order_id="1", user_id="1", order_date=WRITTEN, status="paid", total_amount="12.50"),
        _row(order_id="2", user_id="1", order_date=WRITTEN, status="paid", total_amount="-5.00"),
        _row(order_id="3", user_id="1", order_date=WRITTEN, status="lost", total_amount="7.00"),
    ],
    "order_details": [
        _row(order_detail_id="1", order_id="1", product_id="1", quantity="1",
             price_per_unit="12.50", total_price="12.50"),
        _row(order_detail_id="2", order_id="1", product_id="1", quantity="0",
             price_per_unit="12.50", total_price="0.00"),
    ],
}  # fmt: skip
REGISTRATIONS = [  # (batch, value)
    (1, {"email": "bob@example.com", "first_name": "Bob", "loyalty_status": "silver"}),
    (1, {"email": "eve@example.com", "first_name": "Eve", "loyalty_status": "diamond"}),
    # The newest batch, all of it held out: the next build reads it again.
    (2, {"email": "mal@example.com", "first_name": "Mal", "loyalty_status": "iron"}),
]
SALES = [
    {"uniq_id": "a1", "date_time": "2026-10-01 10:00:00", "city_id": "1", "city_name": "Oslo",
     "customer_id": "7", "first_name": "Kim", "last_name": "Ng", "item_id": "3",
     "item_name": "Mug", "quantity": "2", "payment_amount": "20.00", "status": "shipped"},
    {"uniq_id": "a2", "date_time": "2026-10-01 11:00:00", "city_id": "1", "city_name": "Oslo",
     "customer_id": "7", "first_name": "Kim", "last_name": "Ng", "item_id": "3",
     "item_name": "Mug", "quantity": "0", "payment_amount": "0.00", "status": "shipped"},
    {"uniq_id": "a3", "date_time": "2026-10-01 12:00:00", "city_id": "1", "city_name": "Oslo",
     "customer_id": "7", "first_name": "Kim", "last_name": "Ng", "item_id": "3",
     "item_name": "Mug", "quantity": "1", "payment_amount": "10.00", "status": "lost"},
]  # fmt: skip

# (model, rule, row key) of every row the rules hold out
QUARANTINED = {
    ("stg_mongo__moderation_queue", "rating_from_1_to_5", "R9"),
    ("stg_mongo__support_tickets", "status_known", "T2"),
    ("stg_oltp__products", "price_not_negative", "2"),
    ("stg_oltp__orders", "total_amount_not_negative", "2"),
    ("stg_oltp__orders", "status_known", "3"),
    ("stg_oltp__order_details", "quantity_positive", "2"),
    ("stg_kafka__new_users_events", "loyalty_status_known", "eve@example.com"),
    ("stg_kafka__new_users_events", "loyalty_status_known", "mal@example.com"),
    ("stg_sales_api__user_order_log", "quantity_positive", "a2"),
    ("stg_sales_api__user_order_log", "status_known", "a3"),
}


@pytest.mark.e2e
def test_rule_breaking_rows_are_quarantined_and_the_build_is_green(
    mongo_db, warehouse, local_dirs, dbt_target, tmp_path, monkeypatch
) -> None:
    mongo_db["moderation_queue"].insert_many(REVIEWS)
    mongo_db["support_tickets"].insert_many(TICKETS)
    assert all(r.rejected == 0 for r in load_all())
    with psycopg.connect(warehouse) as conn:
        ensure_raw_tables(conn, all_raw_tables())
        for table, records in OLTP_ROWS.items():
            for record in records:
                insert(conn, "raw_oltp", table, {**record, "_batch_id": 1})
        for offset, (batch, value) in enumerate(REGISTRATIONS):
            message = {"topic": "new_users_events", "partition": 0, "offset": offset}
            message |= {"key": "k", "value": json.dumps(value), "message_timestamp": WRITTEN}
            insert(conn, "raw_kafka", "new_users_events", {**message, "_batch_id": batch})
        for n, record in enumerate(SALES, 1):
            insert(conn, "raw_sales_api", "user_order_log", {
                **record, "_increment_date": "2026-10-01", "_file_name": "user_order_log.csv",
                "_row_number": n, "_batch_id": 1})  # fmt: skip

    summary = run_dbt(["build"], tmp_path / "dbt-logs")

    # ---- green: nothing errors or is skipped; the quarantine tests warn
    assert summary.success, summary.failures
    assert set(summary.counts["model"]) == {"success"}
    results = json.loads((dbt_target / "run_results.json").read_text())["results"]
    warned = {r["unique_id"].split(".")[2]: r["failures"] for r in results if r["status"] == "warn"}
    assert {name: n for name, n in warned.items() if name.startswith("quarantined_")} == {
        f"quarantined_{model}_": sum(1 for m, _, _ in QUARANTINED if m == model)
        for model in {m for m, _, _ in QUARANTINED}
    }

    # ---- the quarantine lists each row with the rule it broke and its values
    held = rows(warehouse, "select model, rule, row_key, row from audit.quarantined_rows")
    assert {(m, rule, key) for m, rule, key, _ in held} == QUARANTINED
    row_of = {(m, key): row for m, _, key, row in held}
    assert row_of[("stg_oltp__orders", "2")]["total_amount"] == -5.0
    assert row_of[("stg_kafka__new_users_events", "eve@example.com")]["loyalty_status"] == "diamond"

    # ---- staging and the marts hold the good rows only
    assert rows(warehouse, "select review_id from staging.stg_mongo__moderation_queue") == [("R1",)]
    assert rows(
        warehouse, "select product_id, total_reviews, avg_rating from marts.review_mart"
    ) == [(10, 1, Decimal("5.00"))]
    assert rows(warehouse, "select ticket_id from marts.support_efficiency") == [("T1",)]
    assert rows(
        warehouse,
        "select user_id, status, order_count, total_spent from marts.mart_user_activity",
    ) == [(1, "paid", 1, Decimal("12.50"))]
    assert rows(
        warehouse,
        "select product_id, total_quantity_sold, total_sales from marts.mart_product_sales",
    ) == [(1, 1, Decimal("12.50"))]
    assert rows(warehouse, "select product_id from staging.stg_oltp__products") == [(1,)]
    assert rows(warehouse, "select email from staging.stg_kafka__new_users_events") == [
        ("bob@example.com",)
    ]
    assert rows(warehouse, "select uniq_id, quantity from marts.f_sales") == [("a1", 2)]

    # ---- a second build, a daily one (make run's record of the last build that
    # passed: rows landed before it are not new), neither lists them again nor lets
    # them back in, also the registration its incremental model reads again
    monkeypatch.setenv("DBT_TESTED_BEFORE", dt.datetime.now(dt.UTC).isoformat())
    summary = run_dbt(["build"], tmp_path / "dbt-logs")
    assert summary.success, summary.failures
    assert rows(warehouse, "select count(*) from audit.quarantined_rows") == [(len(QUARANTINED),)]
    assert rows(warehouse, "select count(*) from marts.f_sales") == [(1,)]
    assert rows(warehouse, "select count(*) from staging.stg_oltp__orders") == [(1,)]
    assert rows(warehouse, "select email from staging.stg_kafka__new_users_events") == [
        ("bob@example.com",)
    ]
