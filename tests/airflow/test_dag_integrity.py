"""Every DAG file imports, is acyclic and sets what operations rely on; parsing is fast."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from loaders.settings import PROJECT_ROOT

DAG_FILES = sorted((PROJECT_ROOT / "airflow" / "dags").glob("*.py"))
EXPECTED_DAGS = {"mongo_data_generator", "mongo_pg_replicator", "sales_api_loader", "dbt_transform"}


def test_dag_folder_imports_without_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) >= EXPECTED_DAGS
    assert len(dagbag.dag_ids) == len(DAG_FILES)


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAGS))
def test_dag_sets_owner_retries_and_tags(dagbag, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    assert dag.tags, "tags drive filtering in the UI"
    assert dag.max_active_runs == 1
    for task in dag.tasks:
        assert task.owner == "data-platform", task.task_id
        assert "retries" in dag.default_args, task.task_id
        assert task.retries == dag.default_args["retries"], task.task_id


def test_dags_are_acyclic(dagbag) -> None:
    for dag in dagbag.dags.values():
        dag.check_cycle()  # raises on a cycle


def test_loader_tasks_emit_their_raw_table_and_retry_with_backoff(dagbag) -> None:
    from loaders.assets import RAW_MONGO

    dag = dagbag.dags["mongo_pg_replicator"]
    for collection, asset in RAW_MONGO.items():
        task = dag.get_task(f"load_{collection}")
        assert [o.uri for o in task.outlets] == [asset.uri]
        assert task.retries >= 3 and task.retry_exponential_backoff


def test_transform_is_scheduled_on_the_raw_tables_it_reads(dagbag, manifest: Path) -> None:
    import json

    from loaders.assets import RAW_MONGO, RAW_SALES

    dag = dagbag.dags["dbt_transform"]
    # Either source landing in full triggers the transform: AssetAny(AssetAll, AssetAll).
    groups = [{a.uri for a in group.objects} for group in dag.timetable.asset_condition.objects]
    assert groups == [{a.uri for a in RAW_MONGO.values()}, {a.uri for a in RAW_SALES.values()}]
    sources = json.loads(manifest.read_text())["sources"].values()
    read = {f"{s['schema']}.{s['name']}" for s in sources}
    assert read == {a.name for a in (*RAW_MONGO.values(), *RAW_SALES.values())}
    # Cosmos renders one task per model and snapshot (a dbt build of it and its tests).
    nodes = json.loads(manifest.read_text())["nodes"].values()
    built = {n["name"] for n in nodes if n["resource_type"] in ("model", "snapshot")}
    rendered = {t.task_id for t in dag.tasks}
    assert {f"{name}_{'snapshot' if name.startswith('snap_') else 'model'}_build"
            for name in built} <= rendered  # fmt: skip
    assert {f"mongo_{c}_source" for c in RAW_MONGO} <= rendered  # freshness + source tests
    assert {f"sales_api_{t}_source" for t in RAW_SALES} <= rendered


def test_sales_dag_shows_seed_004_steps_and_emits_raw_tables(dagbag) -> None:
    from loaders.assets import RAW_SALES

    dag = dagbag.dags["sales_api_loader"]
    assert set(dag.task_ids) == {
        "generate_report",
        "get_report",
        "get_increment",
        "check_files",
        "load",
    }
    assert dag.get_task("get_report").mode == "reschedule"
    assert {o.uri for o in dag.get_task("load").outlets} == {a.uri for a in RAW_SALES.values()}
    assert dag.get_task("load").upstream_task_ids == {"get_increment", "check_files"}


def test_dag_folder_parses_quickly(manifest: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    DagBag(dag_folder=str(PROJECT_ROOT / "airflow" / "dags"))
    elapsed = time.perf_counter() - started
    print(f"DAG folder parse: {elapsed:.2f}s")
    assert elapsed < 5, f"parsing the DAG folder took {elapsed:.1f}s"
