"""An incremental run keeps exactly the rows a full refresh keeps.

Two loads through the real loader. The second brings what breaks naive
incremental models: a re-sent event written after its first copy (the first
copy must stay) and one written before it (it must win), and a session and a
search rewritten late with an OLDER write time than the version already
landed (the loader's lookback window reads them), beside ordinary updates.
The order system's raw tables get the same treatment, written straight into
raw as its loaders land them: new versions of a user and an order beside
older versions landing late, and on the Kafka stream a re-delivered
registration (the first copy must stay) and one with an earlier time landing
late (it must win). After an incremental `dbt build`, every incremental
model's rows are compared with a `--full-refresh` of the same data in the
same schemas.
"""

from __future__ import annotations

import datetime as dt
import json

import psycopg
import pytest
from bson import ObjectId

from loaders.mongo.job import load_all
from stack.dbt_build import run_dbt
from tests.dbt.conftest import incremental_models, insert, rows, table_rows

DAY = dt.datetime(2026, 10, 1)
COLLECTIONS = ["user_sessions", "event_logs", "search_queries", "moderation_queue"]
# Columns that are the time of the run that wrote the row, by design, so they
# differ between two builds of the same data (review_mart: "when this row's
# measures last changed").
RUN_TIME_COLUMNS = {"review_mart": {"last_updated"}}


def at(hhmm: str) -> dt.datetime:
    h, m = map(int, hhmm.split(":"))
    return DAY.replace(hour=h, minute=m)


def oid(n: int) -> ObjectId:
    return ObjectId(f"{n:024x}")


def session(n: int, sid: str, written: str, pages: list[str]) -> dict:
    return {
        "_id": oid(n), "session_id": sid, "user_id": n, "start_time": at("08:00"),
        "end_time": at("08:30"), "pages_visited": pages, "actions": [],
        "device": {"type": "mobile", "os": "iOS", "browser": "Safari"}, "updated_at": at(written),
    }  # fmt: skip


def event(n: int, eid: str, written: str, kind: str = "click") -> dict:
    return {
        "_id": oid(n), "event_id": eid, "timestamp": at("08:00"), "event_type": kind,
        "details": {"user_id": 1, "session_id": "S1", "page": "/"}, "updated_at": at(written),
    }  # fmt: skip


def search(n: int, qid: str, written: str, results: int) -> dict:
    return {
        "_id": oid(n), "query_id": qid, "user_id": 1, "query_text": "lamp",
        "timestamp": at("08:00"), "filters": [], "results_count": results,
        "updated_at": at(written),
    }  # fmt: skip


def review(n: int, rid: str, product: int, rating: int, written: str) -> dict:
    return {
        "_id": oid(n), "review_id": rid, "user_id": 1, "product_id": product,
        "review_text": "ok", "rating": rating, "moderation_status": "approved", "flags": [],
        "submitted_at": at("07:00"), "updated_at": at(written),
    }  # fmt: skip


def stamp(hhmm: str) -> str:
    """A write time as the order system's COPY writes it."""
    return f"{DAY:%Y-%m-%d} {hhmm}:00+00"


def oltp_user(uid: int, loyalty: str, written: str) -> dict:
    return {
        "user_id": str(uid), "first_name": "F", "last_name": "L", "email": f"u{uid}@x.example",
        "phone": "1", "registration_date": "2026-09-01", "loyalty_status": loyalty,
        "created_at": stamp("08:00"), "updated_at": stamp(written),
    }  # fmt: skip


def oltp_order(oid: int, uid: int, status: str, written: str) -> dict:
    return {
        "order_id": str(oid), "user_id": str(uid), "order_date": stamp("08:00"), "status": status,
        "total_amount": "10.00", "created_at": stamp("08:00"), "updated_at": stamp(written),
    }  # fmt: skip


def oltp_line(lid: int, oid: int, written: str) -> dict:
    return {
        "order_detail_id": str(lid), "order_id": str(oid), "product_id": "1", "quantity": "1",
        "price_per_unit": "10.00", "total_price": "10.00", "created_at": stamp("08:00"),
        "updated_at": stamp(written),
    }  # fmt: skip


def registration(partition: int, offset: int, email: str, sent: str) -> dict:
    value = {"email": email, "first_name": "F", "loyalty_status": "bronze"}
    return {
        "topic": "new_users_events", "partition": partition, "offset": offset, "key": email,
        "value": json.dumps(value), "message_timestamp": stamp(sent),
    }  # fmt: skip


def land(warehouse: str, schema: str, table: str, batch: int, records: list[dict]) -> None:
    """Append rows to a raw table as one loader batch."""
    with psycopg.connect(warehouse) as conn:
        for record in records:
            insert(conn, schema, table, {**record, "_batch_id": batch})


@pytest.mark.e2e
def test_incremental_run_equals_full_refresh(
    mongo_db, warehouse, local_dirs, dbt_target, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("LOADER_LOOKBACK_SECONDS", "3600")
    logs = tmp_path / "dbt-logs"

    # ---- first load and a full build
    mongo_db.user_sessions.insert_many(
        [session(1, "S1", "10:00", ["/a", "/b"]), session(2, "S2", "10:00", ["/a"])]
    )
    mongo_db.event_logs.insert_many([event(11, "E1", "10:00"), event(12, "E2", "10:00")])
    mongo_db.search_queries.insert_many([search(21, "Q1", "11:00", 5)])
    mongo_db.moderation_queue.insert_many([review(31, "R1", 10, 5, "10:00")])
    load_all(COLLECTIONS)  # also creates every raw table
    users = [oltp_user(1, "gold", "10:00"), oltp_user(2, "silver", "10:00")]
    land(warehouse, "raw_oltp", "users", 1, users)
    orders = [oltp_order(10, 1, "pending", "10:00"), oltp_order(11, 2, "paid", "10:00")]
    land(warehouse, "raw_oltp", "orders", 1, orders)
    land(warehouse, "raw_oltp", "order_details", 1, [oltp_line(100, 10, "10:00")])
    registrations = [
        registration(0, 0, "a@x.example", "10:00"),
        registration(1, 0, "b@x.example", "10:00"),
    ]
    land(warehouse, "raw_kafka", "new_users_events", 1, registrations)
    first = run_dbt(["build"], logs)
    assert first.success, first.failures

    # ---- second load
    # S1 and Q1 are rewritten late with an older write time (the lookback reads
    # them); S2 gets an ordinary newer version.
    mongo_db.user_sessions.replace_one({"_id": oid(1)}, session(1, "S1", "09:50", ["/a"]))
    mongo_db.user_sessions.replace_one({"_id": oid(2)}, session(2, "S2", "10:20", ["/a", "/c"]))
    mongo_db.search_queries.replace_one({"_id": oid(21)}, search(21, "Q1", "10:30", 7))
    mongo_db.search_queries.insert_one(search(22, "Q2", "11:30", 1))
    # E1 is re-sent after its first copy; E2's re-send carries an earlier write time.
    mongo_db.event_logs.insert_many(
        [event(13, "E1", "10:30"), event(14, "E2", "09:40"), event(15, "E3", "10:40")]
    )
    mongo_db.moderation_queue.insert_one(review(32, "R2", 10, 3, "10:30"))
    landed = {r.collection: r.landed for r in load_all(COLLECTIONS)}
    assert landed == {
        "user_sessions": 2, "event_logs": 3, "search_queries": 2, "moderation_queue": 1
    }  # fmt: skip

    # User 1 and order 10 change; an older version of user 2 and of order 11
    # lands late. a@ is re-delivered; b@'s registration with an earlier time
    # lands late (it is the first); c@ is new.
    users = [oltp_user(1, "platinum", "11:00"), oltp_user(2, "bronze", "09:00")]
    land(warehouse, "raw_oltp", "users", 2, users)
    orders = [
        oltp_order(10, 1, "paid", "11:00"),
        oltp_order(11, 2, "pending", "09:00"),
        oltp_order(12, 2, "paid", "11:00"),
    ]
    land(warehouse, "raw_oltp", "orders", 2, orders)
    land(warehouse, "raw_oltp", "order_details", 2, [oltp_line(101, 12, "11:00")])
    registrations = [
        registration(0, 1, "a@x.example", "10:30"),
        registration(2, 0, "b@x.example", "09:00"),
        registration(0, 2, "c@x.example", "11:00"),
    ]
    land(warehouse, "raw_kafka", "new_users_events", 2, registrations)

    second = run_dbt(["build"], logs)
    assert second.success, second.failures
    assert second.incremental_rows["stg_oltp__users"] == 1
    assert second.incremental_rows["stg_oltp__orders"] == 2
    assert second.incremental_rows["stg_oltp__order_details"] == 1
    assert second.incremental_rows["stg_kafka__new_users_events"] == 2
    assert rows(
        warehouse, "select user_id, loyalty_status from staging.stg_oltp__users order by 1"
    ) == [(1, "platinum"), (2, "silver")]
    orders = rows(warehouse, "select order_id, status from staging.stg_oltp__orders order by 1")
    assert orders == [(10, "paid"), (11, "paid"), (12, "paid")]
    assert rows(
        warehouse,
        "select email, partition_number, message_offset"
        " from staging.stg_kafka__new_users_events order by 1",
    ) == [("a@x.example", 0, 0), ("b@x.example", 2, 0), ("c@x.example", 0, 2)]
    # Only keys whose kept row changed are written: S2, E2 and E3, Q2.
    assert second.incremental_rows["stg_mongo__user_sessions"] == 1
    assert second.incremental_rows["stg_mongo__event_logs"] == 2
    assert second.incremental_rows["stg_mongo__search_queries"] == 1

    assert rows(
        warehouse,
        "select session_id, pages_visited_count, updated_at::time::text"
        " from staging.stg_mongo__user_sessions order by 1",
    ) == [("S1", 2, "10:00:00"), ("S2", 2, "10:20:00")]
    assert rows(
        warehouse, "select event_id, document_id from staging.stg_mongo__event_logs order by 1"
    ) == [("E1", str(oid(11))), ("E2", str(oid(14))), ("E3", str(oid(15)))]
    assert rows(
        warehouse,
        "select query_id, results_count from staging.stg_mongo__search_queries order by 1",
    ) == [("Q1", 5), ("Q2", 1)]

    models = incremental_models(dbt_target)
    assert {"stg_mongo__user_sessions", "stg_mongo__event_logs", "stg_mongo__search_queries",
            "review_mart", "f_sales", "d_city", "d_item", "stg_oltp__users", "stg_oltp__orders",
            "stg_oltp__order_details", "stg_kafka__new_users_events"} <= set(models)  # fmt: skip
    incremental = {
        name: table_rows(warehouse, schema, table, RUN_TIME_COLUMNS.get(name, set()))
        for name, (schema, table) in models.items()
    }

    refreshed = run_dbt(
        ["run", "--full-refresh", "--select", "config.materialized:incremental"], logs
    )
    assert refreshed.success, refreshed.failures
    assert set(refreshed.incremental_rows) | set(refreshed.counts) and refreshed.counts[
        "model"
    ] == {"success": len(models)}
    for name, (schema, table) in models.items():
        full = table_rows(warehouse, schema, table, RUN_TIME_COLUMNS.get(name, set()))
        assert incremental[name] == full, name
