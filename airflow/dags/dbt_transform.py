"""dbt_project rendered by Cosmos as Airflow DAGs, one per dbt tag of ``pipelines.SOURCES``.

Each DAG selects the models tagged for its sources (staging -> marts) and is
scheduled on their sources' ``landed`` asset, so it runs for a day once
every raw table has landed that day (``include/clock.py``), and checks only
their freshness. Sources that share a tag (the order system's database and
its Kafka stream: ``orders``) share one DAG, run once both have landed the
day (the stream lands after the database).
Models that read several transforms' models (``pipelines.COMBINED_TRANSFORMS``:
``user_activity``) have a DAG of their own, run once all of those have built
the day: each transform DAG ends with a ``built`` task emitting
``dbt://.../tag/<tag>``. The day goes to dbt as DBT_LOGICAL_DATE.
One task per model or snapshot builds it and runs its tests. Rendered from
the manifest `dbt parse` writes: parsing this file never runs dbt.
"""

from __future__ import annotations

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.sdk import CronTriggerTimetable, get_parsing_context
from cosmos import DbtDag, ExecutionConfig, ProjectConfig, RenderConfig
from cosmos.constants import (
    ExecutionMode,
    InvocationMode,
    LoadMode,
    SourceRenderingBehavior,
    TestBehavior,
    TestIndirectSelection,
)

from config import AirflowSettings
from include.assets import landed_asset, transform_asset
from include.clock import after, last_in_transform
from include.dbt_profile import profile_config as dbt_profile
from include.defaults import DBT_PROJECT_DIR, DEFAULT_ARGS, START_DATE, manifest_path
from include.tasks import events_exist
from include.watcher import start_watchers_in_triggerer
from pipelines import COMBINED_TRANSFORMS, SOURCES

project_config = ProjectConfig(
    dbt_project_path=DBT_PROJECT_DIR,
    manifest_path=manifest_path(),
    project_name="store_analytics",
    install_dbt_deps=False,  # no packages: the dbt hub is not reachable here
    # The run's day (its partition key; none for the 15-minute DAG): the
    # events models rebuild from it (dbt_project/macros/run_scope.sql).
    env_vars={"DBT_LOGICAL_DATE": "{{ dag_run.partition_key or '' }}"},
)
profile_config = dbt_profile()
EXECUTION_MODE = ExecutionMode(AirflowSettings.from_env().dbt_execution_mode)
execution_config = ExecutionConfig(
    execution_mode=EXECUTION_MODE,
    invocation_mode=InvocationMode.DBT_RUNNER,
    # A test whose parents are in several models (relationships) runs with the
    # last of them to be built, not before the others exist.
    test_indirect_selection=TestIndirectSelection.BUILDABLE,
)
# Unit tests test the SQL, not the day's data: CI runs them, and `make run`'s
# daily builds leave them out too (README, "What runs every day, what runs weekly").
NO_UNIT_TESTS = ("--exclude-resource-type", "unit_test")


def transform_dag(
    tag: str,
    schedule,
    description: str,
    with_sources: bool,
    target: str | None = None,
    dag_id: str | None = None,
    select: str | None = None,
    exclude: tuple[str, ...] = (),
) -> DbtDag | None:
    """A Cosmos DAG building ``select`` (default: the tag's models) on a dbt target.

    ``target``: a profile output other than the configured one (the feed and
    messenger events models also build on ``clickhouse``); the DAG then emits
    no transform asset of its own tag. None in a task's process that runs
    another DAG of this file: Airflow parses the file there for one DAG only.
    """
    dag_id = dag_id or f"dbt_transform_{tag}"
    if get_parsing_context().dag_id not in (None, dag_id):
        return None
    dag = DbtDag(
        dag_id=dag_id,
        description=description,
        schedule=schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        # A dbt failure is deterministic: fail at once, naming the model or test.
        default_args={**DEFAULT_ARGS, "retries": 0},
        tags=["dbt", "transform", tag, *([target] if target else [])],
        project_config=project_config,
        profile_config=profile_config if target is None else dbt_profile(target),
        execution_config=execution_config,
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            # No per-model assets from Cosmos: the DAG's one `built` asset is what
            # schedules downstream. Cosmos's URIs fail on a dbt hook's result
            # (it names no table), and two tasks registering the same new asset
            # at once fail one of them on Airflow's unique index.
            emit_datasets=False,
            select=[select or f"tag:{tag}"],
            exclude=list(exclude),
            # LOCAL: one `dbt build --select <node>` per model, the model and its
            # tests in one task, half the dbt invocations of run-then-test.
            # WATCHER: one `dbt build` for the DAG; a task per model and one per
            # model's tests watch it (it has no per-model build task).
            test_behavior=(
                TestBehavior.BUILD
                if EXECUTION_MODE == ExecutionMode.LOCAL
                else TestBehavior.AFTER_EACH
            ),
            # LOCAL: raw tables appear as tasks that check their freshness and
            # run their tests, upstream of the staging models that read them.
            # WATCHER: their tests run in the one `dbt build` (a failure fails
            # it, naming the test, and the models that read the table); their
            # freshness would be a second dbt run before it, so it is checked
            # by the hourly dbt_source_freshness DAG instead. A combined
            # transform reads models, not raw tables.
            source_rendering_behavior=(
                SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS
                if with_sources and EXECUTION_MODE == ExecutionMode.LOCAL
                else SourceRenderingBehavior.NONE
            ),
        ),
    )
    for task in dag.tasks:
        if getattr(task, "base_cmd", None) == ["build"]:
            task.dbt_cmd_flags = [*(task.dbt_cmd_flags or []), *NO_UNIT_TESTS]
    if EXECUTION_MODE == ExecutionMode.WATCHER:
        start_watchers_in_triggerer(dag)
    # Emitted only when every model and test of the tag succeeded.
    leaves = list(dag.leaves)
    outlets = [transform_asset(tag if target is None else f"{tag}_{target}")]
    built = EmptyOperator(task_id="built", outlets=outlets, dag=dag)
    for leaf in leaves:
        leaf >> built
    return dag


# What the 15-minute DAG builds on ClickHouse (with the staging views they read).
INTRADAY_MODELS = ("int_events_slice_metrics", "feed_anomalies")

TAGS = {source.dbt_tag: [s for s in SOURCES if s.dbt_tag == source.dbt_tag] for source in SOURCES}

for tag, sources in TAGS.items():
    # Sources sharing a tag land one after the other: the last one completes the day.
    globals()[f"dbt_transform_{tag}"] = transform_dag(
        tag,
        after(landed_asset(last_in_transform(tag))),
        f"dbt models tagged {tag} ({', '.join(s.name for s in sources)}), "
        "built for a day once their raw tables have landed it",
        with_sources=True,
    )

for tag, parents in COMBINED_TRANSFORMS.items():
    globals()[f"dbt_transform_{tag}"] = transform_dag(
        tag,
        after(*map(transform_asset, parents)),
        f"dbt models tagged {tag}, which read {' and '.join(parents)}: built after both",
        with_sources=False,
    )

# Sources whose models are also built on another target (the feed and
# messenger events on ClickHouse, from the events in place): scheduled like
# the warehouse's, on the landed raw tables, which say the day is complete in
# ClickHouse too.
for source in SOURCES:
    for target in source.dbt_targets:
        if target == "warehouse":  # the DAGs above, on the configured target
            continue
        globals()[f"dbt_transform_{source.dbt_tag}_{target}"] = transform_dag(
            source.dbt_tag,
            after(landed_asset(source)),
            f"dbt models tagged {source.dbt_tag} built on {target}, when the day has landed",
            # No freshness tasks: there the only time is the events' own, which
            # the simulator keeps behind the wall clock; the warehouse's DAG
            # checks the same tables' freshness by landing time.
            with_sources=False,
            target=target,
            dag_id=f"dbt_transform_{source.dbt_tag}_{target}",
            # The 15-minute DAG below owns the slices there: two DAGs deleting
            # and inserting the same day at once could double its rows.
            exclude=INTRADAY_MODELS if target == "clickhouse" else (),
        )

# Anomaly alerts during the day: the 15-minute slices and their bounds on
# ClickHouse, where a real app's events arrive as they happen (the warehouse
# gets a day once it is over; the local simulator writes whole days). Every
# 15 minutes; each run rebuilds from the day before the latest day it holds.
dbt_anomalies_clickhouse = transform_dag(
    "events",
    CronTriggerTimetable("*/15 * * * *", timezone="UTC"),
    "the feed's 15-minute slices and their anomaly bounds on ClickHouse, during the day",
    with_sources=False,
    target="clickhouse",
    dag_id="dbt_anomalies_clickhouse",
    select="+feed_anomalies",
)
# Until the simulation's first day there are no events to build from: skip the run.
if dbt_anomalies_clickhouse is not None:
    _roots = list(dbt_anomalies_clickhouse.roots)
    _gate = ShortCircuitOperator(
        task_id="events_exist", python_callable=events_exist, dag=dbt_anomalies_clickhouse
    )
    for _root in _roots:
        _gate >> _root
