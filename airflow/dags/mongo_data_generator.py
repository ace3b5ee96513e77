"""Plays the store's app: writes each logical day's documents into MongoDB (seed 001)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, task

from loaders.assets import MONGO_APP_DB
from stack.airflow_tasks import DEFAULT_ARGS, SIMULATION_START, generate_app_day

with DAG(
    dag_id="mongo_data_generator",
    description=__doc__,
    # Interval schedule: the run for day D starts after D ends and writes D.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.instance(SIMULATION_START),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["datagen", "mongo"],
):
    task(generate_app_day, task_id="generate_app_day", outlets=[MONGO_APP_DB])()
