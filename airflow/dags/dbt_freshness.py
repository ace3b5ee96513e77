"""Airflow: ``dbt_source_freshness``, every raw table's freshness on the wall clock.

dbt's freshness rules (``loaded_at``, warn after 26 hours, error after 50)
ask whether a source system still lands data: a question about time, not
about a day's transform, which runs because its day has just landed. So it
is checked on a schedule of its own (AIRFLOW_FRESHNESS_CRON, hourly), by one
`dbt source freshness`; a source past its error rule fails the run, naming
it. Until every raw table has landed once there is nothing to check: the
run is skipped.
"""

from __future__ import annotations

from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.sdk import DAG, CronTriggerTimetable
from cosmos import settings as cosmos_settings
from cosmos.operators.local import DbtSourceLocalOperator

from config import AirflowSettings
from include.dbt_profile import profile_config
from include.defaults import DBT_PROJECT_DIR, DEFAULT_ARGS, START_DATE, manifest_path
from include.health import keep_artifacts
from include.tasks import sources_exist

FRESHNESS_CACHE = cosmos_settings.cache_dir / "dbt_source_freshness"

with DAG(
    dag_id="dbt_source_freshness",
    description="dbt source freshness of every raw table, on the wall clock",
    schedule=CronTriggerTimetable(AirflowSettings.from_env().freshness_cron, timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    # Stale data is not transient: report it at once.
    default_args={**DEFAULT_ARGS, "retries": 0},
    tags=["dbt", "freshness"],
) as dbt_source_freshness:
    ShortCircuitOperator(
        task_id="sources_landed", python_callable=sources_exist
    ) >> DbtSourceLocalOperator(
        task_id="freshness",
        project_dir=str(DBT_PROJECT_DIR),
        profile_config=profile_config(),
        manifest_filepath=str(manifest_path()),
        install_deps=False,
        # Where Cosmos keeps dbt's partial parse between runs (the DbtDags get
        # one of their own): without it every hourly run parses the whole
        # project again, twice the CPU of the check itself.
        cache_dir=FRESHNESS_CACHE,
        # The freshness results go to raw_ops (fct_source_freshness shows them).
        callback=keep_artifacts,
    )
