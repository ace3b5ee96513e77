"""A source's extract-load DAG, built from its steps in ``pipelines``.

Steps run in order, each a task (a sensor for a step that waits). A step
fanned out per stream becomes one task per stream, each emitting its raw
table; otherwise the last step emits every raw table of the source.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, AssetOrTimeSchedule, CronDataIntervalTimetable, CronTriggerTimetable
from airflow.sdk import task as task_decorator

from include.assets import queue_asset, raw_table_asset, source_system_asset
from include.defaults import DEFAULT_ARGS, LOADER_RETRIES, SIMULATION_START
from include.tasks import simulate_callable, step_callable
from pipelines import Source


def extract_load_dag(source: Source) -> DAG:
    if source.daily:
        # The run for day D starts after D ends and lands D.
        schedule = CronDataIntervalTimetable("0 1 * * *", timezone="UTC")
        start = pendulum.instance(SIMULATION_START)
    else:
        # Whenever the source system has new data (a message on its queue, or
        # the simulator's asset), and daily as a safety net for a real system
        # that emits nothing.
        schedule = AssetOrTimeSchedule(
            timetable=CronTriggerTimetable("0 2 * * *", timezone="UTC"),
            assets=queue_asset(source) if source.queue else source_system_asset(source),
        )
        start = pendulum.datetime(2026, 1, 1, tz="UTC")
    with DAG(
        dag_id=f"extract_load_{source.name}",
        description=source.description,
        schedule=schedule,
        start_date=start,
        catchup=False,
        max_active_runs=1,
        default_args={**DEFAULT_ARGS, **LOADER_RETRIES},
        tags=["extract-load", source.name],
    ) as dag:
        upstream = None
        for i, step in enumerate(source.steps):
            last = i == len(source.steps) - 1
            if step.streams:
                for stream in step.streams:
                    task_decorator(
                        step_callable(step, stream),
                        task_id=f"{step.name}_{stream}",
                        outlets=[raw_table_asset(source.raw_table(stream))],
                    )()
                continue
            outlets = [raw_table_asset(t) for t in source.raw_tables] if last else []
            if step.sensor:
                make = task_decorator.sensor(
                    step_callable(step),
                    task_id=step.name,
                    poke_interval=step.poke_seconds,
                    timeout=step.timeout_seconds,
                    mode="reschedule",
                )
            else:
                make = task_decorator(step_callable(step), task_id=step.name, outlets=outlets)
            upstream = make(upstream) if upstream is not None else make()
    return dag


def simulate_dag(source: Source) -> DAG:
    """Plays the source system: writes each logical day, emitting the system's asset."""
    with DAG(
        dag_id=f"simulate_{source.name}",
        description=f"Simulated {source.name} source system: writes each logical day",
        # Interval schedule: the run for day D starts after D ends and writes D.
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
        start_date=pendulum.instance(SIMULATION_START),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["datagen", source.name],
    ) as dag:
        task_decorator(
            simulate_callable(source),
            task_id="simulate_day",
            outlets=[source_system_asset(source)],
        )()
    return dag
