"""Day after day of `make run` stays equal to a full refresh, and its tests check the new rows.

`make run`'s job on the ephemeral servers: two days of history, then two
more days, each incremental; then the first history day is landed again with
events that arrived late (the documented way: reland the day, build with its
logical day). Every table the warehouse build made (incremental models and
the marts, the snapshot-backed ones among them) must then hold exactly what
a `--full-refresh` of the same data holds.

The daily builds test only the rows they wrote (meta.new_rows, see
dbt_project/macros/run_scope.sql); the weekly full check tests every row:
a bad row outside the window passes the daily tests and fails the full
check, and the same row inside the window fails the daily tests.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import clickhouse_connect
import psycopg
import pytest

from pipelines import SOURCES, run_source
from stack import run as run_module
from stack.run import _dbt_scope, _scope_args, run_dbt
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


@pytest.mark.slow
def test_days_and_a_reloaded_day_equal_a_full_refresh_and_tests_check_new_rows(
    mongo_db, warehouse, api, oltp, kafka_topic, clickhouse_db, local_dirs, tmp_path: Path,
    monkeypatch, capsys,
) -> None:  # fmt: skip
    target = tmp_path / "target"
    monkeypatch.setenv("DBT_TARGET_PATH", str(target))
    monkeypatch.setenv("DATAGEN_SCALE", "0.03")
    monkeypatch.setenv("DATAGEN_HISTORY_DAYS", "2")
    logs = tmp_path / "dbt-logs"

    outputs = []
    for _ in range(3):
        assert run_module.main() == 0
        outputs.append(capsys.readouterr().out)
    # The first build is the full check (every row, unit tests); the next ones are daily.
    assert "tests checked every row, unit tests ran" in outputs[0]
    assert "unit_tests" in outputs[0]
    for out in outputs[1:]:
        assert "incremental run for logical day" in out
        assert "tests checked the rows this build wrote" in out
        assert "unit_tests" not in out and " not ok" not in out

    # Day 1 lands again with late events: 40 more views in ClickHouse.
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
    with _dbt_scope(first_day, full_check=False):
        rebuilt = run_dbt(["build", *_scope_args(False)], logs)
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
    with _dbt_scope(first_day, full_check=False):
        refreshed = run_dbt(["run", "--full-refresh"], logs)
    assert refreshed.success, refreshed.failures
    for name, (schema, table) in tables.items():
        assert table_rows(warehouse, schema, table, RUN_TIME_COLUMNS) == incremental[name], name

    # A bad row outside the daily window: the daily tests pass, the full check fails.
    with psycopg.connect(warehouse, autocommit=True) as conn:
        conn.execute(
            "insert into staging.stg_mongo__event_logs (event_id, document_id, updated_at,"
            " loaded_at, batch_id) select null, 'bad-row', now(), max(loaded_at) - interval"
            " '5 days', 0 from staging.stg_mongo__event_logs"
        )
    select = ["test", "--select", "stg_mongo__event_logs"]
    with _dbt_scope(first_day, full_check=False):
        daily = run_dbt(select, logs)
    assert daily.success, daily.failures
    with _dbt_scope(first_day, full_check=True):
        full = run_dbt(select, logs)
    assert not full.success
    assert any("not_null_stg_mongo__event_logs_event_id" in f for f in full.failures)

    # The same row written by the latest build: the daily tests fail on it.
    with psycopg.connect(warehouse, autocommit=True) as conn:
        conn.execute(
            "update staging.stg_mongo__event_logs set loaded_at = (select max(loaded_at)"
            " from staging.stg_mongo__event_logs) where document_id = 'bad-row'"
        )
    with _dbt_scope(first_day, full_check=False):
        daily = run_dbt(select, logs)
    assert any("not_null_stg_mongo__event_logs_event_id" in f for f in daily.failures)
