"""dbt_project rendered by Cosmos as Airflow DAGs, one DAG per source in ``pipelines.SOURCES``.

Each DAG selects the models tagged with its source (staging -> marts) and is
scheduled on that source's raw tables, so it runs when they have landed and
checks only their freshness. One task per model or snapshot builds it and
runs its tests. Rendered from the manifest `dbt parse` writes: parsing this
file never runs dbt.
"""

from __future__ import annotations

import pendulum
from cosmos import DbtDag, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import (
    ExecutionMode,
    InvocationMode,
    LoadMode,
    SourceRenderingBehavior,
    TestBehavior,
    TestIndirectSelection,
)

from config import DbtSettings
from include.assets import raw_table_asset
from include.defaults import DBT_PROJECT_DIR, DEFAULT_ARGS, PROFILES_YML, manifest_path
from pipelines import SOURCES

project_config = ProjectConfig(
    dbt_project_path=DBT_PROJECT_DIR,
    manifest_path=manifest_path(),
    project_name="store_analytics",
    install_dbt_deps=False,  # no packages: the dbt hub is not reachable here
)
profile_config = ProfileConfig(
    profile_name="store_analytics",
    target_name=DbtSettings.from_env().target,
    profiles_yml_filepath=PROFILES_YML,
)
execution_config = ExecutionConfig(
    execution_mode=ExecutionMode.LOCAL,
    invocation_mode=InvocationMode.DBT_RUNNER,
    # A test whose parents are in several models (relationships) runs with the
    # last of them to be built, not before the others exist.
    test_indirect_selection=TestIndirectSelection.BUILDABLE,
)

for source in SOURCES:
    globals()[f"dbt_transform_{source.name}"] = DbtDag(
        dag_id=f"dbt_transform_{source.name}",
        description=f"dbt models of the {source.name} source, built when its raw tables land",
        schedule=[raw_table_asset(t) for t in source.raw_tables],
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        # A dbt failure is deterministic: fail at once, naming the model or test.
        default_args={**DEFAULT_ARGS, "retries": 0},
        tags=["dbt", "transform", source.name],
        project_config=project_config,
        profile_config=profile_config,
        execution_config=execution_config,
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            select=[f"tag:{source.name}"],
            # One `dbt build --select <node>` per model: the model and its tests
            # in one task, half the dbt invocations of run-then-test.
            test_behavior=TestBehavior.BUILD,
            # Raw tables appear as tasks that check their freshness and run
            # their tests, upstream of the staging models that read them.
            source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
        ),
    )
