"""dbt_project rendered by Cosmos, one DAG per source system.

Each DAG selects the models tagged with its source (staging -> marts) and is
scheduled on that source's raw tables, so it runs when they have landed and
checks only their freshness. One task per model or snapshot builds it and
runs its tests. Parsed from the manifest `dbt parse` writes: parsing this
file never runs dbt.
"""

from __future__ import annotations

import pendulum
from cosmos import DbtDag

from loaders.assets import RAW_MONGO, RAW_SALES
from stack.airflow_tasks import DEFAULT_ARGS, dbt_configs

for source, raw_tables in (("mongo", RAW_MONGO), ("sales_api", RAW_SALES)):
    globals()[f"dbt_transform_{source}"] = DbtDag(
        dag_id=f"dbt_transform_{source}",
        description=f"dbt models of the {source} source, built when its raw tables land",
        schedule=list(raw_tables.values()),
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        # A dbt failure is deterministic: fail at once, naming the model or test.
        default_args={**DEFAULT_ARGS, "retries": 0},
        tags=["dbt", "transform", source],
        **dbt_configs(select=[f"tag:{source}"]),
    )
