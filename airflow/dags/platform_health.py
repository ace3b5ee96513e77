"""Airflow: ``platform_health``, the ops models and the health alerts, hourly.

The ops models (models/marts/ops) are views over dbt's kept artifacts and
the loaders' control tables: built here (AIRFLOW_HEALTH_CRON), their tests
run, and then the alerts they raise go out once each through the report's
delivery (``python -m reports health``): a test that started failing, a
table's rejects, a volume anomaly, a stale source. The alerts run even when
an ops test failed: that failure is an alert too. A failed task anywhere is
alerted by its own DAG's on_failure_callback (include/health.py).
"""

from __future__ import annotations

from airflow.sdk import CronTriggerTimetable, task

from config import AirflowSettings
from include.transform import transform_dag

platform_health = transform_dag(
    "ops",
    CronTriggerTimetable(AirflowSettings.from_env().health_cron, timezone="UTC"),
    "the platform health models (ops), then the health alerts they raise",
    with_sources=False,
    dag_id="platform_health",
)

if platform_health is not None:
    with platform_health:

        @task(task_id="health_alerts", trigger_rule="all_done")
        def health_alerts() -> list[str]:
            from reports import health

            lines = [sent.line() for sent in health.send()] + [health.health_line()]
            for line in lines:
                print(line)
            return lines

        platform_health.get_task("built") >> health_alerts()
