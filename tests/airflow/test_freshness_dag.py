"""The hourly freshness check runs in-process (dag.test) against the ephemeral warehouse."""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
import pytest


def raw_tables(manifest: Path) -> list[str]:
    """The raw tables with a freshness rule (the platform's own tables have none)."""
    sources = json.loads(manifest.read_text())["sources"].values()
    return sorted(
        f"{s['schema']}.{s['identifier']}"
        for s in sources
        if any(((s.get("freshness") or {}).get(r) or {}).get("count")
               for r in ("warn_after", "error_after"))
    )  # fmt: skip


def land(conninfo: str, tables: list[str], hours_ago: dict[str, int]) -> None:
    """Each raw table as far as freshness sees it: a last landing ``hours_ago`` (default 1)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for table in tables:
            schema = table.split(".")[0]
            conn.execute(f"create schema if not exists {schema}")
            conn.execute(f"drop table if exists {table}")
            conn.execute(f"create table {table} (_loaded_at timestamptz)")
            conn.execute(
                f"insert into {table} values (now() - %s * interval '1 hour')",
                (hours_ago.get(table, 1),),
            )


def task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


@pytest.mark.e2e
def test_skipped_until_every_table_landed_then_a_stale_one_fails_by_name(
    airflow_db, dagbag, manifest: Path, warehouse: str, local_dirs, capsys
) -> None:
    dag = dagbag.dags["dbt_source_freshness"]
    tables = raw_tables(manifest)

    # A fresh warehouse: nothing has landed, nothing to check (not a failure).
    run = dag.test()
    assert run.state == "success"
    assert task_states(run) == {"sources_landed": "success", "freshness": "skipped"}

    # Every table but one: still skipped.
    land(warehouse, tables[1:], {})
    run = dag.test()
    assert task_states(run)["freshness"] == "skipped"
    assert tables[0] in capsys.readouterr().out

    # Every table made (the first load of any source makes them all), that one still
    # empty: still skipped, not an error for a table nothing has landed in.
    with psycopg.connect(warehouse, autocommit=True) as conn:
        conn.execute(f"create table {tables[0]} (_loaded_at timestamptz)")
    run = dag.test()
    assert task_states(run)["freshness"] == "skipped"
    assert tables[0] in capsys.readouterr().out

    # All landed within the hour: checked, and passes.
    land(warehouse, tables, {})
    run = dag.test()
    assert run.state == "success"
    assert task_states(run)["freshness"] == "success"
    capsys.readouterr()

    # One source last landed three days ago (past error_after, 50 h): the run
    # fails, and says which.
    stale = "raw_mongo.support_tickets"
    land(warehouse, [stale], {stale: 72})
    run = dag.test()
    assert run.state == "failed"
    assert task_states(run)["freshness"] == "failed"
    assert re.search(r"completed with errors: .*support_tickets", capsys.readouterr().out)
    # The failed task is one health alert (its on_failure_callback), on disk without a bot.
    [alert] = (local_dirs / "reports" / "health").glob("task_failed-*/message.txt")
    assert alert.read_text().startswith("Airflow task failed: dbt_source_freshness.freshness")
