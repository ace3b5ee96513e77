"""dbt_project rendered by Cosmos: one task per model that builds it and runs its tests.

Scheduled on the raw tables the project reads: it runs when every MongoDB
collection has landed, or when a sales API increment has. Parsed from the
manifest `dbt parse` writes, so parsing this file never runs dbt.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import AssetAll, AssetAny
from cosmos import DbtDag

from loaders.assets import RAW_MONGO, RAW_SALES
from stack.airflow_tasks import DEFAULT_ARGS, dbt_configs

dag = DbtDag(
    dag_id="dbt_transform",
    description=__doc__.splitlines()[0],
    schedule=AssetAny(AssetAll(*RAW_MONGO.values()), AssetAll(*RAW_SALES.values())),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    # A dbt failure is deterministic: fail at once, naming the model or test.
    default_args={**DEFAULT_ARGS, "retries": 0},
    tags=["dbt", "transform"],
    **dbt_configs(),
)
