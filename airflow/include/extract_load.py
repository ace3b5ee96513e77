"""A source's extract-load DAG, built from its steps in ``pipelines``; and the simulation's.

Steps run in order, each a task (a sensor for a step that waits). A step
fanned out per stream becomes one task per stream, each emitting its raw
table; otherwise the last step emits every raw table of the source. A run
processes one day, its partition key (``include/clock.py``).
"""

from __future__ import annotations

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, CronTriggerTimetable
from airflow.sdk import task as task_decorator

from config import AirflowSettings
from include.assets import clock_asset, landed_asset, raw_table_asset, source_system_asset
from include.clock import source_schedule
from include.defaults import DEFAULT_ARGS, LOADER_RETRIES, START_DATE
from include.tasks import next_day_callable, simulate_callable, step_callable
from pipelines import SOURCES, Source


def extract_load_dag(source: Source) -> DAG:
    with DAG(
        dag_id=f"extract_load_{source.name}",
        description=source.description,
        schedule=source_schedule(source),
        start_date=START_DATE,
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
        # One event for the day once every raw table has landed: what runs next waits on it.
        leaves = list(dag.leaves)
        landed = EmptyOperator(task_id="landed", outlets=[landed_asset(source)])
        for leaf in leaves:
            leaf >> landed
    return dag


def simulate_dag() -> DAG:
    """The simulated app's clock: each run writes the next day into every source system.

    ``next_day`` picks the day(s) (``pipelines.clock``, as ``make run`` does) and
    emits the clock; then each simulator writes them and emits its system,
    each event keyed by the day, which starts that day's loads.
    """
    settings = AirflowSettings.from_env()
    with DAG(
        dag_id="simulate_day",
        description="Simulated source systems: each run writes the app's next day",
        # run_immediately: the first start plays a day at once, not at midnight.
        schedule=CronTriggerTimetable(settings.simulate_cron, timezone="UTC", run_immediately=True),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["datagen", "clock"],
    ) as dag:
        days = task_decorator(
            next_day_callable(clock_asset()), task_id="next_day", outlets=[clock_asset()]
        )()
        for source in SOURCES:
            if source.simulate is not None:
                asset = source_system_asset(source)
                task_decorator(
                    simulate_callable(source, asset),
                    task_id=f"write_{source.name}",
                    outlets=[asset],
                )(days)
    return dag
