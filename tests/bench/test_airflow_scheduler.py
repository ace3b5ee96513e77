"""Two simulated days under Airflow's real scheduler equal `make run`'s.

``tests.bench.airflow_days`` runs in the background from the start of the
session (tests/bench/conftest.py) and makes the checks itself, exiting 1 on
any: Airflow on free ports in a throwaway stack, the simulation's first day
when it starts and the next one triggered, every loader, transform and the
report run by data-aware scheduling; then `make run` twice in a second stack
from the same seed; and a transform run with a model broken on purpose (each
failed task one health alert), then the platform health DAG.
Here: it passed, and its report shows what it checked.
"""

from __future__ import annotations

import re

import pytest

from tests.dag_ids import DAY_DAGS

pytestmark = pytest.mark.bench


@pytest.mark.timeout(2400)  # waits for its background run (tests/bench/conftest.py)
def test_two_days_under_the_scheduler_equal_make_run(airflow_days_output: str) -> None:
    out = airflow_days_output
    days = re.findall(r"^== (\d{4}-\d\d-\d\d): ", out, re.M)
    assert len(days) == 2 and days[0] < days[1], out[-2000:]
    # Every day-processing DAG: one successful run per day, keyed by that day.
    for dag_id in DAY_DAGS:
        assert len(re.findall(rf"^  {dag_id}\s+success \d+s$", out, re.M)) == 2, dag_id
    assert "FAILED" not in out and "retried or failed" not in out
    compared = re.findall(r"^  marts\.\S+\s+(\d+) rows  (.+)$", out, re.M)
    assert compared and all(verdict == "= make run" for _, verdict in compared)
    assert sum(int(rows) for rows, _ in compared) > 0
    # A broken model fails its own task and the build, named in both logs.
    assert re.search(r"^== a broken stg_mongo__moderation_queue: the run failed ==$", out, re.M)
    failed = re.search(r"^  failed: (.*)$", out, re.M)
    assert failed and "stg_mongo__moderation_queue.run" in failed.group(1).split(", ")
    # Each failed task raised one health alert (its DAG's on_failure_callback).
    alerts = re.search(r"^  failure alerts: (\d+) ", out, re.M)
    assert alerts and int(alerts.group(1)) == len(failed.group(1).split(", "))
    assert re.search(r"^  platform_health then: success$", out, re.M)
    # Every Cosmos task's dbt invocation kept its artifacts in raw_ops, the failed one too.
    kept = re.search(r"^  dbt invocations kept in raw_ops: (\d+), failed: (\d+)$", out, re.M)
    assert kept and int(kept.group(1)) >= 2 and int(kept.group(2)) >= 1
