"""dbt invocations side by side on a new warehouse both pass their on-run-start.

Airflow's transform DAGs are separate dbt invocations that can start at the same
moment. Their on-run-start creates the schemas and the quarantine table under an
advisory lock; dbt runs hooks in a transaction it leaves open, so the hook must
commit before it releases the lock, or the next invocation takes the lock, does
not see the uncommitted table, and fails on pg_type's unique index once the
first one commits. Here the first invocation's hook is held open exactly as dbt
leaves it, with the SQL dbt compiled, and a second one runs it meanwhile.
"""

from __future__ import annotations

import threading

import psycopg
import pytest

from loaders.core.raw_tables import ensure_raw_tables
from loaders.raw_tables import all_raw_tables
from stack.dbt_build import run_dbt


@pytest.mark.e2e
def test_a_second_invocation_waits_for_the_first_ones_objects(warehouse, dbt_target, tmp_path):
    with psycopg.connect(warehouse) as conn:
        ensure_raw_tables(conn, all_raw_tables())
    summary = run_dbt(["run", "--select", "stg_oltp__product_categories"], tmp_path / "dbt-logs")
    assert summary.success, summary.failures
    [hook] = (dbt_target / "compiled").rglob("store_analytics-on-run-start-0.sql")
    hook_sql = hook.read_text()
    assert "quarantined_rows" in hook_sql
    with psycopg.connect(warehouse, autocommit=True) as conn:  # back to a new warehouse
        conn.execute("drop schema audit cascade")

    first = psycopg.connect(warehouse)  # not autocommit: a transaction dbt never commits
    first.execute(hook_sql)
    errors: list[BaseException] = []

    def second_invocation() -> None:
        try:
            with psycopg.connect(warehouse) as conn:
                conn.execute(hook_sql)
        except psycopg.Error as exc:  # reported by the assert below
            errors.append(exc)

    worker = threading.Thread(target=second_invocation)
    worker.start()
    worker.join(timeout=1)  # still waiting on the first one, if it holds anything
    first.commit()
    first.close()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert errors == []
    with psycopg.connect(warehouse) as conn:
        made = conn.execute("select to_regclass('audit.quarantined_rows') is not null")
        assert made.fetchone()[0]
