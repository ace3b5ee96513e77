"""The order system's marts and user_activity, worked out by hand over two days.

A small store is written straight into the raw tables, as the loaders land
it: the order system's tables one row per replicated version (every column as
text), the Kafka registrations one row per message, and MongoDB sessions and
reviews as documents. `dbt build` runs for day 1, then day 2 lands new
versions (a status change, a loyalty change, a phone change, new orders, a
user first seen on the stream now replicated, a new stream-only user, a
re-delivered message) and `dbt build` runs again. Every row of every mart,
and the snapshots' histories, are compared with values written out below.

The store (day 1, as of 2026-10-10):
- categories 1 Books, 2 Games, 3 Audio; products 10 Novel and 11 Atlas
  (Books), 20 Chess (Games), 30 Headphones (Audio);
- users 1 Ann (gold), 2 Bob (silver), 3 Cid (bronze); dan@example.com
  registers on the stream only (platinum), and Ann's registration is on the
  stream too, with her email in upper case;
- orders: 100 Ann delivered 45.00 (2 Novel 20.00, 1 Atlas 25.00); 101 Ann
  pending 30.00 (1 Chess); 102 Bob paid 60.00 (2 Chess); 103 Bob cancelled
  50.00 (1 Headphones); 104 Cid delivered 40.00 (1 Novel 10.00, 1 Chess
  30.00: Books and Games tie, Books wins by name); 105 Ann delivered 16.00
  (1 Headphones);
- sessions: Ann on 09-10 (2 pages), 09-11 (2), 10-01 (3 and 1); user 4, who
  exists only in the app, on 10-05 (4 pages); reviews: Ann 2, Bob 1.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import psycopg
import pytest

from loaders.raw_tables import ensure_all_raw_tables
from stack.dbt_build import run_dbt
from stack.dbt_state import Tested, dbt_scope
from tests.dbt.conftest import insert, rows

UTC = dt.UTC
DAY1 = "2026-10-10 09:00:00+00"  # the order system's write time of day 1's rows
DAY2 = "2026-10-11 10:00:00+00"  # and of day 2's changes
T1 = dt.datetime(2026, 10, 10, 9, tzinfo=UTC)
T2 = dt.datetime(2026, 10, 11, 10, tzinfo=UTC)
DAY3 = "2026-10-12 11:00:00+00"
T3 = dt.datetime(2026, 10, 12, 11, tzinfo=UTC)
LATE = "2026-10-10 15:00:00+00"  # between day 1 and day 2: older than day 2's versions
TOPIC = "new_users_events"


def d(value: str) -> Decimal:
    return Decimal(value)


# ---------------------------------------------------------------- landing raw rows


def land(conn: psycopg.Connection, schema: str, table: str, batch: int, records: list) -> None:
    """Append rows to a raw table as one loader batch."""
    for record in records:
        insert(conn, schema, table, {**record, "_batch_id": batch})


def category(cid: int, name: str) -> dict:
    return {"category_id": str(cid), "name": name, "created_at": DAY1, "updated_at": DAY1}


def product(pid: int, name: str, cid: int) -> dict:
    return {
        "product_id": str(pid), "name": name, "category_id": str(cid), "price": "10.00",
        "created_at": DAY1, "updated_at": DAY1,
    }  # fmt: skip


def user(uid: int, first: str, last: str, loyalty: str, phone: str, at: str = DAY1) -> dict:
    return {
        "user_id": str(uid), "first_name": first, "last_name": last,
        "email": f"{first.lower()}@example.com", "phone": phone,
        "registration_date": "2026-10-01", "loyalty_status": loyalty,
        "created_at": DAY1, "updated_at": at,
    }  # fmt: skip


def order(oid: int, uid: int, status: str, total: str, at: str = DAY1) -> dict:
    return {
        "order_id": str(oid), "user_id": str(uid), "order_date": "2026-10-09 12:00:00+00",
        "status": status, "total_amount": total, "created_at": DAY1, "updated_at": at,
    }  # fmt: skip


def line(lid: int, oid: int, pid: int, qty: int, total: str, at: str = DAY1) -> dict:
    return {
        "order_detail_id": str(lid), "order_id": str(oid), "product_id": str(pid),
        "quantity": str(qty), "price_per_unit": str(Decimal(total) / qty), "total_price": total,
        "created_at": at, "updated_at": at,
    }  # fmt: skip


def registration(part: int, offset: int, email: str, loyalty: str, at: str) -> dict:
    first = email.split("@")[0].capitalize()
    value = {
        "first_name": first, "last_name": "Doe", "email": email, "phone": "+1 555 0100",
        "registration_date": at[:10], "loyalty_status": loyalty,
    }  # fmt: skip
    return {
        "topic": TOPIC, "partition": part, "offset": offset, "key": email,
        "value": json.dumps(value), "message_timestamp": at,
    }  # fmt: skip


def session(sid: str, uid: int, start: str, pages: int) -> dict:
    doc = {
        "session_id": sid, "user_id": uid, "start_time": start, "end_time": start,
        "pages_visited": [f"/p{n}" for n in range(pages)], "actions": [],
        "device": {"type": "mobile", "os": "iOS", "browser": "Safari"},
    }  # fmt: skip
    return {"_id": sid, "doc": json.dumps(doc), "_source_updated_at": start}


def review(rid: str, uid: int) -> dict:
    doc = {
        "review_id": rid, "user_id": uid, "product_id": 10, "review_text": "ok", "rating": 4,
        "moderation_status": "approved", "flags": [], "submitted_at": "2026-10-05T10:00:00Z",
    }  # fmt: skip
    return {"_id": rid, "doc": json.dumps(doc), "_source_updated_at": "2026-10-05T10:00:00Z"}


def land_day1(conn: psycopg.Connection) -> None:
    categories = [category(1, "Books"), category(2, "Games"), category(3, "Audio")]
    land(conn, "raw_oltp", "product_categories", 1, categories)
    products = [
        product(10, "Novel", 1),
        product(11, "Atlas", 1),
        product(20, "Chess", 2),
        product(30, "Headphones", 3),
    ]
    land(conn, "raw_oltp", "products", 2, products)
    users = [
        user(1, "Ann", "Lee", "gold", "+1 555 0001"),
        user(2, "Bob", "Ray", "silver", "+1 555 0002"),
        user(3, "Cid", "Moe", "bronze", "+1 555 0003"),
    ]
    land(conn, "raw_oltp", "users", 3, users)
    orders = [
        order(100, 1, "delivered", "45.00"),
        order(101, 1, "pending", "30.00"),
        order(102, 2, "paid", "60.00"),
        order(103, 2, "cancelled", "50.00"),
        order(104, 3, "delivered", "40.00"),
        order(105, 1, "delivered", "16.00"),
    ]
    land(conn, "raw_oltp", "orders", 4, orders)
    lines = [
        line(1, 100, 10, 2, "20.00"),
        line(2, 100, 11, 1, "25.00"),
        line(3, 101, 20, 1, "30.00"),
        line(4, 102, 20, 2, "60.00"),
        line(5, 103, 30, 1, "50.00"),
        line(6, 104, 10, 1, "10.00"),
        line(7, 104, 20, 1, "30.00"),
        line(8, 105, 30, 1, "16.00"),
    ]
    land(conn, "raw_oltp", "order_details", 5, lines)
    registrations = [
        registration(0, 0, "dan@example.com", "platinum", "2026-10-09 12:00:00+00"),
        registration(1, 0, "ANN@Example.com", "gold", "2026-10-01 08:00:00+00"),
        # the producer re-delivered Dan's registration
        registration(0, 1, "dan@example.com", "platinum", "2026-10-09 12:00:05+00"),
    ]
    land(conn, "raw_kafka", "new_users_events", 6, registrations)
    sessions = [
        session("S1", 1, "2026-09-10T10:00:00Z", 2),
        session("S2", 1, "2026-09-11T10:00:00Z", 2),
        session("S3", 1, "2026-10-01T10:00:00Z", 3),
        session("S4", 1, "2026-10-01T18:00:00Z", 1),
        session("S5", 4, "2026-10-05T10:00:00Z", 4),
    ]
    land(conn, "raw_mongo", "user_sessions", 7, sessions)
    land(
        conn,
        "raw_mongo",
        "moderation_queue",
        8,
        [review("R1", 1), review("R2", 1), review("R3", 2)],
    )


def land_day2(conn: psycopg.Connection) -> None:
    """101 is paid and 102 shipped; Bob becomes gold and Ann changes her phone;
    Dan is replicated (user 5, bronze: the order system wins) and orders; Cid
    orders again (Games now lead); Eve registers on the stream only, and Dan's
    registration is re-delivered once more; Bob has a session on the new day."""
    users = [
        user(1, "Ann", "Lee", "gold", "+1 555 0009", DAY2),
        user(2, "Bob", "Ray", "gold", "+1 555 0002", DAY2),
        user(5, "Dan", "Fox", "bronze", "+1 555 0005", DAY2),
    ]
    land(conn, "raw_oltp", "users", 11, users)
    orders = [
        order(101, 1, "paid", "30.00", DAY2),
        order(102, 2, "shipped", "60.00", DAY2),
        order(106, 3, "paid", "25.00", DAY2),
        order(107, 5, "delivered", "10.00", DAY2),
    ]
    land(conn, "raw_oltp", "orders", 12, orders)
    lines = [line(9, 106, 20, 1, "25.00", DAY2), line(10, 107, 10, 1, "10.00", DAY2)]
    land(conn, "raw_oltp", "order_details", 13, lines)
    registrations = [
        registration(0, 2, "dan@example.com", "platinum", "2026-10-10 12:00:00+00"),
        registration(2, 0, "eve@example.com", "silver", "2026-10-11 07:00:00+00"),
    ]
    land(conn, "raw_kafka", "new_users_events", 14, registrations)
    land(conn, "raw_mongo", "user_sessions", 15, [session("S6", 2, "2026-10-11T08:00:00Z", 5)])


def land_day3(conn: psycopg.Connection) -> None:
    """For the snapshots, which read only batches newer than their own: 101 is
    shipped and Cid becomes silver; versions older than day 2's land late (Bob
    silver, 102 paid: staging keeps day 2's); Ann's phone changes again."""
    users = [
        user(3, "Cid", "Moe", "silver", "+1 555 0003", DAY3),
        user(2, "Bob", "Ray", "silver", "+1 555 0002", LATE),
    ]
    land(conn, "raw_oltp", "users", 21, users)
    land(conn, "raw_oltp", "users", 22, [user(1, "Ann", "Lee", "gold", "+1 555 0010", DAY3)])
    orders = [order(101, 1, "shipped", "30.00", DAY3), order(102, 2, "paid", "60.00", LATE)]
    land(conn, "raw_oltp", "orders", 23, orders)


# ---------------------------------------------------------------- reading the marts


MART_USER_ACTIVITY = """
    select user_id, first_name, last_name, status, order_count, total_spent
    from marts.mart_user_activity order by user_id, status"""
MART_PRODUCT_SALES = """
    select product_id, name, status, total_quantity_sold, total_sales
    from marts.mart_product_sales order by product_id, status"""
MART_AVERAGE_CHECK = """
    select status, loyalty_status, average_check
    from marts.mart_average_check order by status, loyalty_status"""
USER_ACTIVITY = """
    select user_id, sessions_cnt, avg_pages_visited, days_active, days_active_last_month,
        orders_cnt, reviews_cnt, preferred_category
    from marts.user_activity order by user_id"""
SNAP_USERS_LOYALTY = """
    select user_id, loyalty_status, dbt_valid_from, dbt_valid_to
    from snapshots.snap_users_loyalty order by user_id, dbt_valid_from"""

SNAP_ORDERS_STATUS = """
    select order_id, status, dbt_valid_from, dbt_valid_to
    from snapshots.snap_orders_status order by order_id, dbt_valid_from"""

USERS_RECONCILED = """
    select user_id, email, first_name, loyalty_status, record_source, streamed_at is not null
    from intermediate.int_users_reconciled order by email"""


def etl_valid_from(wh: str) -> dict[int, dt.datetime]:
    return dict(rows(wh, "select user_id, etl_valid_from from marts.user_activity"))


def lookup_indexes(wh: str, schema: str, table: str) -> set[str]:
    """The column lists of a table's indexes: ``{"(order_id)", ...}``."""
    with psycopg.connect(wh) as conn:
        found = conn.execute(
            "select indexdef from pg_indexes where schemaname = %s and tablename = %s",
            (schema, table),
        ).fetchall()
    return {definition[definition.rindex(" (") :].strip() for (definition,) in found}


def build(logs, day: str, tested: Tested | None = None) -> None:
    """`dbt build` for the logical day; with `tested` (the last passing build, as make
    run's daily builds have it) the snapshots read only new batches."""
    with dbt_scope(dt.date.fromisoformat(day), tested):
        summary = run_dbt(["build"], logs)
    assert summary.success, summary.failures
    assert set(summary.counts["test"]) == {"pass"}, summary.counts["test"]
    assert set(summary.counts["snapshot"]) == {"success"}
    assert set(summary.counts["unit_test"]) == {"pass"}


@pytest.mark.e2e
def test_orders_marts_and_user_activity_over_two_days(
    warehouse, local_dirs, dbt_target, tmp_path, monkeypatch
) -> None:
    logs = tmp_path / "dbt-logs"
    monkeypatch.setenv("DBT_LOG_LEVEL_FILE", "debug")  # the snapshots' SQL is read from the log
    with psycopg.connect(warehouse) as conn:
        ensure_all_raw_tables(conn)
        land_day1(conn)

    # ================================================================ day 1
    build(logs, "2026-10-10")

    assert rows(warehouse, MART_USER_ACTIVITY) == [
        (1, "Ann", "Lee", "delivered", 2, d("61.00")),
        (1, "Ann", "Lee", "pending", 1, d("30.00")),
        (2, "Bob", "Ray", "cancelled", 1, d("50.00")),
        (2, "Bob", "Ray", "paid", 1, d("60.00")),
        (3, "Cid", "Moe", "delivered", 1, d("40.00")),
    ]
    assert rows(warehouse, MART_PRODUCT_SALES) == [
        (10, "Novel", "delivered", 3, d("30.00")),
        (11, "Atlas", "delivered", 1, d("25.00")),
        (20, "Chess", "delivered", 1, d("30.00")),
        (20, "Chess", "paid", 2, d("60.00")),
        (20, "Chess", "pending", 1, d("30.00")),
        (30, "Headphones", "cancelled", 1, d("50.00")),
        (30, "Headphones", "delivered", 1, d("16.00")),
    ]
    assert rows(warehouse, MART_AVERAGE_CHECK) == [
        ("cancelled", "silver", d("50.00")),
        ("delivered", "bronze", d("40.00")),
        ("delivered", "gold", d("30.50")),  # (45.00 + 16.00) / 2
        ("paid", "silver", d("60.00")),
        ("pending", "gold", d("30.00")),
    ]
    # As of 10-10 the window is 09-11..10-10: Ann's 09-10 session is out of it.
    # User 4 exists only in the app; Cid's Books and Games tie (Books).
    assert rows(warehouse, USER_ACTIVITY) == [
        (1, 4, d("2.00"), 3, 2, 3, 2, "Books"),
        (2, 0, None, 0, 0, 2, 1, "Games"),
        (3, 0, None, 0, 0, 1, 0, "Books"),
        (4, 1, d("4.00"), 1, 1, 0, 0, None),
    ]
    # Dan is known only from the stream; Ann's stream registration matches her
    # order-system row case-insensitively, and the order system's row wins.
    assert rows(warehouse, USERS_RECONCILED) == [
        (1, "ann@example.com", "Ann", "gold", "oltp", True),
        (2, "bob@example.com", "Bob", "silver", "oltp", False),
        (3, "cid@example.com", "Cid", "bronze", "oltp", False),
        (None, "dan@example.com", "Dan", "platinum", "stream", True),
    ]
    day1_valid_from = etl_valid_from(warehouse)

    # ================================================================ day 2
    with psycopg.connect(warehouse) as conn:
        land_day2(conn)
    build(logs, "2026-10-11")

    assert rows(warehouse, MART_USER_ACTIVITY) == [
        (1, "Ann", "Lee", "delivered", 2, d("61.00")),
        (1, "Ann", "Lee", "paid", 1, d("30.00")),
        (2, "Bob", "Ray", "cancelled", 1, d("50.00")),
        (2, "Bob", "Ray", "shipped", 1, d("60.00")),
        (3, "Cid", "Moe", "delivered", 1, d("40.00")),
        (3, "Cid", "Moe", "paid", 1, d("25.00")),
        (5, "Dan", "Fox", "delivered", 1, d("10.00")),
    ]
    assert rows(warehouse, MART_PRODUCT_SALES) == [
        (10, "Novel", "delivered", 4, d("40.00")),
        (11, "Atlas", "delivered", 1, d("25.00")),
        (20, "Chess", "delivered", 1, d("30.00")),
        (20, "Chess", "paid", 2, d("55.00")),  # 101 (now paid) and 106
        (20, "Chess", "shipped", 2, d("60.00")),
        (30, "Headphones", "cancelled", 1, d("50.00")),
        (30, "Headphones", "delivered", 1, d("16.00")),
    ]
    # Bob is gold now: his orders move with him.
    assert rows(warehouse, MART_AVERAGE_CHECK) == [
        ("cancelled", "gold", d("50.00")),
        ("delivered", "bronze", d("25.00")),  # (40.00 + 10.00) / 2
        ("delivered", "gold", d("30.50")),
        ("paid", "bronze", d("25.00")),
        ("paid", "gold", d("30.00")),
        ("shipped", "gold", d("60.00")),
    ]
    # As of 10-11 the window is 09-12..10-11: Ann's 09-11 session leaves it.
    assert rows(warehouse, USER_ACTIVITY) == [
        (1, 4, d("2.00"), 3, 1, 3, 2, "Books"),
        (2, 1, d("5.00"), 1, 1, 2, 1, "Games"),
        (3, 0, None, 0, 0, 2, 0, "Games"),
        (4, 1, d("4.00"), 1, 1, 0, 0, None),
        (5, 0, None, 0, 0, 1, 0, "Books"),
    ]
    # Only user 4's measures did not change: its row keeps day 1's ETL time.
    day2_valid_from = etl_valid_from(warehouse)
    assert day2_valid_from[4] == day1_valid_from[4]
    assert all(day2_valid_from[u] > day1_valid_from[u] for u in (1, 2, 3))
    assert day2_valid_from[5] > max(day1_valid_from.values())
    assert rows(warehouse, USERS_RECONCILED) == [
        (1, "ann@example.com", "Ann", "gold", "oltp", True),
        (2, "bob@example.com", "Bob", "gold", "oltp", False),
        (3, "cid@example.com", "Cid", "bronze", "oltp", False),
        (5, "dan@example.com", "Dan", "bronze", "oltp", True),
        (None, "eve@example.com", "Eve", "silver", "stream", True),
    ]
    # The first copy of each registration stays (re-deliveries never replace it).
    assert rows(
        warehouse,
        "select email, partition_number, message_offset from staging.stg_kafka__new_users_events"
        " order by email",
    ) == [("ann@example.com", 1, 0), ("dan@example.com", 0, 0), ("eve@example.com", 2, 0)]

    # ---- histories: valid from the order system's write times
    # Ann's phone change opens no loyalty version; Bob's gold does.
    assert rows(warehouse, SNAP_USERS_LOYALTY) == [
        (1, "gold", T1, None),
        (2, "silver", T1, T2),
        (2, "gold", T2, None),
        (3, "bronze", T1, None),
        (5, "bronze", T2, None),
    ]
    assert rows(warehouse, SNAP_ORDERS_STATUS) == [
        (100, "delivered", T1, None),
        (101, "pending", T1, T2),
        (101, "paid", T2, None),
        (102, "paid", T1, T2),
        (102, "shipped", T2, None),
        (103, "cancelled", T1, None),
        (104, "delivered", T1, None),
        (105, "delivered", T1, None),
        (106, "paid", T2, None),
        (107, "delivered", T2, None),
    ]
    # user_activity's history: one version per user per change of its measures.
    assert rows(
        warehouse,
        "select user_id, count(*)::int from snapshots.snap_user_activity_measured"
        " group by user_id order by user_id",
    ) == [(1, 2), (2, 2), (3, 2), (4, 1), (5, 1)]

    # ================================================================ day 3
    # The order system's snapshots read only the batches landed since their
    # last run, and compare only those keys' current versions: new versions
    # open, late older ones (which staging does not keep) and a phone change
    # open none.
    users_before, orders_before = (
        rows(warehouse, SNAP_USERS_LOYALTY),
        rows(warehouse, SNAP_ORDERS_STATUS),
    )
    with psycopg.connect(warehouse) as conn:
        (day2_built,) = conn.execute("select now()").fetchone()
        land_day3(conn)
        # As on a table built before lookup_indexes existed: the next run adds it.
        (index,) = conn.execute(
            "select indexname from pg_indexes where schemaname = 'staging'"
            " and tablename = 'stg_oltp__orders' and indexdef like '%(batch_id)'"
        ).fetchone()
        conn.execute(f'drop index staging."{index}"')
    # A daily build, as make run's: the last passing build (day 2's) is on record.
    build(logs, "2026-10-12", Tested(day2_built, dt.date(2026, 10, 11)))
    assert lookup_indexes(warehouse, "staging", "stg_oltp__orders") == {
        "(batch_id)", "(loaded_at)", "(order_id)"
    }  # fmt: skip
    assert lookup_indexes(warehouse, "snapshots", "snap_users_loyalty") == {
        "(batch_id)", "(user_id)"
    }  # fmt: skip
    by_key_and_time = lambda r: (r[0], r[2])  # noqa: E731 (the queries' order)
    assert rows(warehouse, SNAP_USERS_LOYALTY) == sorted(
        [r for r in users_before if r[0] != 3] + [(3, "bronze", T1, T3), (3, "silver", T3, None)],
        key=by_key_and_time,
    )
    assert rows(warehouse, SNAP_ORDERS_STATUS) == sorted(
        [r for r in orders_before if r[0] != 101 or r[1] != "paid"]
        + [(101, "paid", T2, T3), (101, "shipped", T3, None)],
        key=by_key_and_time,
    )
    dbt_log = (logs / "dbt.log").read_text()
    for snapshot in ("snap_users_loyalty", "snap_orders_status"):
        read_new = (
            rf'where batch_id > \(select coalesce\(max\(batch_id\), 0\) from [^)]*"{snapshot}"\)'
        )
        assert re.search(read_new, dbt_log), f"{snapshot} read every row"
        # and compares only the current versions of the keys it read
        compare_read = rf'"{snapshot}"\s+where (order_id|user_id) in \(select'
        assert re.search(compare_read, dbt_log), f"{snapshot} compared every current row"
