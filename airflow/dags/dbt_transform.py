"""dbt_project rendered by Cosmos: one task per model that builds it and runs its tests.

Scheduled on the raw tables the project reads, so it runs when they have
landed. Parsed from the manifest `dbt parse` writes, so parsing this file
never runs dbt.
"""

from __future__ import annotations

import pendulum
from cosmos import DbtDag

from loaders.assets import RAW_MONGO
from stack.airflow_tasks import DEFAULT_ARGS, dbt_configs

dag = DbtDag(
    dag_id="dbt_transform",
    description=__doc__.splitlines()[0],
    schedule=list(RAW_MONGO.values()),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    # A dbt failure is deterministic: fail at once, naming the model or test.
    default_args={**DEFAULT_ARGS, "retries": 0},
    tags=["dbt", "transform"],
    **dbt_configs(),
)
