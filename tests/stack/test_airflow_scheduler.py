"""Two simulated days under Airflow's real scheduler equal `make run`'s (issue 11's acceptance).

``tests.bench.airflow_days`` does the work and the checks: Airflow on free
ports in a throwaway stack, the simulation's first day at start and the next
one triggered, every loader, transform and the report run by data-aware
scheduling; then `make run` twice in a second stack from the same seed.
"""

from __future__ import annotations

import pytest

from tests.bench.airflow_days import DAY_DAGS, report, run_two_days


@pytest.mark.slow
def test_two_days_under_the_scheduler_equal_make_run() -> None:
    result = run_two_days(datagen_scale=0.02, execution_mode="local")
    assert report(result) == []
    # Each day-processing DAG ran once per day, named by its partition key.
    assert len(result["days"]) == 2 and result["days"][0] < result["days"][1]
    for dag_id in DAY_DAGS:
        keys = sorted(r.day for r in result["runs"] if r.dag_id == dag_id)
        assert keys == result["days"], dag_id
    assert result["retried_or_failed"] == []
    assert result["airflow_marts"] == result["make_run_marts"]
    assert sum(len(rows) for rows in result["airflow_marts"].values()) > 0
