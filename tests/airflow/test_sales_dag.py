"""The sales API DAG runs in-process (dag.test) against the local API server."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

COUNT = "select _increment_date, count(*) from raw_sales_api.user_order_log group by 1"


@pytest.mark.e2e
def test_sales_dag_loads_the_logical_day_and_a_rerun_replaces_it(
    airflow_db, dagbag, api, warehouse: str, local_dirs
) -> None:
    dag = dagbag.dags["extract_load_sales_api"]
    day = dt.datetime(2026, 10, 5, tzinfo=dt.UTC)

    def run_and_count() -> list[tuple]:
        dag_run = dag.test(logical_date=day)
        assert dag_run.state == "success"
        assert {ti.state for ti in dag_run.get_task_instances()} == {"success"}
        with psycopg.connect(warehouse) as conn:
            return conn.execute(COUNT).fetchall()

    first = run_and_count()
    assert len(first) == 1 and first[0][0] == day.date() and first[0][1] > 0
    assert run_and_count() == first  # the same logical date again: replaced, not doubled
