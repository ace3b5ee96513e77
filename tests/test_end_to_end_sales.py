"""Sales files -> check -> raw -> `dbt build` -> sales marts, against values worked out by hand.

Day 1 (old format, no status) has a duplicate line; day 2 corrects a day-1
line, adds a refund and moves both customers to a new city.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from loaders.mongo.job import load_all
from loaders.sales_api.checks import MANIFEST, check_increment
from loaders.sales_api.landing import land_increment
from stack.dbt_build import run_dbt

ORDER_HEADER = ("uniq_id,date_time,city_id,city_name,customer_id,first_name,last_name,"
                "item_id,item_name,quantity,payment_amount")  # fmt: skip
DAY1 = [
    "a1,2026-10-05 10:00:00,1,Moscow,100,Anna,Ivanova,10,Lamp,2,20.00",
    "a2,2026-10-05 11:00:00,1,Moscow,100,Anna,Ivanova,20,Mug,1,5.00",
    "a3,2026-10-05 12:00:00,2,Kazan,200,Ivan,Petrov,10,Lamp,1,10.00",
    "a3,2026-10-05 12:00:00,2,Kazan,200,Ivan,Petrov,10,Lamp,1,10.00",  # duplicate
]
DAY2 = [
    "b1,2026-10-06 09:00:00,3,Tver,100,Anna,Ivanova,10,Lamp,1,10.00,refunded",
    "b2,2026-10-06 15:00:00,3,Tver,200,Ivan,Petrov,30,Tent,1,50.00,shipped",
    "a3,2026-10-05 12:00:00,2,Kazan,200,Ivan,Petrov,10,Lamp,3,30.00,shipped",  # correction
]


def write_increment(folder: Path, day: dt.date, header: str, lines: list[str]) -> Path:
    folder.mkdir(parents=True)
    files = {
        "user_order_log_inc.csv": [header, *lines],
        "customer_research_inc.csv": ["date_id,category_id,geo_id,sales_qty,sales_amt",
                                      f"{day},1,1,3,25.00"],
        "user_activity_log_inc.csv": ["uniq_id,date_time,action_id,customer_id,quantity",
                                      f"x{day},{day} 08:00:00,1,100,1"],
    }  # fmt: skip
    for name, rows in files.items():
        (folder / name).write_text("\n".join(rows) + "\n")
    manifest = {"files": [{"name": n, "rows": len(r) - 1} for n, r in files.items()]}
    (folder / MANIFEST).write_text(__import__("json").dumps(manifest))
    return folder


def rows(conninfo: str, query: str) -> list[tuple]:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(query).fetchall()


def land_and_build(conninfo: str, day: dt.date, folder: Path, log_dir: Path) -> None:
    with psycopg.connect(conninfo) as conn:
        land_increment(conn, day, check_increment(folder))
    # The sales API's models (its tag): the other sources' have nothing to
    # build here, and their own hand-worked tests build them.
    summary = run_dbt(["build", "--select", "tag:sales_api"], log_dir)
    assert summary.success, summary.failures


@pytest.mark.e2e
def test_sales_marts_match_hand_computed_values(mongo_db, warehouse, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    load_all()  # the MongoDB raw tables exist (empty), so every dbt source resolves
    d1, d2 = dt.date(2026, 10, 5), dt.date(2026, 10, 6)
    land_and_build(
        warehouse, d1, write_increment(tmp_path / "d1", d1, ORDER_HEADER, DAY1), tmp_path
    )

    sales_sql = "select uniq_id, status, quantity, payment_amount from marts.f_sales order by 1"
    assert rows(warehouse, sales_sql) == [
        ("a1", "shipped", 2, Decimal("20.00")),  # no status column: shipped
        ("a2", "shipped", 1, Decimal("5.00")),
        ("a3", "shipped", 1, Decimal("10.00")),  # the duplicate line counted once
    ]
    assert rows(warehouse, "select * from marts.d_customer order by 1") == [
        (100, "Anna", "Ivanova", 1), (200, "Ivan", "Petrov", 2),
    ]  # fmt: skip
    retention_sql = "select * from marts.f_customer_retention order by period_id, item_id"
    assert rows(warehouse, retention_sql) == [
        # Anna ordered twice that week (returning), Ivan once (new).
        ("weekly", "2026-W41", 10, 1, 1, 0, Decimal("10.00"), Decimal("20.00"), 0),
        ("weekly", "2026-W41", 20, 0, 1, 0, Decimal("0.00"), Decimal("5.00"), 0),
    ]

    header2 = ORDER_HEADER + ",status"
    land_and_build(warehouse, d2, write_increment(tmp_path / "d2", d2, header2, DAY2), tmp_path)
    assert rows(warehouse, sales_sql) == [
        ("a1", "shipped", 2, Decimal("20.00")),
        ("a2", "shipped", 1, Decimal("5.00")),
        ("a3", "shipped", 3, Decimal("30.00")),  # corrected by day 2's re-send
        ("b1", "refunded", 1, Decimal("-10.00")),  # refunds are negative
        ("b2", "shipped", 1, Decimal("50.00")),
    ]
    assert rows(warehouse, "select * from marts.d_city order by 1") == [
        (1, "Moscow"), (2, "Kazan"), (3, "Tver"),
    ]  # fmt: skip
    assert rows(warehouse, "select * from marts.d_item order by 1") == [
        (10, "Lamp"), (20, "Mug"), (30, "Tent"),
    ]  # fmt: skip
    assert rows(warehouse, "select customer_id, city_id from marts.d_customer order by 1") == [
        (100, 3), (200, 3),  # the city of each customer's last order
    ]  # fmt: skip
    history = rows(
        warehouse,
        "select customer_id, city_id, dbt_valid_to is null from snapshots.snap_customers"
        " order by customer_id, dbt_valid_from",
    )
    assert history == [(100, 1, False), (100, 3, True), (200, 2, False), (200, 3, True)]
    assert rows(warehouse, retention_sql) == [
        # Both customers now have two shipped lines that week: returning. Anna refunded a lamp.
        ("weekly", "2026-W41", 10, 0, 2, 1, Decimal("0.00"), Decimal("50.00"), 1),
        ("weekly", "2026-W41", 20, 0, 1, 0, Decimal("0.00"), Decimal("5.00"), 0),
        ("weekly", "2026-W41", 30, 0, 1, 0, Decimal("0.00"), Decimal("50.00"), 0),
    ]
