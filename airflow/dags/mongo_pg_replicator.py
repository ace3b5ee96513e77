"""Lands every MongoDB collection in raw_mongo.* incrementally (seed 001's replicator).

Runs when the app database has new data (the simulator's asset) and daily as
a safety net for a real app that emits no asset. Each collection is its own
task, emitting its raw table as an asset when its data has landed.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, task

from loaders.assets import MONGO_APP_DB, RAW_MONGO
from stack.airflow_tasks import DEFAULT_ARGS, LOADER_RETRIES, load_mongo_collection

with DAG(
    dag_id="mongo_pg_replicator",
    description=__doc__.splitlines()[0],
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 2 * * *", timezone="UTC"), assets=MONGO_APP_DB
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, **LOADER_RETRIES},
    tags=["extract-load", "mongo"],
):
    for collection, asset in RAW_MONGO.items():
        task(load_mongo_collection, task_id=f"load_{collection}", outlets=[asset])(collection)
