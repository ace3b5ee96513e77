"""`make run`'s job end to end: two simulated days on the ephemeral servers."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import psycopg
import pytest

from stack import run as run_module


@pytest.mark.slow
def test_first_run_builds_everything_then_next_run_is_incremental(
    mongo_db,
    warehouse,
    api,
    oltp,
    kafka_topic,
    clickhouse_db,
    local_dirs,
    tmp_path: Path,
    monkeypatch,
    capsys,
) -> None:
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    monkeypatch.setenv("DATAGEN_SCALE", "0.05")
    monkeypatch.setenv("DATAGEN_HISTORY_DAYS", "2")

    assert run_module.main() == 0
    first = capsys.readouterr().out
    assert "first run (full build) for logical day 2026-10-02" in first
    assert "raw_mongo.support_tickets" in first
    assert "raw_oltp.orders" in first
    assert "raw_kafka.new_users_events" in first
    assert "raw_events.feed_actions" in first
    assert "dbt build --target clickhouse" in first
    assert " not ok" not in first

    assert run_module.main() == 0
    second = capsys.readouterr().out
    assert "incremental run for logical day 2026-10-03" in second
    assert "stg_mongo__event_logs" in second  # incremental models report merged rows
    # Each step's time, one line (make bench's scaling figures read it).
    assert re.search(r"^steps    datagen [\d.]+s · load [\d.]+s · dbt [\d.]+s · "
                     r"dbt clickhouse [\d.]+s · report [\d.]+s$", second, re.M)  # fmt: skip

    with psycopg.connect(warehouse) as conn:
        for mart in (
            "marts.review_mart",
            "marts.support_efficiency",
            "marts.user_activity",
            "marts.mart_user_activity",
            "marts.mart_average_check",
        ):
            assert conn.execute(f"select count(*) from {mart}").fetchone()[0] > 0, mart
        # The second run landed one day: batches of the second run cover only day 3 writes.
        latest = conn.execute(
            "select min(_source_updated_at) from raw_mongo.event_logs"
            " where _batch_id > (select min(batch_id) + 6 from loader.batches)"
        ).fetchone()[0]
    assert latest is not None and latest.date().isoformat() == "2026-10-03"
    saved = sorted((local_dirs / "logs").glob("run-*.txt"))
    summary = saved[-1].read_text()
    # Every mart is listed under marts, staging's incremental models under staging.
    marts_part = summary.split("marts tables")[1].split("rejected records")[0]
    for mart in ("review_mart", "support_efficiency", "d_city", "d_item", "d_customer",
                 "f_sales", "f_customer_retention", "user_activity", "mart_user_activity",
                 "mart_product_sales", "mart_average_check", "feed_dimension_daily",
                 "app_metrics_daily", "feed_anomalies"):  # fmt: skip
        assert f"marts.{mart} " in marts_part, mart
    assert "stg_mongo__event_logs" in summary.split("staging tables")[1].split("marts tables")[0]

    # Seed 003's daily report for the logical day, on disk (no Telegram configured),
    # with the mart's numbers.
    folder = local_dirs / "reports" / "2026-10-03"
    assert f"report   2026-10-03: written to {folder}" in second
    with psycopg.connect(warehouse) as conn:
        views, likes = conn.execute(
            "select views, likes from marts.app_metrics_daily where event_date = '2026-10-03'"
        ).fetchone()
    text = (folder / "message.txt").read_text()
    assert f"  Views: {views:,}  (d/d " in text and f"  Likes: {likes:,}  (d/d " in text
    assert (folder / "chart.png").read_bytes()[:4] == b"\x89PNG"


def test_dbt_test_failure_fails_the_run_naming_the_test(
    mongo_db,
    warehouse,
    api,
    oltp,
    kafka_topic,
    clickhouse_db,
    local_dirs,
    tmp_path,
    monkeypatch,
    capsys,
) -> None:
    """Bad source data fails a dbt test: the run exits 1 and names the failing test."""
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    monkeypatch.setenv("DATAGEN_SCALE", "0.05")
    monkeypatch.setenv("DATAGEN_HISTORY_DAYS", "1")
    when = dt.datetime(2026, 10, 1, 12)
    mongo_db.support_tickets.insert_one(
        {
            "ticket_id": "TCK-BAD",
            "user_id": 1,
            "status": "escalated",
            "issue_type": "bug",
            "created_at": when,
            "messages": [],
            "updated_at": when,
        }
    )
    assert run_module.main() == 1
    captured = capsys.readouterr()
    assert "FAILED test accepted_values_stg_mongo__support_tickets_status" in captured.out
    assert "dbt build failed" in captured.err


@pytest.mark.slow
def test_a_day_the_sales_api_failed_is_loaded_by_the_next_run(
    mongo_db,
    warehouse,
    api,
    oltp,
    kafka_topic,
    clickhouse_db,
    local_dirs,
    tmp_path,
    monkeypatch,
    capsys,
) -> None:
    from tests.conftest import set_faults

    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    monkeypatch.setenv("DATAGEN_SCALE", "0.05")
    monkeypatch.setenv("DATAGEN_HISTORY_DAYS", "1")
    assert run_module.main() == 0  # 2026-10-01
    set_faults(api, fail_next=100, fail_status=503)
    assert run_module.main() == 1  # the app wrote 10-02, the partner API was down
    assert "sales API" in capsys.readouterr().err
    set_faults(api)
    assert run_module.main() == 0  # 10-03, and the 10-02 it missed
    with psycopg.connect(warehouse) as conn:
        dates = conn.execute(
            "select distinct _increment_date from raw_sales.user_order_log order by 1"
        ).fetchall()
    assert [d[0].isoformat() for d in dates] == ["2026-10-01", "2026-10-02", "2026-10-03"]
