"""`make run`'s job end to end on the ephemeral servers: days after days, and what fails it.

The main test runs two days of history then three more days (on one of them the
partner's sales API is down, and the next run lands its sales); a day landed again
afterwards must leave every table equal to a `--full-refresh`, and
the daily builds' tests check only the rows they wrote (the weekly full check
every row).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import clickhouse_connect
import psycopg
import pytest

from config import DbtSettings, WarehouseSettings
from loaders.ops.artifacts import land_artifacts
from pipelines import SOURCES, run_source
from stack import run as run_module
from stack.dbt_build import run_dbt
from stack.dbt_state import dbt_scope, dbt_scope_args, last_passed_build
from tests.conftest import set_faults
from tests.dbt.conftest import table_rows

# Columns holding the time of the build that wrote the row, by design (the
# ETL validity of the snapshot-backed marts, review_mart's "measures last
# changed"): they differ between any two builds of the same data.
RUN_TIME_COLUMNS = {"last_updated", "etl_valid_from", "etl_valid_to"}


def built_tables(target: Path) -> dict[str, tuple[str, str]]:
    """The tables (not views) of the warehouse build: name -> (schema, table)."""
    manifest = json.loads((target / "manifest.json").read_text())
    return {
        node["name"]: (node["schema"], node["alias"])
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and node["config"]["materialized"] in ("incremental", "table")
    }


def views_of(conninfo: str, day: dt.date) -> int:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "select views from marts.app_metrics_daily where event_date = %s", (day,)
        ).fetchone()
    assert row is not None, day
    return int(row[0])


def reloaded_day_equals_a_full_refresh_and_tests_check_new_rows(
    warehouse: str, clickhouse_db, target: Path, logs: Path, capsys
) -> None:
    """Day 1 lands again with late events, built with its logical day (the
    documented way); every table then equals a `--full-refresh` of the same data. The
    daily builds test only what is new since the last build that passed: a bad row
    older than that passes them and fails the full check; a new one fails make run
    (exit 1, naming the failing test), which then records nothing, so the next run
    tests it again."""
    wh, settings = WarehouseSettings.from_env(), DbtSettings.from_env()
    tested = last_passed_build(wh, settings)
    assert tested is not None and tested.day == dt.date(2026, 10, 5)

    first_day = dt.date(2026, 10, 1)
    before = views_of(warehouse, first_day)
    ch = clickhouse_connect.get_client(
        host=clickhouse_db.host, port=clickhouse_db.port, database=clickhouse_db.database
    )
    ch.command(
        "INSERT INTO feed_actions SELECT * FROM feed_actions"
        f" WHERE toDate(time) = '{first_day}' AND action = 'view' LIMIT 40"
    )
    ch.close()
    for source in SOURCES:
        if source.daily:
            run_source(source, first_day)
    with dbt_scope(first_day, tested):
        rebuilt = run_dbt(["build", *dbt_scope_args(False)], logs)
    assert rebuilt.success, rebuilt.failures
    assert views_of(warehouse, first_day) == before + 40

    tables = built_tables(target)
    assert {"stg_mongo__event_logs", "stg_oltp__orders", "int_events_user_daily",
            "app_metrics_daily", "feed_anomalies", "f_sales", "review_mart",
            "support_efficiency", "user_activity", "d_customer"} <= set(tables)  # fmt: skip
    incremental = {
        name: table_rows(warehouse, schema, table, RUN_TIME_COLUMNS)
        for name, (schema, table) in tables.items()
    }
    with dbt_scope(first_day, None):
        refreshed = run_dbt(["run", "--full-refresh"], logs)
    assert refreshed.success, refreshed.failures
    for name, (schema, table) in tables.items():
        assert table_rows(warehouse, schema, table, RUN_TIME_COLUMNS) == incremental[name], name
    # The rebuilt tables have their lookup indexes again.
    with psycopg.connect(warehouse) as conn:
        indexed = conn.execute(
            "select array_agg(substring(indexdef from '\\((.*)\\)$'))"
            " from pg_indexes where schemaname = 'staging' and tablename = 'stg_oltp__orders'"
        ).fetchone()[0]
    assert sorted(indexed) == ["batch_id", "loaded_at", "order_id"], indexed

    # A bad row loaded before the last passing build: the daily tests pass, the full check fails.
    with psycopg.connect(warehouse, autocommit=True) as conn:
        conn.execute(
            "insert into staging.stg_mongo__event_logs (event_id, document_id, updated_at,"
            " loaded_at, batch_id) values (null, 'bad-row', now(), %s, 0)",
            (tested.before - dt.timedelta(hours=1),),
        )
    select = ["test", "--select", "stg_mongo__event_logs"]
    with dbt_scope(first_day, tested):
        daily = run_dbt(select, logs)
    assert daily.success, daily.failures
    with dbt_scope(first_day, None):
        full = run_dbt(select, logs)
    assert any("not_null_stg_mongo__event_logs_event_id" in f for f in full.failures)

    # Loaded since: make run's daily build fails naming the test, and records no pass.
    with psycopg.connect(warehouse, autocommit=True) as conn:
        conn.execute(
            "update staging.stg_mongo__event_logs set loaded_at = now()"
            " where document_id = 'bad-row'"
        )
    capsys.readouterr()
    assert run_module.main() == 1
    failed = capsys.readouterr()
    assert "FAILED test not_null_stg_mongo__event_logs_event_id" in failed.out
    assert "dbt build failed" in failed.err
    assert last_passed_build(wh, settings) == tested


@pytest.mark.e2e
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
    with psycopg.connect(warehouse) as conn:
        (first_run_batches,) = conn.execute("select max(batch_id) from loader.batches").fetchone()

    assert run_module.main() == 0
    second = capsys.readouterr().out
    assert "incremental run for logical day 2026-10-03" in second
    assert "stg_mongo__event_logs" in second  # incremental models report merged rows
    # Each step's time, one line (make bench's scaling figures read it).
    assert re.search(r"^steps    start [\d.]+s · datagen [\d.]+s · load [\d.]+s · dbt [\d.]+s · "
                     r"dbt clickhouse [\d.]+s · summary [\d.]+s · report [\d.]+s · "
                     r"health [\d.]+s$", second, re.M)  # fmt: skip
    # The summary ends with the health line: both targets' builds passed.
    assert re.search(r"^health: last build .* UTC: clickhouse ok, dev ok, failing tests 0, "
                     r"lag \w+ \d+ messages.*, stalest source \w+",
                     second.splitlines()[-1])  # fmt: skip

    # Two days, two builds on each target: each invocation's artifacts kept once,
    # with its results; landing the same target folders again adds nothing.
    kept = "select target, count(*) from raw_ops.dbt_invocations group by 1 order by 1"
    results = "select count(*) from raw_ops.dbt_node_results"
    with psycopg.connect(warehouse) as conn:
        assert conn.execute(kept).fetchall() == [("clickhouse", 2), ("dev", 2)]
        n_results = conn.execute(results).fetchone()[0]
        assert n_results > 400
        for folder, target in ((tmp_path / "target", "dev"),
                               (tmp_path / "target" / "clickhouse", "clickhouse")):  # fmt: skip
            assert land_artifacts(conn, folder, target).invocations == 0
        assert conn.execute(kept).fetchall() == [("clickhouse", 2), ("dev", 2)]
        assert conn.execute(results).fetchone()[0] == n_results
        days = conn.execute(
            "select distinct logical_date from ops.fct_dbt_invocations order by 1"
        ).fetchall()
    assert days == [(dt.date(2026, 10, 2),), (dt.date(2026, 10, 3),)]

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
            "select min(_source_updated_at) from raw_mongo.event_logs where _batch_id > %s",
            (first_run_batches,),
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

    # The daily app report for the logical day, on disk (no Telegram configured),
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

    # The first build was the full check (every row, unit tests); the next ones are daily.
    assert "the full check: tests over every row, and the unit tests" in first
    assert "unit_tests" in first
    # The daily build recreated only the view whose SQL holds the run's day and
    # the six views reading staging tables (a table's rebuild drops the views on
    # it); a view dropped by hand has the next one recreate them all. Either way
    # every test ran (those of the views left in place too).
    assert "views: 7 recreated, the others unchanged since the last good build" in second

    # A day the partner's sales API is down (the app wrote 10-04): the run fails
    # saying so, and the next run lands that day's sales with its own (10-05).
    set_faults(api, fail_next=100, fail_status=503)
    assert run_module.main() == 1
    assert "sales API" in capsys.readouterr().err
    set_faults(api)
    # ... and is a health alert, written to disk (no Telegram configured), once.
    [alert] = (local_dirs / "reports" / "health").glob("run_failed-*/message.txt")
    assert alert.read_text().startswith("make run failed: ") and "sales API" in alert.read_text()

    with psycopg.connect(warehouse, autocommit=True) as conn:
        conn.execute("drop view staging.stg_sales_api__user_activity_log cascade")
    assert run_module.main() == 0
    third = capsys.readouterr().out
    assert "views: " not in third and "unchanged since the last good build" not in third
    with psycopg.connect(warehouse) as conn:
        found = conn.execute("select to_regclass('staging.stg_sales_api__user_activity_log')")
        assert found.fetchone()[0] is not None
        dates = conn.execute(
            "select distinct _increment_date from raw_sales_api.user_order_log order by 1"
        ).fetchall()
    assert [d[0] for d in dates] == [dt.date(2026, 10, d) for d in range(1, 6)]
    tests_run = [re.search(r"tests (\d+) ok", out).group(1) for out in (second, third)]
    assert tests_run[0] == tests_run[1], tests_run
    for out in (second, third):
        assert "tests checked what is new since the last build that passed" in out
        assert "unit_tests" not in out and " not ok" not in out
    reloaded_day_equals_a_full_refresh_and_tests_check_new_rows(
        warehouse, clickhouse_db, tmp_path / "target", tmp_path / "dbt-logs", capsys
    )
