"""Bad values in the app's documents never break `dbt build`; they are counted.

MongoDB documents land as JSONB (schema-on-read), so any field can hold any
type. Hostile documents go into the real MongoDB test server beside good
ones, through the real loader and a real `dbt build`. The order system's
tables land every column as text and its Kafka stream lands JSON as text:
hostile rows are written straight into those raw tables (a non-numeric
price, unparsable timestamps, JSON fields of the wrong type, a value
PostgreSQL's JSON refuses). The build must succeed with nothing skipped, the
marts must hold the good rows with the right values, and the warn-severity
tests must name the bad rows (their failing rows are stored in the audit
schema).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import psycopg
import pytest
from bson import ObjectId

from loaders.mongo.job import load_all
from stack.dbt_build import run_dbt
from tests.dbt.conftest import insert, rows

DAY = dt.datetime(2026, 10, 1)
UTC = dt.UTC


def at(hhmm: str) -> dt.datetime:
    h, m = map(int, hhmm.split(":"))
    return DAY.replace(hour=h, minute=m)


def oid(n: int) -> str:
    return f"{n:024x}"


def docs(start: int, *bodies: dict, written: str = "12:00", field: str = "updated_at") -> list:
    """Documents with _id start, start+1, ... and the app's write time."""
    return [
        {"_id": ObjectId(oid(start + i)), **body, field: at(written)}
        for i, body in enumerate(bodies)
    ]


REVIEWS = docs(
    100,
    {"review_id": "R1", "user_id": 1, "product_id": 10, "rating": 5,
     "moderation_status": "approved", "flags": [], "submitted_at": at("08:00")},
    # rating and submitted_at of the wrong type, flags not an array
    {"review_id": "R2", "user_id": 2, "product_id": 10, "rating": "five",
     "moderation_status": "rejected", "flags": 5, "submitted_at": "not a date"},
    # no readable product: left out of review_mart
    {"review_id": "R3", "user_id": 3, "product_id": "abc", "rating": 4,
     "moderation_status": "approved", "flags": ["spam"], "submitted_at": at("08:00")},
    {"review_id": "R4", "user_id": [1, 2], "product_id": 20, "rating": 3,
     "moderation_status": "pending", "flags": ["spam"], "submitted_at": at("08:00")},
)  # fmt: skip
TICKETS = docs(
    200,
    # user_id an array: the ticket is kept, its user_id null
    {"ticket_id": "T1", "user_id": [1, 2], "status": "closed", "issue_type": "bug",
     "created_at": at("09:00"),
     "messages": [{"sender": "user", "text": "hi", "sent_at": at("09:00")},
                  {"sender": "support", "text": "ok", "sent_at": at("09:30")}]},
    {"ticket_id": "T2", "user_id": 2, "status": "open", "issue_type": "bug",
     "created_at": "garbage", "messages": "oops"},
    # an undated message and one that is not an object
    {"ticket_id": "T3", "user_id": 3, "status": "pending", "issue_type": "refund",
     "created_at": at("09:00"),
     "messages": [{"sender": "user", "text": "?", "sent_at": "yesterday"},
                  {"sender": "user", "text": "hello", "sent_at": at("10:00")},
                  {"sender": "support", "text": "yes", "sent_at": at("10:15")},
                  "just a string"]},
    # no ticket_id: cannot be identified
    {"user_id": 4, "status": "open", "issue_type": "bug", "created_at": at("09:00"),
     "messages": []},
)  # fmt: skip
SESSIONS = docs(
    300,
    {"session_id": "S1", "user_id": 1, "start_time": at("08:00"), "end_time": at("08:30"),
     "pages_visited": ["/a"], "actions": [], "device": {"type": "mobile", "os": "iOS",
                                                         "browser": "Safari"}},
    # PostgreSQL would read "infinity" (and "now", "yesterday") as a time: not data
    {"session_id": "S2", "user_id": [1, 2], "start_time": "2026-99-99",
     "end_time": "infinity", "pages_visited": 5, "actions": [], "device": "phone"},
)  # fmt: skip
EVENTS = docs(
    400,
    {"event_id": "E1", "event_type": "click", "timestamp": at("08:00"),
     "details": {"user_id": 1, "session_id": "S1", "page": "/a"}},
    {"event_id": "E2", "event_type": "login", "timestamp": "nope", "details": "str"},
    {"event_type": "logout", "timestamp": at("08:00"), "details": {}},  # no event_id
    {"event_id": "E4", "event_type": "error", "timestamp": at("08:00"),
     "details": {"user_id": 1, "code": "abc"}},
)  # fmt: skip
SEARCHES = docs(
    500,
    {"query_id": "Q1", "user_id": 1, "query_text": "lamp", "timestamp": at("08:00"),
     "filters": [], "results_count": 3},
    {"query_id": "Q2", "user_id": 1, "query_text": "tent", "timestamp": at("08:00"),
     "filters": 5, "results_count": 2**62},  # fits bigint, not integer
    {"query_id": "Q3", "user_id": 1, "query_text": "mug", "timestamp": "now",
     "filters": [], "results_count": "many"},
)  # fmt: skip
PRICES = docs(
    600,
    {"product_id": 1, "currency": "USD", "current_price": "abc",
     "price_changes": [{"date": at("00:00"), "price": "x"}, {"date": at("06:00"), "price": 10.5}]},
    {"product_id": "x", "currency": "USD", "current_price": 1, "price_changes": []},
    {"product_id": 3, "currency": "USD", "current_price": 12.5, "price_changes": "none"},
    {"product_id": 4, "currency": "USD", "current_price": "NaN", "price_changes": []},
)  # fmt: skip
RECOMMENDATIONS = docs(
    700,
    {"user_id": 1, "recommended_products": 5},
    {"user_id": 2, "recommended_products": [1, 2, 3]},
    {"user_id": "abc", "recommended_products": [1]},
    field="last_updated",
)

# The order system's raw rows, every column text as the loader lands it.
WRITTEN = "2026-10-01 12:00:00+00"
OLTP_ROWS = {
    "product_categories": [
        {"category_id": "1", "name": "Lighting", "created_at": WRITTEN, "updated_at": WRITTEN},
    ],
    "products": [
        {"product_id": "1", "name": "Lamp", "category_id": "1", "price": "abc",
         "created_at": WRITTEN, "updated_at": WRITTEN},
        {"product_id": "2", "name": "Rug", "category_id": "1", "price": "NaN",
         "created_at": WRITTEN, "updated_at": WRITTEN},
        # no readable key: left out
        {"product_id": "x", "name": "Bad", "category_id": "1", "price": "5.00",
         "created_at": WRITTEN, "updated_at": WRITTEN},
    ],
    "users": [
        {"user_id": "1", "first_name": "Ann", "last_name": "Lee", "email": "ann@example.com",
         "phone": "1", "registration_date": "2026-13-45", "loyalty_status": "gold",
         "created_at": WRITTEN, "updated_at": WRITTEN},
    ],
    "orders": [
        {"order_id": "1", "user_id": "1", "order_date": "not a date", "status": "paid",
         "total_amount": "12.50", "created_at": WRITTEN, "updated_at": WRITTEN},
        # no readable write time: cannot be ranked among its versions, left out
        {"order_id": "2", "user_id": "1", "order_date": WRITTEN, "status": "paid",
         "total_amount": "9.99", "created_at": WRITTEN, "updated_at": "garbage"},
    ],
    "order_details": [
        {"order_detail_id": "1", "order_id": "1", "product_id": "1", "quantity": "two",
         "price_per_unit": "12.50", "total_price": "12.50", "created_at": WRITTEN,
         "updated_at": WRITTEN},
    ],
}  # fmt: skip
REGISTRATIONS = [
    # fields of the wrong type, a date PostgreSQL would read as a word (an unknown
    # level is quarantined: tests/dbt/test_quarantine.py)
    json.dumps({"email": "x@example.com", "first_name": {"a": 1}, "last_name": "X",
                "phone": ["1"], "registration_date": "yesterday", "loyalty_status": "gold"}),
    # not JSON PostgreSQL reads (the loader refuses it; raw written otherwise may hold it)
    '{"email": "y@example.com", "score": NaN}',
]  # fmt: skip

# (model, Mongo _id, column) of every value present but not readable as its type
UNREADABLE = {
    ("stg_mongo__moderation_queue", oid(101), "rating"),
    ("stg_mongo__moderation_queue", oid(101), "submitted_at"),
    ("stg_mongo__moderation_queue", oid(101), "flags"),
    ("stg_mongo__moderation_queue", oid(102), "product_id"),
    ("stg_mongo__moderation_queue", oid(103), "user_id"),
    ("stg_mongo__support_tickets", oid(200), "user_id"),
    ("stg_mongo__support_tickets", oid(201), "created_at"),
    ("stg_mongo__support_tickets", oid(201), "messages"),
    ("stg_mongo__user_sessions", oid(301), "user_id"),
    ("stg_mongo__user_sessions", oid(301), "started_at"),
    ("stg_mongo__user_sessions", oid(301), "pages_visited"),
    ("stg_mongo__user_sessions", oid(301), "ended_at"),
    ("stg_mongo__event_logs", oid(401), "event_at"),
    ("stg_mongo__event_logs", oid(401), "details"),
    ("stg_mongo__event_logs", oid(403), "error_code"),
    ("stg_mongo__search_queries", oid(501), "results_count"),
    ("stg_mongo__search_queries", oid(501), "filters"),
    ("stg_mongo__search_queries", oid(502), "results_count"),
    ("stg_mongo__search_queries", oid(502), "searched_at"),
    ("stg_mongo__product_price_history", oid(600), "current_price"),
    ("stg_mongo__product_price_history", oid(602), "price_changes"),
    ("stg_mongo__product_price_history", oid(603), "current_price"),
    ("stg_mongo__user_recommendations", oid(700), "recommended_products"),
}
# (model, Mongo _id) of every document left out because its key is unreadable
UNIDENTIFIED = {
    ("stg_mongo__support_tickets", oid(203)),
    ("stg_mongo__event_logs", oid(402)),
    ("stg_mongo__product_price_history", oid(601)),
    ("stg_mongo__user_recommendations", oid(702)),
}
# (model, row key, column) of every order-system value present but not castable
TEXT_UNREADABLE = {
    ("stg_oltp__products", "1", "price"),
    ("stg_oltp__products", "2", "price"),
    ("stg_oltp__users", "1", "registration_date"),
    ("stg_oltp__orders", "1", "ordered_at"),
    ("stg_oltp__order_details", "1", "quantity"),
}
# (model, landed key, landed updated_at) of every order-system row left out
TEXT_UNIDENTIFIED = {
    ("stg_oltp__products", "x", WRITTEN),
    ("stg_oltp__orders", "2", "garbage"),
}
# (message offset, column) of every stream value present but not readable
STREAM_UNREADABLE = {(0, "first_name"), (0, "phone"), (0, "registration_date")}
STREAM_UNIDENTIFIED = {1}  # message offsets left out (no readable email)
# The other warn tests that must fire: not_null on values a row can live without.
WARNED_NOT_NULL = {
    "not_null_stg_mongo__user_sessions_user_id",
    "not_null_stg_mongo__user_sessions_started_at",
    "not_null_stg_mongo__event_logs_event_at",
    "not_null_stg_mongo__support_tickets_user_id",
    "not_null_stg_mongo__moderation_queue_product_id",
    "not_null_int_support_messages_unnested_sender",
    "not_null_int_support_messages_unnested_sent_at",
    "not_null_int_product_price_changes_unnested_price",
    "not_null_support_efficiency_user_id",
}


@pytest.mark.e2e
def test_bad_values_are_nulled_counted_and_never_break_the_build(
    mongo_db, warehouse, local_dirs, dbt_target, tmp_path
) -> None:
    for name, documents in {
        "moderation_queue": REVIEWS, "support_tickets": TICKETS, "user_sessions": SESSIONS,
        "event_logs": EVENTS, "search_queries": SEARCHES, "product_price_history": PRICES,
        "user_recommendations": RECOMMENDATIONS,
    }.items():  # fmt: skip
        mongo_db[name].insert_many(documents)
    landed = {r.collection: (r.landed, r.rejected) for r in load_all()}
    assert all(rejected == 0 for _, rejected in landed.values()), landed  # all land in raw
    with psycopg.connect(warehouse) as conn:  # load_all created every raw table
        for table, records in OLTP_ROWS.items():
            for record in records:
                insert(conn, "raw_oltp", table, {**record, "_batch_id": 1})
        for offset, value in enumerate(REGISTRATIONS):
            conn.execute(
                "insert into raw_kafka.new_users_events"
                ' (topic, partition, "offset", key, value, message_timestamp, _batch_id)'
                " values ('new_users_events', 0, %s, 'k', %s, %s, 1)",
                (offset, value, WRITTEN),
            )

    summary = run_dbt(["build"], tmp_path / "dbt-logs")

    # ---- the build succeeds, nothing errors, nothing is skipped
    assert summary.success, summary.failures
    assert summary.failures == []
    assert set(summary.counts["model"]) == {"success"}
    assert set(summary.counts["snapshot"]) == {"success"}
    assert set(summary.counts["unit_test"]) == {"pass"}
    assert set(summary.counts["test"]) == {"pass", "warn"}

    # ---- the warn tests name the bad rows
    results = json.loads((dbt_target / "run_results.json").read_text())["results"]
    warned = {r["unique_id"].split(".")[2] for r in results if r["status"] == "warn"}
    castable = {f"json_castable_{model}" for model, _, _ in UNREADABLE}
    key_castable = {f"json_key_castable_{model}" for model, _ in UNIDENTIFIED}
    text_castable = {f"text_castable_{model}" for model, _, _ in TEXT_UNREADABLE}
    text_key_castable = {f"text_key_castable_{model}" for model, _, _ in TEXT_UNIDENTIFIED}
    stream = {
        "json_castable_stg_kafka__new_users_events",
        "json_key_castable_stg_kafka__new_users_events",
    }
    assert warned == (
        castable | key_castable | text_castable | text_key_castable | stream | WARNED_NOT_NULL
    )
    assert summary.counts["test"]["warn"] == len(warned)
    reported = set()
    for model in {m for m, _, _ in UNREADABLE}:
        reported |= {
            (model, document_id, column)
            for document_id, column in rows(
                warehouse, f"select document_id, column_name from audit.json_castable_{model}"
            )
        }
    assert reported == UNREADABLE
    unidentified = set()
    for model in {m for m, _ in UNIDENTIFIED}:
        unidentified |= {
            (model, document_id)
            for (document_id,) in rows(
                warehouse, f"select document_id from audit.json_key_castable_{model}"
            )
        }
    assert unidentified == UNIDENTIFIED
    reported = set()
    for model in {m for m, _, _ in TEXT_UNREADABLE}:
        reported |= {
            (model, key, column)
            for key, column in rows(
                warehouse, f"select row_key, column_name from audit.text_castable_{model}"
            )
        }
    assert reported == TEXT_UNREADABLE
    unidentified = set()
    for model in {m for m, _, _ in TEXT_UNIDENTIFIED}:
        unidentified |= {
            (model, key, version)
            for key, version in rows(
                warehouse,
                f"select landed_key, landed_version from audit.text_key_castable_{model}",
            )
        }
    assert unidentified == TEXT_UNIDENTIFIED
    assert (
        set(
            rows(
                warehouse,
                "select message_offset, column_name"
                " from audit.json_castable_stg_kafka__new_users_events",
            )
        )
        == STREAM_UNREADABLE
    )
    assert {
        offset
        for (offset,) in rows(
            warehouse,
            "select message_offset from audit.json_key_castable_stg_kafka__new_users_events",
        )
    } == STREAM_UNIDENTIFIED

    # ---- the marts hold the good rows with the right values
    # product 10: R1 (5, approved) and R2 (no readable rating, rejected); R3 has
    # no readable product and is left out; product 20: R4.
    assert rows(
        warehouse,
        "select product_id, total_reviews, avg_rating, approved_reviews_ratio, total_flags"
        " from marts.review_mart order by 1",
    ) == [
        (10, 2, Decimal("5.00"), Decimal("0.5000"), 0),
        (20, 1, Decimal("3.00"), Decimal("0.0000"), 1),
    ]
    # T1 is kept with a null user; T2's thread is not an array (no messages);
    # T3's undated message and non-object entry count, but take no part in times.
    assert rows(
        warehouse,
        "select ticket_id, user_id, support_messages, user_messages, first_message_dt,"
        " last_message_dt, avg_response_time_min from marts.support_efficiency order by 1",
    ) == [
        ("T1", None, 1, 1, at("09:00").replace(tzinfo=UTC), at("09:30").replace(tzinfo=UTC),
         Decimal("30.00")),
        ("T2", 2, 0, 0, None, None, None),
        ("T3", 3, 1, 2, at("10:00").replace(tzinfo=UTC), at("10:15").replace(tzinfo=UTC),
         Decimal("15.00")),
    ]  # fmt: skip
    # Order 1's line has no readable quantity (no units to add up, its sales
    # still count); order 2 was left out.
    assert rows(
        warehouse,
        "select product_id, name, status, total_quantity_sold, total_sales"
        " from marts.mart_product_sales",
    ) == [(1, "Lamp", "paid", None, Decimal("12.50"))]
    assert rows(
        warehouse,
        "select user_id, first_name, status, order_count, total_spent"
        " from marts.mart_user_activity",
    ) == [(1, "Ann", "paid", 1, Decimal("12.50"))]
    assert rows(
        warehouse, "select status, loyalty_status, average_check from marts.mart_average_check"
    ) == [("paid", "gold", Decimal("12.50"))]
    # user 1: session S1, order 1 (its only line has no quantity: no preferred
    # category), review R1 (R4's user is unreadable); users 2 and 3 only review.
    assert rows(
        warehouse,
        "select user_id, sessions_cnt, avg_pages_visited, days_active, orders_cnt, reviews_cnt,"
        " preferred_category from marts.user_activity order by 1",
    ) == [
        (1, 1, Decimal("1.00"), 1, 1, 1, None),
        (2, 0, None, 0, 0, 1, None),
        (3, 0, None, 0, 0, 1, None),
    ]

    # ---- staging: unreadable values are null, the rest of the row is kept
    assert rows(
        warehouse,
        "select session_id, user_id, started_at is null, pages_visited_count, device_type"
        " from staging.stg_mongo__user_sessions order by 1",
    ) == [("S1", 1, False, 1, "mobile"), ("S2", None, True, None, None)]
    assert rows(
        warehouse,
        "select query_id, results_count, filters_count from staging.stg_mongo__search_queries"
        " order by 1",
    ) == [("Q1", 3, 0), ("Q2", None, None), ("Q3", None, 0)]
    assert rows(
        warehouse,
        "select event_id, event_at is null, details is null, error_code"
        " from staging.stg_mongo__event_logs order by 1",
    ) == [("E1", False, False, None), ("E2", True, True, None), ("E4", False, False, None)]
    assert rows(
        warehouse,
        "select product_id, change_number, price"
        " from intermediate.int_product_price_changes_unnested order by 1, 2",
    ) == [(1, 1, None), (1, 2, Decimal("10.50"))]
    assert rows(
        warehouse,
        "select user_id, recommended_products_count"
        " from staging.stg_mongo__user_recommendations order by 1",
    ) == [(1, None), (2, 3)]
    assert rows(
        warehouse,
        "select product_id, product_name, price from staging.stg_oltp__products order by 1",
    ) == [(1, "Lamp", None), (2, "Rug", None)]
    assert rows(
        warehouse,
        "select order_id, ordered_at, total_amount from staging.stg_oltp__orders order by 1",
    ) == [(1, None, Decimal("12.50"))]
    assert rows(
        warehouse,
        "select email, first_name, last_name, phone, registration_date, loyalty_status"
        " from staging.stg_kafka__new_users_events",
    ) == [("x@example.com", None, "X", None, None, "gold")]
