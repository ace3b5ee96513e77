"""The order system's DAGs run in-process (dag.test) against the ephemeral servers.

The simulator writes a day into the OLTP database and publishes its
registrations; the OLTP and Kafka extract-load DAGs land them; the same
logical date again lands nothing (the loaders' watermark and stored offsets),
the next date lands only what is new. The transform is the same Cosmos
rendering as the other sources' (tests/airflow/test_mongo_dags.py runs one).
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

D = dt.datetime(2026, 10, 2, tzinfo=dt.UTC)


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


@pytest.mark.slow
def test_simulate_and_load_the_order_system_then_rerun_and_next_day(
    airflow_db, dagbag, oltp: str, kafka_topic: str, warehouse: str, local_dirs, monkeypatch
) -> None:
    monkeypatch.setenv("DATAGEN_SCALE", "0.05")
    monkeypatch.setenv("DATAGEN_HISTORY_DAYS", "2")
    simulate = dagbag.dags["simulate_oltp"]
    load_oltp = dagbag.dags["extract_load_oltp"]
    load_kafka = dagbag.dags["extract_load_kafka"]
    assert [o.uri for o in load_kafka.get_task("load").outlets] == [
        "postgres://warehouse:5432/warehouse/raw_kafka/new_users_events"
    ]

    run(simulate, logical_date=D)
    run(load_oltp)
    run(load_kafka)
    first = landed(warehouse)
    assert first["orders"] > 0 and first["order_details"] > first["orders"]
    assert first[kafka_topic] > 0  # the Kafka stream is named by its topic
    with psycopg.connect(oltp) as conn:
        users = conn.execute("select count(*) from users").fetchone()[0]
    assert first["users"] == users

    # The same date again: the simulator skips it, and nothing lands twice.
    run(simulate, logical_date=D)
    run(load_oltp)
    run(load_kafka)
    assert landed(warehouse) == first

    # The next date: new orders, status changes and registrations only.
    run(simulate, logical_date=D + dt.timedelta(days=1))
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
