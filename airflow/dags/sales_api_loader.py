"""Partner sales API -> raw_sales.* for the previous day, as seed 004's steps.

generate_report -> get_report (a sensor polling until the report is ready)
-> get_increment (files saved under a date folder) -> check_files (all
present and well-formed) -> load (the date's raw rows replaced atomically,
emitting the raw tables as assets).
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, task

from loaders.assets import RAW_SALES
from stack.airflow_tasks import (
    DEFAULT_ARGS,
    LOADER_RETRIES,
    SIMULATION_START,
    sales_check_files,
    sales_generate_report,
    sales_get_increment,
    sales_load,
    sales_report_ready,
)

with DAG(
    dag_id="sales_api_loader",
    description=__doc__.splitlines()[0],
    # The run for day D starts after D ends and loads D's increment.
    schedule=CronDataIntervalTimetable("0 1 * * *", timezone="UTC"),
    start_date=pendulum.instance(SIMULATION_START),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, **LOADER_RETRIES},
    tags=["extract-load", "sales-api"],
):
    task_id = task(sales_generate_report, task_id="generate_report")()
    report_id = task.sensor(
        sales_report_ready,
        task_id="get_report",
        poke_interval=10,  # seed 004 polls every 10 seconds
        timeout=dt.timedelta(minutes=30).total_seconds(),
        mode="reschedule",
    )(task_id)
    folder = task(sales_get_increment, task_id="get_increment")(report_id)
    checked = task(sales_check_files, task_id="check_files")(folder)
    loaded = task(sales_load, task_id="load", outlets=list(RAW_SALES.values()))(folder)
    checked >> loaded
