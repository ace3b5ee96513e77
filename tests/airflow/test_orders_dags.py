"""The order system's DAGs run in-process (dag.test) against the ephemeral servers.

The simulation writes its first days into the OLTP database and publishes
their registrations; the OLTP and Kafka extract-load DAGs land them; loading
again lands nothing (the loaders' watermark and stored offsets), and after
the simulation's next day only what is new lands. The transform is the same Cosmos
rendering as the other sources' (tests/airflow/test_mongo_dags.py runs one).
"""

from __future__ import annotations

import psycopg
import pytest

from tests.airflow.conftest import simulate


def landed(conninfo: str) -> dict[str, int]:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "select stream, sum(rows_landed)::int from loader.batches"
            " where source in ('oltp', 'kafka') group by 1"
        ).fetchall()
    return dict(rows)


def run(dag, **kwargs) -> None:
    dag_run = dag.test(**kwargs)
    assert dag_run.state == "success", f"{dag.dag_id} ended {dag_run.state}"


@pytest.mark.e2e
def test_simulate_and_load_the_order_system_then_rerun_and_next_day(
    airflow_db,
    dagbag,
    mongo_db,
    oltp: str,
    kafka_topic: str,
    warehouse: str,
    local_dirs,
    monkeypatch,
) -> None:
    monkeypatch.setenv("DATAGEN_SCALE", "0.05")
    monkeypatch.setenv("DATAGEN_HISTORY_DAYS", "2")
    load_oltp = dagbag.dags["extract_load_oltp"]
    load_kafka = dagbag.dags["extract_load_kafka"]
    assert [o.uri for o in load_kafka.get_task("load").outlets] == [
        "postgres://warehouse:5432/warehouse/raw_kafka/new_users_events"
    ]

    simulate(dagbag, "mongo", "oltp")
    run(load_oltp)
    run(load_kafka)
    first = landed(warehouse)
    assert first["orders"] > 0 and first["order_details"] > first["orders"]
    assert first[kafka_topic] > 0  # the Kafka stream is named by its topic
    with psycopg.connect(oltp) as conn:
        users = conn.execute("select count(*) from users").fetchone()[0]
    assert first["users"] == users

    # Again with nothing new: nothing lands twice.
    run(load_oltp)
    run(load_kafka)
    assert landed(warehouse) == first

    # The clock's next day: new orders, status changes and registrations only.
    simulate(dagbag, "mongo", "oltp")
    run(load_oltp)
    run(load_kafka)
    second = landed(warehouse)
    assert second["orders"] > first["orders"]
    assert second[kafka_topic] > first[kafka_topic]
    with psycopg.connect(warehouse) as conn:
        versions, keys = conn.execute(
            "select count(*), count(distinct (order_id, updated_at)) from raw_oltp.orders"
        ).fetchone()
    assert versions == keys  # each version of an order landed exactly once
