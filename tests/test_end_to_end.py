"""Generate -> load -> dbt build -> marts, checked against values worked out by hand.

A small hand-made app database (four reviews, two tickets) goes through the
real loader and a real `dbt build` (models, snapshot, data and unit tests) on
the ephemeral PostgreSQL. Day two moderates a review, adds one and answers a
ticket; the incremental run must change exactly those rows.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from bson import ObjectId

from loaders.mongo.job import load_all
from stack.dbt_build import run_dbt

D1 = dt.datetime(2026, 10, 1)
D2 = dt.datetime(2026, 10, 2)


def at(day: dt.datetime, hhmm: str) -> dt.datetime:
    h, m = map(int, hhmm.split(":"))
    return day.replace(hour=h, minute=m)


def review(
    rid: str, product: int, rating: int, status: str, flags: list[str], written: dt.datetime
) -> dict:
    return {
        "_id": ObjectId(f"{int(rid[1:]):024x}"),
        "review_id": rid,
        "user_id": 1,
        "product_id": product,
        "review_text": "ok",
        "rating": rating,
        "moderation_status": status,
        "flags": flags,
        "submitted_at": at(D1, "08:00"),
        "updated_at": written,
    }


def ticket(tid: str, status: str, messages: list[tuple[str, dt.datetime]]) -> dict:
    return {
        "_id": ObjectId(f"{int(tid[1:]) + 100:024x}"),
        "ticket_id": tid,
        "user_id": int(tid[1:]),
        "status": status,
        "issue_type": "bug",
        "created_at": messages[0][1],
        "messages": [{"sender": s, "text": "...", "sent_at": t} for s, t in messages],
        "updated_at": messages[-1][1],
    }


T1_MESSAGES = [
    ("user", at(D1, "09:00")),
    ("user", at(D1, "09:10")),
    ("support", at(D1, "09:40")),
    ("user", at(D1, "10:00")),
    ("support", at(D1, "11:00")),
    ("support", at(D1, "11:05")),
]


@pytest.fixture
def dbt_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    return tmp_path / "dbt-logs"


def build(log_dir: Path) -> None:
    # The app database's models (its tag): the other sources' have nothing to
    # build here, and their own hand-worked tests build them.
    summary = run_dbt(["build", "--select", "tag:mongo"], log_dir)
    assert summary.success, summary.failures
    assert summary.counts["unit_test"].get("pass", 0) >= 3
    assert summary.counts["test"].get("pass", 0) >= 50


def rows(conninfo: str, query: str) -> list[tuple]:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(query).fetchall()


@pytest.mark.e2e
def test_marts_match_hand_computed_values_across_two_days(mongo_db, warehouse, dbt_env) -> None:
    # ---- day 1
    mongo_db.moderation_queue.insert_many(
        [
            review("R1", 10, 5, "approved", [], at(D1, "09:00")),
            review("R2", 10, 2, "rejected", ["spam", "offensive"], at(D1, "09:05")),
            review("R3", 10, 4, "pending", [], at(D1, "08:00")),
            review("R4", 20, 3, "approved", ["personal_data"], at(D1, "10:00")),
        ]
    )
    mongo_db.support_tickets.insert_many(
        [
            ticket("T1", "pending", T1_MESSAGES),
            ticket("T2", "open", [("user", at(D1, "12:00"))]),
        ]
    )
    load_all(["moderation_queue", "support_tickets"])
    build(dbt_env)

    review_sql = (
        "select product_id, total_reviews, avg_rating, approved_reviews_ratio, total_flags,"
        " last_updated from marts.review_mart order by product_id"
    )
    day1 = rows(warehouse, review_sql)
    assert [r[:5] for r in day1] == [
        (10, 3, Decimal("3.67"), Decimal("0.3333"), 2),
        (20, 1, Decimal("3.00"), Decimal("1.0000"), 1),
    ]
    support_sql = (
        "select ticket_id, status, support_messages, user_messages, first_message_dt,"
        " last_message_dt, avg_response_time_min, etl_valid_from"
        " from marts.support_efficiency order by ticket_id"
    )
    s1 = rows(warehouse, support_sql)
    utc = dt.UTC
    assert [r[:7] for r in s1] == [
        # replies at 09:40 (waited since 09:00: 40 min) and 11:00 (since 10:00: 60 min);
        # the 11:05 follow-up answered nothing.
        (
            "T1",
            "pending",
            3,
            3,
            at(D1, "09:00").replace(tzinfo=utc),
            at(D1, "11:05").replace(tzinfo=utc),
            Decimal("50.00"),
        ),
        (
            "T2",
            "open",
            0,
            1,
            at(D1, "12:00").replace(tzinfo=utc),
            at(D1, "12:00").replace(tzinfo=utc),
            None,
        ),
    ]

    # ---- day 2: R3 approved, R5 new, T2 answered after 20 hours
    mongo_db.moderation_queue.replace_one(
        {"review_id": "R3"}, review("R3", 10, 4, "approved", [], at(D2, "07:00"))
    )
    mongo_db.moderation_queue.insert_one(review("R5", 30, 1, "pending", [], at(D2, "07:30")))
    mongo_db.support_tickets.replace_one(
        {"ticket_id": "T2"},
        ticket("T2", "pending", [("user", at(D1, "12:00")), ("support", at(D2, "08:00"))]),
    )
    landed = {r.collection: r.landed for r in load_all(["moderation_queue", "support_tickets"])}
    assert landed == {"moderation_queue": 2, "support_tickets": 1}  # only what changed
    build(dbt_env)

    day2 = rows(warehouse, review_sql)
    assert [r[:5] for r in day2] == [
        (10, 3, Decimal("3.67"), Decimal("0.6667"), 2),
        (20, 1, Decimal("3.00"), Decimal("1.0000"), 1),
        (30, 1, Decimal("1.00"), Decimal("0.0000"), 0),
    ]
    # last_updated moves only for rows whose measures changed.
    assert day2[0][5] > day1[0][5]
    assert day2[1][5] == day1[1][5]
    assert day2[2][5] == day2[0][5]

    s2 = rows(warehouse, support_sql)
    assert s2[0] == s1[0]  # T1 unchanged, same etl_valid_from
    assert s2[1][1:4] == ("pending", 1, 1)
    assert s2[1][6] == Decimal("1200.00")
    assert s2[1][7] > s1[1][7]
    history = rows(
        warehouse,
        "select ticket_id, dbt_valid_to is null from snapshots.snap_support_tickets_measured"
        " order by ticket_id, dbt_valid_from",
    )
    assert history == [("T1", True), ("T2", False), ("T2", True)]
