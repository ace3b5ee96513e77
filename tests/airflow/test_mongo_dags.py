"""The MongoDB DAGs run in-process (dag.test) against the ephemeral servers.

The simulation's first days, the loads and transform again with nothing new
(nothing doubles, marts unchanged), then the simulation's next day
(incremental) - the way the scheduler runs them.

The Cosmos transform runs on a small selection (a few models and the tasks
upstream of them): every Cosmos task is a dbt invocation of its own, and what
this shows (Airflow runs the dbt graph, model by model, day after day) does
not need every model. Every model of every transform DAG runs under the real
scheduler in tests/bench/test_airflow_scheduler.py, and the marts' values
are checked by dbt builds (tests/test_end_to_end.py, tests/stack/test_run.py).
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from pymongo.database import Database

from datagen.mongo_writer import generated_days
from tests.airflow.conftest import simulate


def snapshot(conninfo: str) -> dict[str, list[tuple]]:
    queries = {
        "raw_counts": "select stream, sum(rows_landed) from loader.batches group by 1 order by 1",
        "review_mart": "select * from marts.review_mart order by product_id",
        "sessions": "select count(*), count(distinct session_id)"
        " from staging.stg_mongo__user_sessions",
    }
    with psycopg.connect(conninfo) as conn:
        return {name: conn.execute(q).fetchall() for name, q in queries.items()}


# A mart, and an incremental staging model (nothing may double on a rerun).
SELECTION = ["review_mart", "stg_mongo__user_sessions"]


def selected(dag, models: list[str]):
    """The DAG cut down to ``models``' build tasks and every task upstream of them."""
    return dag.partial_subset(
        task_ids=[f"{model}_model_build" for model in models], include_upstream=True
    )


def run(dag, **kwargs) -> None:
    dag_run = dag.test(**kwargs)
    assert dag_run.state == "success", f"{dag.dag_id} ended {dag_run.state}"


@pytest.mark.e2e
def test_generate_load_transform_rerun_and_next_day(
    airflow_db, dagbag, mongo_db: Database, warehouse: str, local_dirs, monkeypatch
) -> None:
    monkeypatch.setenv("DATAGEN_SCALE", "0.05")
    monkeypatch.setenv("DATAGEN_HISTORY_DAYS", "2")
    load = dagbag.dags["extract_load_mongo"]
    transform = selected(dagbag.dags["dbt_transform_mongo"], SELECTION)
    assert len(transform.task_ids) < len(dagbag.dags["dbt_transform_mongo"].task_ids) / 2

    simulate(dagbag, "mongo")  # the first run of the clock: the history's days
    assert generated_days(mongo_db) == [dt.date(2026, 10, 1), dt.date(2026, 10, 2)]
    run(load)
    run(transform)
    first = snapshot(warehouse)
    assert first["review_mart"]
    total, distinct = first["sessions"][0]
    assert total == distinct > 0

    # Again with nothing new: loads land nothing, marts stay.
    run(load)
    run(transform)
    assert snapshot(warehouse) == first

    # The clock's next day: only what is new is processed.
    simulate(dagbag, "mongo")
    assert generated_days(mongo_db)[-1] == dt.date(2026, 10, 3)
    run(load)
    run(transform)
    second = snapshot(warehouse)
    assert second["sessions"][0][0] > first["sessions"][0][0]
    assert second["sessions"][0][0] == second["sessions"][0][1]
    assert len(second["review_mart"]) >= len(first["review_mart"])


@pytest.mark.e2e
def test_a_failing_model_fails_the_run_naming_it(
    airflow_db, dagbag, mongo_db: Database, warehouse: str, local_dirs
) -> None:
    from datagen.mongo_writer import write_day
    from datagen.population import Population
    from loaders.mongo.job import load_all

    write_day(mongo_db, Population(3, 0.05, dt.date(2026, 10, 1)), dt.date(2026, 10, 1))
    when = dt.datetime(2026, 10, 1, 12)
    # A status outside the list: quarantined, which does not fail anything by itself...
    mongo_db.support_tickets.insert_one(
        {"ticket_id": "TCK-BAD", "user_id": 1, "status": "escalated", "issue_type": "bug",
         "created_at": when, "messages": [], "updated_at": when}
    )  # fmt: skip
    load_all()
    # ...but here the quarantine refuses that rule's rows (a check of its own), so the
    # tickets' model fails in its post-hook, in its own task.
    with psycopg.connect(warehouse, autocommit=True) as conn:
        conn.execute("create schema if not exists audit")
        conn.execute(
            "create table audit.quarantined_rows (model text, row_key text, row jsonb,"
            " quarantined_at timestamptz default now(),"
            " rule text check (rule <> 'status_known'))"
        )
    dag = selected(dagbag.dags["dbt_transform_mongo"], ["support_efficiency", "review_mart"])
    dag_run = dag.test()
    assert dag_run.state == "failed"
    failed = {ti.task_id for ti in dag_run.get_task_instances() if ti.state == "failed"}
    assert failed == {"stg_mongo__support_tickets_model_build"}
    # Downstream of the failure nothing was built; unrelated models were.
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states["support_efficiency_model_build"] == "upstream_failed"
    assert states["review_mart_model_build"] == "success"
