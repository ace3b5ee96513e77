"""dbt_project rendered by Cosmos as Airflow DAGs, one per dbt tag of ``pipelines.SOURCES``.

Each DAG selects the models tagged for its sources (staging -> marts) and is
scheduled on their raw tables, so it runs when they have landed and checks
only their freshness. Sources that share a tag (the order system's database
and its Kafka stream: ``orders``) share one DAG, run when either has landed.
Models that read several transforms' models (``pipelines.COMBINED_TRANSFORMS``:
``user_activity``) have a DAG of their own, run once all of those have built:
each transform DAG ends with a ``built`` task emitting ``dbt://.../tag/<tag>``.
One task per model or snapshot builds it and runs its tests. Rendered from
the manifest `dbt parse` writes: parsing this file never runs dbt.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import AssetAll, AssetAny
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
from include.assets import raw_table_asset, transform_asset
from include.defaults import DBT_PROJECT_DIR, DEFAULT_ARGS, PROFILES_YML, manifest_path
from pipelines import COMBINED_TRANSFORMS, SOURCES

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


def transform_dag(tag: str, schedule, description: str, with_sources: bool) -> DbtDag:
    dag = DbtDag(
        dag_id=f"dbt_transform_{tag}",
        description=description,
        schedule=schedule,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        # A dbt failure is deterministic: fail at once, naming the model or test.
        default_args={**DEFAULT_ARGS, "retries": 0},
        tags=["dbt", "transform", tag],
        project_config=project_config,
        profile_config=profile_config,
        execution_config=execution_config,
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            select=[f"tag:{tag}"],
            # One `dbt build --select <node>` per model: the model and its tests
            # in one task, half the dbt invocations of run-then-test.
            test_behavior=TestBehavior.BUILD,
            # Raw tables appear as tasks that check their freshness and run
            # their tests, upstream of the staging models that read them. A
            # combined transform reads models, not raw tables.
            source_rendering_behavior=(
                SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS
                if with_sources
                else SourceRenderingBehavior.NONE
            ),
        ),
    )
    # Emitted only when every model and test of the tag succeeded.
    leaves = list(dag.leaves)
    built = EmptyOperator(task_id="built", outlets=[transform_asset(tag)], dag=dag)
    for leaf in leaves:
        leaf >> built
    return dag


TAGS = {source.dbt_tag: [s for s in SOURCES if s.dbt_tag == source.dbt_tag] for source in SOURCES}

for tag, sources in TAGS.items():
    # All of a source's raw tables; with several sources, any one of them.
    per_source = [AssetAll(*map(raw_table_asset, s.raw_tables)) for s in sources]
    globals()[f"dbt_transform_{tag}"] = transform_dag(
        tag,
        per_source[0] if len(per_source) == 1 else AssetAny(*per_source),
        f"dbt models tagged {tag} ({', '.join(s.name for s in sources)}), "
        "built when their raw tables land",
        with_sources=True,
    )

for tag, parents in COMBINED_TRANSFORMS.items():
    globals()[f"dbt_transform_{tag}"] = transform_dag(
        tag,
        AssetAll(*map(transform_asset, parents)),
        f"dbt models tagged {tag}, which read {' and '.join(parents)}: built after both",
        with_sources=False,
    )
