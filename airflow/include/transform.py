"""The Cosmos factory behind ``dags/dbt_transform.py``: a dbt selection as an Airflow DAG.

``transform_dag`` renders the models it selects (by default a dbt tag's)
from the manifest `dbt parse` writes (parsing a DAG file never runs dbt),
on the configured dbt target or another, in the execution mode the
settings name (``AIRFLOW_DBT_EXECUTION_MODE``): one `dbt build` watched
from the triggerer (``include/watcher.py``), or one dbt invocation per
model. Every DAG it makes ends with a ``built`` task emitting the
selection's transform asset, so DAGs downstream run once it built the day.
The day goes to dbt as DBT_LOGICAL_DATE.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.sdk import get_parsing_context
from cosmos import DbtDag, ExecutionConfig, ProjectConfig, RenderConfig
from cosmos.constants import (
    ExecutionMode,
    InvocationMode,
    LoadMode,
    SourceRenderingBehavior,
    TestBehavior,
    TestIndirectSelection,
)

from config import AirflowSettings, DbtSettings
from include.assets import transform_asset
from include.dbt_profile import profile_config as dbt_profile
from include.defaults import DBT_PROJECT_DIR, DEFAULT_ARGS, START_DATE, manifest_path
from include.health import keep_artifacts
from include.watcher import start_watchers_in_triggerer

PARTIAL_PARSE = "partial_parse.msgpack"


def seed_partial_parse(dag: DbtDag, settings: DbtSettings, target: str) -> None:
    """Start Cosmos's cache for this DAG from `make airflow`'s `dbt parse` on ``target``.

    Each Cosmos task runs dbt in a fresh copy of the project, starting from the
    partial parse its DAG's cache holds; with none (the first run after a
    start) dbt parses the whole project first, which doubled that run's time.
    `make airflow` parses with the flags the tasks pass, so the seed is valid
    for them; a cache the DAG's runs already wrote is left as it is.
    """
    cache_dir = next((t.cache_dir for t in dag.tasks if getattr(t, "cache_dir", None)), None)
    seed = settings.parse_dir(target)
    if cache_dir is None or not (seed / PARTIAL_PARSE).exists():
        return
    cached = Path(cache_dir) / "target"
    if (cached / PARTIAL_PARSE).exists():
        return
    cached.mkdir(parents=True, exist_ok=True)
    # The manifest first: Cosmos copies it along with the partial parse it finds.
    # Each file whole or not at all (another DAG processor may read it now).
    for name in ("manifest.json", PARTIAL_PARSE):
        if (seed / name).exists():
            tmp = cached / f".{name}.{os.getpid()}"
            shutil.copyfile(seed / name, tmp)
            tmp.replace(cached / name)


def project_config() -> ProjectConfig:
    """The dbt project as the settings say now (read at each parse, not at import)."""
    return ProjectConfig(
        dbt_project_path=DBT_PROJECT_DIR,
        manifest_path=manifest_path(),
        project_name="store_analytics",
        install_dbt_deps=False,  # no packages: the dbt hub is not reachable here
        # The run's day (its partition key; none for the 15-minute DAG): the
        # events models rebuild from it (dbt_project/macros/run_scope.sql).
        # Unit tests test the SQL, not the day's data: CI runs them, and the daily
        # builds leave them out, as `make run`'s do (README, "What runs every day,
        # what runs weekly"). dbt reads this for build and test, and `dbt run` has
        # nothing to exclude.
        env_vars={
            "DBT_LOGICAL_DATE": "{{ dag_run.partition_key or '' }}",
            "DBT_EXCLUDE_RESOURCE_TYPES": "unit_test",
        },
    )


def execution_mode() -> ExecutionMode:
    return ExecutionMode(AirflowSettings.from_env().dbt_execution_mode)


def execution_config(mode: ExecutionMode) -> ExecutionConfig:
    return ExecutionConfig(
        execution_mode=mode,
        invocation_mode=InvocationMode.DBT_RUNNER,
        # A test whose parents are in several models (relationships) runs with the
        # last of them to be built, not before the others exist.
        test_indirect_selection=TestIndirectSelection.BUILDABLE,
    )


def transform_dag(
    tag: str,
    schedule,
    description: str,
    with_sources: bool,
    target: str | None = None,
    dag_id: str | None = None,
    select: str | None = None,
    exclude: tuple[str, ...] = (),
    gate: Callable[[], bool] | None = None,
) -> DbtDag | None:
    """A Cosmos DAG building ``select`` (default: the tag's models) on a dbt target.

    ``target``: a profile output other than the configured one (the feed and
    messenger events models also build on ``clickhouse``); the DAG then emits
    no transform asset of its own tag. ``gate``: a check that runs first and
    skips the run when it is False. None in a task's process that runs
    another DAG of this file: Airflow parses the file there for one DAG only.
    """
    dag_id = dag_id or f"dbt_transform_{tag}"
    if get_parsing_context().dag_id not in (None, dag_id):
        return None
    mode = execution_mode()
    dbt_settings = DbtSettings.from_env()
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
        project_config=project_config(),
        profile_config=dbt_profile(target),
        execution_config=execution_config(mode),
        # After each dbt invocation its artifacts go to raw_ops (the ops models).
        operator_args={
            "callback": keep_artifacts,
            "callback_args": {"target": target or dbt_settings.target},
        },
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
                TestBehavior.BUILD if mode == ExecutionMode.LOCAL else TestBehavior.AFTER_EACH
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
                if with_sources and mode == ExecutionMode.LOCAL
                else SourceRenderingBehavior.NONE
            ),
        ),
    )
    seed_partial_parse(dag, dbt_settings, target or dbt_settings.target)
    if mode == ExecutionMode.WATCHER:
        start_watchers_in_triggerer(dag)
    if gate is not None:
        roots = list(dag.roots)
        check = ShortCircuitOperator(task_id=gate.__name__, python_callable=gate, dag=dag)
        for root in roots:
            check >> root
    # Emitted only when every model and test of the tag succeeded.
    leaves = list(dag.leaves)
    outlets = [transform_asset(tag if target is None else f"{tag}_{target}")]
    built = EmptyOperator(task_id="built", outlets=outlets, dag=dag)
    for leaf in leaves:
        leaf >> built
    return dag
