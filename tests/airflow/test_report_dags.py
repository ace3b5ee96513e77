"""The report's and the alerts' DAGs, run in-process (dag.test) on the ephemeral warehouse.

The marts are made by hand (tests.reports.fixtures.py); what is checked here is
the scheduling: the report's day from its local trigger time, the wait for
the marts, the alerts' trigger on the anomalies being built.
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from tests.reports.fixtures import DAY
from tests.reports.test_alerts import slices

pytestmark = pytest.mark.e2e


def test_the_report_runs_at_its_local_time_and_the_alerts_after_the_anomalies(
    dagbag, monkeypatch
) -> None:
    from airflow.sdk import Asset

    from config import ReportSettings
    from include.reports import report_schedule

    report = dagbag.dags["daily_report"]
    # Simulated days (the default): a day's report once the warehouse built its events.
    assert report.timetable.asset_condition.uri == "dbt://store_analytics/tag/events"
    # Real days: 11:00 Moscow time, keyed by the day before.
    monkeypatch.setenv("AIRFLOW_SIMULATE", "false")
    real = report_schedule(ReportSettings.from_env())
    assert real.expression == "0 11 * * *" and str(real.timezone) == "Europe/Moscow"
    assert real.run_offset == -1 and real.key_format == "%Y-%m-%d"
    assert [t.task_id for t in report.topological_sort()] == ["marts_have_the_day", "send_report"]
    sensor = report.get_task("marts_have_the_day")
    assert sensor.mode == "reschedule"

    alerts = dagbag.dags["anomaly_alerts"]
    built = Asset(
        name="dbt_events_clickhouse_built", uri="dbt://store_analytics/tag/events_clickhouse"
    )
    assert list(alerts.timetable.asset_condition.objects) == [built]
    # The 15-minute DAG that builds feed_anomalies on ClickHouse emits that asset.
    assert built in dagbag.dags["dbt_anomalies_clickhouse"].get_task("built").outlets


def test_the_report_dag_sends_the_day_before_its_local_date(
    airflow_db, dagbag, app_metrics, bot_api, warehouse: str
) -> None:
    # 08:00 UTC on the 9th is 11:00 in Moscow: the report is for the 8th (DAY).
    run = dagbag.dags["daily_report"].test(
        logical_date=dt.datetime(2026, 10, 9, 8, 0, tzinfo=dt.UTC)
    )
    assert run.state == "success"
    assert [r.method for r in bot_api.requests] == ["sendMessage", "sendPhoto"]
    assert f"App report for {DAY:%A, %d %B %Y}" in bot_api.requests[0].fields()["text"]
    with psycopg.connect(warehouse) as conn:
        days = conn.execute("select report_date from reporting.daily_reports").fetchall()
    assert days == [(DAY,)]


def test_the_report_waits_for_the_marts_to_have_the_day(
    dagbag, app_metrics, bot_api, monkeypatch
) -> None:
    import include.reports

    sensor = dagbag.dags["daily_report"].get_task("marts_have_the_day")
    monkeypatch.setattr(include.reports, "_report_day", lambda: DAY + dt.timedelta(days=1))
    assert sensor.python_callable().is_done is False  # not built yet: poke again later
    monkeypatch.setattr(include.reports, "_report_day", lambda: DAY)
    assert sensor.python_callable().is_done is True
    assert bot_api.requests == []  # the sensor only looks


def test_the_alerts_dag_sends_new_flags(
    airflow_db, dagbag, warehouse: str, bot_api, local_dirs, monkeypatch
) -> None:
    monkeypatch.setenv("ALERTS_DBT_TARGET", "warehouse")
    with psycopg.connect(warehouse) as conn, conn.cursor() as cur:
        cur.execute(
            "create schema marts; create table marts.feed_anomalies (event_date date,"
            " slice_start timestamp, metric text, value double precision,"
            " lower_bound double precision, upper_bound double precision, is_anomaly boolean)"
        )
        cur.executemany(
            "insert into marts.feed_anomalies values (%s, %s, %s, %s, %s, %s, %s)",
            slices(6, {(4, "likes"): 10.0}),
        )
    dag = dagbag.dags["anomaly_alerts"]
    assert dag.test().state == "success"
    assert [r.method for r in bot_api.requests] == ["sendMessage", "sendPhoto"]
    assert dag.test().state == "success"  # nothing new: nothing sent
    assert len(bot_api.requests) == 2
