"""Every DAG file imports, is acyclic and sets what operations rely on; parsing is fast."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import PROJECT_ROOT
from tests.dag_ids import EXPECTED_DAGS

DAG_FILES = sorted((PROJECT_ROOT / "airflow" / "dags").glob("*.py"))


def test_dag_folder_imports_without_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == EXPECTED_DAGS


def test_every_source_gets_its_dags_from_the_one_pipeline_definition(dagbag) -> None:
    from pipelines import SOURCES

    for source in SOURCES:
        assert f"extract_load_{source.name}" in dagbag.dag_ids
        assert f"dbt_transform_{source.dbt_tag}" in dagbag.dag_ids
        if source.simulate is not None:
            assert f"write_{source.name}" in dagbag.dags["simulate_day"].task_ids


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAGS))
def test_dag_sets_owner_retries_and_tags(dagbag, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    assert dag.tags, "tags drive filtering in the UI"
    assert dag.max_active_runs == 1
    for task in dag.tasks:
        assert task.owner == "data-platform", task.task_id
        assert "retries" in dag.default_args, task.task_id
        assert task.retries == dag.default_args["retries"], task.task_id
        # A task that fails for good is a health alert (Cosmos's watchers wrap it).
        assert _alerts_on_failure(task), task.task_id


def _alerts_on_failure(task) -> bool:
    from include.health import task_failed

    callbacks = task.on_failure_callback
    callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
    return any(
        c is task_failed
        or any(getattr(cell, "cell_contents", None) is task_failed
               for cell in getattr(c, "__closure__", None) or ())
        for c in callbacks
    )  # fmt: skip


def test_dags_are_acyclic(dagbag) -> None:
    for dag in dagbag.dags.values():
        dag.check_cycle()  # raises on a cycle


def is_partitioned(dag) -> bool:
    """Scheduled by day: one run per partition key its assets carry."""
    from airflow.sdk import PartitionedAssetTimetable

    return isinstance(dag.timetable, PartitionedAssetTimetable)


def raw_assets(source_name: str) -> dict[str, object]:
    from include.assets import raw_table_asset
    from pipelines import SOURCES_BY_NAME

    return {t.name: raw_table_asset(t) for t in SOURCES_BY_NAME[source_name].raw_tables}


def test_loader_tasks_emit_their_raw_table_and_retry_with_backoff(dagbag) -> None:
    dag = dagbag.dags["extract_load_mongo"]
    for collection, asset in raw_assets("mongo").items():
        task = dag.get_task(f"load_{collection}")
        assert [o.uri for o in task.outlets] == [asset.uri]
        assert task.retries >= 3 and task.retry_exponential_backoff


@pytest.mark.parametrize("source", ["mongo", "sales_api"])
def test_each_transform_runs_on_its_source_and_builds_its_models(
    dagbag, manifest: Path, source: str
) -> None:
    import json

    raw = raw_assets(source)
    dag = dagbag.dags[f"dbt_transform_{source}"]
    # A run per day, once the source's extract-load has landed every raw table.
    assert is_partitioned(dag)
    assert dag.timetable.asset_condition.uri == f"landed://warehouse/{source}"
    load = dagbag.dags[f"extract_load_{source}"]
    landed = load.get_task("landed")
    assert [o.uri for o in landed.outlets] == [f"landed://warehouse/{source}"]
    assert [t.task_id for t in load.leaves] == ["landed"]
    assert {o.uri for t in load.tasks for o in t.outlets} >= {a.uri for a in raw.values()}
    data = json.loads(manifest.read_text())
    read = {
        f"{s['schema']}.{s['name']}" for s in data["sources"].values() if s["source_name"] == source
    }
    assert read == {a.name for a in raw.values()}
    # One task per model and snapshot of the source (a dbt build of it and its tests),
    # one per raw table (freshness and source tests), nothing of the other source.
    nodes = [n for n in data["nodes"].values() if n["resource_type"] in ("model", "snapshot")]
    mine = {n["name"] for n in nodes if source in n["tags"]}
    expected = {f"{n}_{'snapshot' if n.startswith('snap_') else 'model'}_build" for n in mine}
    expected |= {f"{source}_{s['name']}_source" for s in data["sources"].values()
                 if s["source_name"] == source}  # fmt: skip
    expected.add("built")  # emits the transform's asset once everything passed
    assert {t.task_id for t in dag.tasks} == expected
    built = dag.get_task("built")
    assert [o.uri for o in built.outlets] == [f"dbt://store_analytics/tag/{source}"]
    assert [t.task_id for t in dag.leaves] == ["built"]


def test_user_activity_is_built_after_both_transforms_it_reads(dagbag, manifest: Path) -> None:
    import json

    dag = dagbag.dags["dbt_transform_activity"]
    assert is_partitioned(dag)  # the same day of both
    scheduled = {a.uri for a in dag.timetable.asset_condition.objects}  # all of them (AND)
    assert scheduled == {"dbt://store_analytics/tag/mongo", "dbt://store_analytics/tag/orders"}
    data = json.loads(manifest.read_text())
    activity = {n["name"] for n in data["nodes"].values() if "activity" in n["tags"]
                and n["resource_type"] in ("model", "snapshot")}  # fmt: skip
    assert "user_activity" in activity
    assert {t.task_id for t in dag.tasks} == {
        *(f"{n}_{'snapshot' if n.startswith('snap_') else 'model'}_build" for n in activity),
        "built",
    }


def test_events_load_both_tables_in_parallel_then_build_on_both_targets(dagbag) -> None:
    raw = raw_assets("events")
    load = dagbag.dags["extract_load_events"]
    # Two tasks with no edge between them: both tables are extracted in parallel.
    assert set(load.task_ids) == {f"load_{t}" for t in raw} | {"landed"}
    assert all(not load.get_task(f"load_{t}").upstream_task_ids for t in raw)
    for name in ("dbt_transform_events", "dbt_transform_events_clickhouse"):
        dag = dagbag.dags[name]
        assert dag.timetable.asset_condition.uri == "landed://warehouse/events"
        assert "feed_dimension_daily_model_build" in dag.task_ids
    # The slices have one owner on ClickHouse: the 15-minute DAG.
    assert "feed_anomalies_model_build" in dagbag.dags["dbt_transform_events"].task_ids
    assert (
        "feed_anomalies_model_build" not in dagbag.dags["dbt_transform_events_clickhouse"].task_ids
    )
    on_clickhouse = dagbag.dags["dbt_transform_events_clickhouse"]
    assert "clickhouse" in on_clickhouse.tags
    assert [o.uri for o in on_clickhouse.get_task("built").outlets] == [
        "dbt://store_analytics/tag/events_clickhouse"
    ]
    intraday = dagbag.dags["dbt_anomalies_clickhouse"]
    assert intraday.timetable.expression == "*/15 * * * *"
    # Only what the slices need: no daily tables, no sources' freshness tasks.
    assert {t.task_id for t in intraday.tasks} == {
        "events_exist",  # skips the run until ClickHouse has events
        "stg_events__feed_actions_model_build",
        "stg_events__message_actions_model_build",
        "int_events_slice_metrics_model_build",
        "feed_anomalies_model_build",
        "built",
    }


def test_sales_dag_shows_the_partner_api_steps_and_emits_raw_tables(dagbag) -> None:
    dag = dagbag.dags["extract_load_sales_api"]
    assert set(dag.task_ids) == {
        "generate_report",
        "get_report",
        "get_increment",
        "check_files",
        "load",
        "landed",
    }
    assert dag.get_task("get_report").mode == "reschedule"
    raw = raw_assets("sales_api")
    assert {o.uri for o in dag.get_task("load").outlets} == {a.uri for a in raw.values()}
    assert dag.get_task("load").upstream_task_ids == {"check_files"}
    assert dag.get_task("check_files").upstream_task_ids == {"get_increment"}


def test_every_day_is_a_partition_and_each_source_follows_the_clock(dagbag) -> None:
    """One clock: the simulation's days reach every loader, transform and the report."""
    from airflow.sdk import CronTriggerTimetable

    clock = dagbag.dags["simulate_day"]
    assert isinstance(clock.timetable, CronTriggerTimetable)
    assert clock.timetable.expression == "0 0 * * *"
    assert [o.uri for o in clock.get_task("next_day").outlets] == ["simulation://store/day"]
    followed = {
        "extract_load_mongo": "source-system://mongo",
        "extract_load_oltp": "source-system://oltp",
        "extract_load_events": "source-system://events",
        "extract_load_sales_api": "simulation://store/day",  # any day that is over
        "extract_load_kafka": "landed://warehouse/oltp",  # after the database, same day
        "dbt_transform_orders": "landed://warehouse/kafka",
        "daily_report": "dbt://store_analytics/tag/events",
    }
    for dag_id, uri in followed.items():
        assert is_partitioned(dagbag.dags[dag_id]), dag_id
        assert dagbag.dags[dag_id].timetable.asset_condition.uri.rstrip("/") == uri, dag_id


def test_on_real_systems_each_loader_runs_for_the_day_that_ended(monkeypatch) -> None:
    from include.clock import source_schedule
    from pipelines import SOURCES_BY_NAME

    monkeypatch.setenv("AIRFLOW_SIMULATE", "false")
    timetable = source_schedule(SOURCES_BY_NAME["mongo"])
    assert timetable.expression == "0 1 * * *"
    assert timetable.run_offset == -1 and timetable.key_format == "%Y-%m-%d"
    # The stream still lands after the database, for the same day.
    assert source_schedule(SOURCES_BY_NAME["kafka"]).asset_condition.uri == (
        "landed://warehouse/oltp"
    )


def test_parsing_the_dag_folder_runs_neither_dbt_nor_any_process(
    manifest: Path, monkeypatch
) -> None:
    """What keeps parsing fast: the DAGs render from the manifest, never by running dbt.

    Not a timed assertion (a busy machine would trip it): the parse time is
    measured against `dbt ls` by the Airflow bench (make bench).
    """
    import subprocess

    from airflow.dag_processing.dagbag import DagBag
    from dbt.cli.main import dbtRunner

    def refuse(*args, **kwargs):
        raise AssertionError(f"parsing the DAG folder ran {args[1:2] or kwargs}")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    monkeypatch.setattr(dbtRunner, "invoke", refuse)
    dagbag = DagBag(dag_folder=str(PROJECT_ROOT / "airflow" / "dags"))
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == EXPECTED_DAGS


def test_watcher_mode_runs_one_build_watched_from_the_triggerer(manifest, monkeypatch) -> None:
    """The default mode, parsed as `make airflow` parses it (the fixture's DagBag is LOCAL)."""
    from airflow.dag_processing.dagbag import DagBag

    from include.watcher import QueuedProducer, TriggererWatcherTrigger

    monkeypatch.setenv("AIRFLOW_DBT_EXECUTION_MODE", "watcher")
    bag = DagBag(dag_folder=str(PROJECT_ROOT / "airflow" / "dags" / "dbt_transform.py"))
    assert bag.import_errors == {}
    dag = bag.dags["dbt_transform_mongo"]
    producer = dag.get_task("dbt_producer_watcher")
    assert type(producer) is QueuedProducer
    assert (
        producer.base_cmd == ["build"] and producer.env["DBT_EXCLUDE_RESOURCE_TYPES"] == "unit_test"
    )
    # Freshness is the hourly DAG's: no second dbt run before the build.
    assert producer._check_source_freshness is False
    # After the build, its artifacts go to raw_ops.
    from include.health import keep_artifacts

    assert producer.callback is keep_artifacts and producer.callback_args["target"] == "dev"
    watchers = [t for t in dag.tasks if t.task_id not in ("dbt_producer_watcher", "built")]
    assert {t.task_id for t in watchers} >= {"review_mart.run", "review_mart.test"}
    trigger = f"{TriggererWatcherTrigger.__module__}.{TriggererWatcherTrigger.__name__}"
    for task in watchers:
        # Started and ended in the triggerer, all from the run's start.
        assert task.start_from_trigger is True, task.task_id
        assert task.start_trigger_args.trigger_cls == trigger
        kwargs = task.start_trigger_args.trigger_kwargs
        assert kwargs["model_unique_id"] == task.model_unique_id
        # A second try waits for these, then runs the node's own dbt command.
        assert kwargs["upstream_task_ids"] == sorted(task.upstream_task_ids)
        assert task.trigger_rule == "always", task.task_id
    # The graph keeps dbt's lineage; `built` still waits on every leaf.
    assert dag.get_task("review_mart.test").upstream_task_ids == {"review_mart.run"}
    assert [t.task_id for t in dag.leaves] == ["built"]


def test_freshness_is_checked_hourly_once_every_raw_table_has_landed(dagbag) -> None:
    dag = dagbag.dags["dbt_source_freshness"]
    assert dag.timetable.expression == "30 * * * *"
    gate, check = dag.get_task("sources_landed"), dag.get_task("freshness")
    assert check.upstream_task_ids == {"sources_landed"} and not gate.upstream_task_ids
    assert check.base_cmd == ["source", "freshness"]


def test_reconcile_has_a_task_per_source_that_can_be_reconciled(dagbag) -> None:
    from loaders.core.reconcile import reconcilers

    dag = dagbag.dags["reconcile"]
    assert dag.timetable.expression == "0 3 * * *"
    assert {t.task_id for t in dag.tasks} == set(reconcilers()) != set()
