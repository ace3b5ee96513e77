"""Airflow: ``reconcile``, every source compared with its raw tables, what differs relanded.

One task per source with a ``loaders/<source>/reconcile.py``. The DAG runs
daily (AIRFLOW_RECONCILE_CRON); each task reconciles its source when
LOADER_FULL_CHECK_HOURS (a week by default) have passed since the last time,
the schedule `make run` keeps too (if both start at once, the streams' locks
take them in turn and the second finds everything equal). What a task
relands lands in new loader batches: the source's next transform builds it.
"""

from __future__ import annotations

from airflow.sdk import DAG, CronTriggerTimetable, task

from config import AirflowSettings
from include.defaults import DEFAULT_ARGS, LOADER_RETRIES, START_DATE
from loaders.core.reconcile import reconcilers

with DAG(
    dag_id="reconcile",
    description="every source against its raw tables, per partition; relands what differs",
    schedule=CronTriggerTimetable(AirflowSettings.from_env().reconcile_cron, timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, **LOADER_RETRIES},
    tags=["reconcile"],
) as reconcile:
    for name in sorted(reconcilers()):

        @task(task_id=name)
        def reconcile_source(source: str = name) -> list[str]:
            from loaders.core.reconcile import reconcile_due

            lines = [r.line() for r in reconcile_due([source])]
            for line in lines:
                print(line)
            return lines or [f"{source}: not due (LOADER_FULL_CHECK_HOURS)"]

        reconcile_source()
