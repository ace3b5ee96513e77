"""The events DAGs run in-process (dag.test) against the ephemeral servers.

The simulator writes a logical day into ClickHouse; the extract-load DAG's two
parallel tasks land that day of both tables; the same date again replaces the
day (nothing doubles); the next date lands the next day. The transforms are
Cosmos renderings like the other sources' (tests/airflow/test_mongo_dags.py
runs one; test_dag_integrity.py checks these).
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from datagen import events_writer
from tests.airflow.conftest import simulate

D = dt.datetime(2026, 10, 2, tzinfo=dt.UTC)


def raw_counts(conninfo: str) -> dict[tuple[str, dt.date], int]:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "select 'feed_actions', _event_date, count(*) from raw_events.feed_actions group by 2"
            " union all select 'message_actions', _event_date, count(*)"
            " from raw_events.message_actions group by 2"
        ).fetchall()
    return {(table, day): n for table, day, n in rows}


def source_counts(settings) -> dict[tuple[str, dt.date], int]:
    client = events_writer.client(settings)
    try:
        return {
            (table, day): n
            for table in events_writer.TABLES
            for day, n in client.query(
                f"SELECT toDate(time) AS d, count() FROM {table} GROUP BY d"
            ).result_rows
        }
    finally:
        client.close()


def run(dag, **kwargs) -> None:
    dag_run = dag.test(**kwargs)
    assert dag_run.state == "success", f"{dag.dag_id} ended {dag_run.state}"


@pytest.mark.e2e
def test_simulate_and_load_events_then_rerun_and_next_day(
    airflow_db, dagbag, mongo_db, clickhouse_db, warehouse: str, local_dirs, monkeypatch
) -> None:
    monkeypatch.setenv("DATAGEN_SCALE", "0.05")
    monkeypatch.setenv("DATAGEN_HISTORY_DAYS", "2")
    load = dagbag.dags["extract_load_events"]
    day = D.date()

    simulate(dagbag, "mongo", "events")  # the history: the days up to D
    # A run without a partition key (dag.test) lands its logical date's day.
    run(load, logical_date=D)
    source = source_counts(clickhouse_db)
    first = raw_counts(warehouse)
    assert first[("feed_actions", day)] == source[("feed_actions", day)] > 0
    assert first[("message_actions", day)] == source[("message_actions", day)] > 0

    # The same date again: the day is replaced, nothing doubles.
    run(load, logical_date=D)
    assert raw_counts(warehouse) == first

    # The clock's next day lands; the earlier ones stay as they were.
    simulate(dagbag, "mongo", "events")
    run(load, logical_date=D + dt.timedelta(days=1))
    second = raw_counts(warehouse)
    assert (
        second[("feed_actions", day + dt.timedelta(days=1))]
        == source_counts(clickhouse_db)[("feed_actions", day + dt.timedelta(days=1))]
    )
    assert {k: v for k, v in second.items() if k[1] <= day} == {
        k: v for k, v in first.items() if k[1] <= day
    }


@pytest.mark.e2e
def test_the_transforms_on_clickhouse_build_the_marts_there(
    airflow_db, dagbag, mongo_db, clickhouse_db, warehouse: str, local_dirs, monkeypatch
) -> None:
    """Cosmos with the clickhouse profile target: the 15-minute DAG builds the
    slices and their anomaly bounds in ClickHouse, and nothing in the warehouse.

    One run of this kind of DAG (Cosmos on ClickHouse). The daily ClickHouse
    DAG (every events model but the slices) runs for two days, without a
    failure, under the real scheduler in tests/bench/test_airflow_scheduler.py;
    the models' values on ClickHouse are tests/dbt/test_events_models.py's
    (equal to the warehouse's) and make run's (tests/stack/test_run.py)."""
    monkeypatch.setenv("DATAGEN_SCALE", "0.05")
    monkeypatch.setenv("DATAGEN_HISTORY_DAYS", "1")
    monkeypatch.setenv("DATAGEN_START_DATE", D.date().isoformat())
    simulate(dagbag, "mongo", "events")
    run(dagbag.dags["extract_load_events"], logical_date=D)
    run(dagbag.dags["dbt_anomalies_clickhouse"])
    client = events_writer.client(clickhouse_db)
    try:
        slices = client.command("SELECT count() FROM marts.feed_anomalies")
        days = client.query("SELECT DISTINCT toDate(slice_start) FROM marts.feed_anomalies")
    finally:
        client.close()
    assert slices > 6 * 90  # both metrics' slices of the day, with their bounds
    assert days.result_rows == [(D.date(),)]
    # Nothing went to the warehouse.
    with psycopg.connect(warehouse) as conn:
        built = conn.execute(
            "select count(*) from information_schema.tables where table_schema = 'marts'"
        ).fetchone()[0]
    assert built == 0


def test_the_15_minute_dag_waits_for_the_first_events(clickhouse_db, dagbag) -> None:
    """A fresh stack has no event tables until the simulation's first day: skip, not fail."""
    from include.tasks import events_exist

    assert events_exist() is False  # the test's database does not even exist yet
    client = events_writer.client(clickhouse_db)
    try:
        assert events_exist() is False  # a database, no tables yet
        events_writer.ensure_tables(client)  # what the simulator's first day does
    finally:
        client.close()
    assert events_exist() is True
    gate = dagbag.dags["dbt_anomalies_clickhouse"].get_task("events_exist")
    assert gate.downstream_task_ids == {
        "stg_events__feed_actions_model_build",
        "stg_events__message_actions_model_build",
    }
