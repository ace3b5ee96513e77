"""What the Airflow DAGs run and how they are configured.

DAG files only wire these together. Every task calls the same functions the
CLIs call, reading the same environment (the project's variables, which
`make airflow` exports to every Airflow process).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from loaders.settings import PROJECT_ROOT, DatagenSettings

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
PROFILES_YML = PROJECT_ROOT / "profiles" / "profiles.yml"

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "data-platform",
    "retries": 1,
    "retry_delay": dt.timedelta(minutes=1),
}
# Source and warehouse outages are usually transient: back off and retry.
LOADER_RETRIES: dict[str, Any] = {
    "retries": 4,
    "retry_delay": dt.timedelta(seconds=20),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=10),
}
SIMULATION_START = dt.datetime.combine(
    dt.date.fromisoformat(DatagenSettings.from_env().start_date), dt.time(), tzinfo=dt.UTC
)


def manifest_path() -> Path:
    """The manifest `dbt parse` writes (`make airflow` does it before starting Airflow)."""
    default = DBT_PROJECT_DIR / "target" / "manifest.json"
    return Path(os.environ.get("DBT_MANIFEST_PATH", str(default)))


def generate_app_day() -> dict[str, int]:
    """Write the run's logical day into the app database.

    Scheduled runs of an interval timetable have logical date = the interval's
    start (the day that just ended); a manual run for date D also writes D.
    """
    from pymongo import MongoClient

    from datagen.mongo_writer import play_day
    from datagen.population import Population
    from loaders.settings import MongoSettings

    day = _logical_day()
    gen, mongo = DatagenSettings.from_env(), MongoSettings.from_env()
    population = Population(gen.seed, gen.scale, dt.date.fromisoformat(gen.start_date))
    client: MongoClient = MongoClient(mongo.uri, serverSelectionTimeoutMS=5000)
    try:
        counts = play_day(client[mongo.database], population, day, gen.history_days)
    finally:
        client.close()
    if counts is None:
        print(f"{day} is already written (the app's clock only moves forward): nothing to do")
        return {}
    print(f"wrote {sum(counts.values()):,} documents up to {day}: {counts}")
    return counts


def load_mongo_collection(collection: str) -> dict[str, int]:
    """Land what is new in one collection; the task's outlet asset marks it landed."""
    from loaders.mongo_run import load_all, print_progress

    [result] = _one_line(lambda: load_all([collection], progress=print_progress))
    print(f"mongo.{collection}: landed {result.landed:,}, rejected {result.rejected:,}")
    for note in result.notes:
        print(f"warning: {note}")
    return {"landed": result.landed, "rejected": result.rejected}


def _logical_day() -> dt.date:
    from airflow.sdk import get_current_context

    context = get_current_context()
    return (context.get("logical_date") or context["data_interval_start"]).date()


def sales_generate_report() -> str:
    """Ask the partner API to prepare a report; returns its task_id."""
    from loaders.sales_api import SalesApiClient
    from loaders.settings import SalesApiSettings

    with SalesApiClient(SalesApiSettings.from_env()) as client:
        return _one_line(client.generate_report)


def sales_report_ready(task_id: str):
    """Sensor poke: done with the report_id once the report is ready."""
    from airflow.sdk import PokeReturnValue

    from loaders.sales_api import SalesApiClient
    from loaders.settings import SalesApiSettings

    with SalesApiClient(SalesApiSettings.from_env()) as client:
        body = _one_line(lambda: client.report_status(task_id))
    print(f"report {task_id}: {body.get('status')}")
    return PokeReturnValue(
        is_done=body.get("status") == "SUCCESS", xcom_value=body.get("report_id")
    )


def sales_get_increment(report_id: str) -> str:
    """Fetch the logical day's increment files into the date's folder; returns the folder."""
    from loaders.sales_api import SalesApiClient, download_increment
    from loaders.settings import SalesApiSettings

    day = _logical_day()
    with SalesApiClient(SalesApiSettings.from_env()) as client:
        folder = _one_line(
            lambda: download_increment(client, client.get_increment(report_id, day), day)
        )
    print(f"saved the {day} increment in {folder}")
    return str(folder)


def sales_check_files(folder: str) -> dict[str, int]:
    """Every file present and well-formed (seed 004's sensor step); rows per file."""
    from loaders.sales_api import check_increment

    checked = _one_line(lambda: check_increment(Path(folder)))
    return {name: len(f.rows) for name, f in checked.items()}


def sales_load(folder: str) -> dict[str, int]:
    """Replace the day's raw rows with the checked files, atomically."""
    from loaders.sales_api import check_increment, land_increment
    from loaders.settings import WarehouseSettings
    from loaders.warehouse import connect

    day = _logical_day()
    checked = _one_line(lambda: check_increment(Path(folder)))

    def land() -> dict[str, int]:
        with connect(WarehouseSettings.from_env()) as conn:
            result = land_increment(conn, day, checked)
        for note in result.notes:
            print(f"note: {note}")
        return result.rows

    return _one_line(land)


def _one_line(action):
    """Run ``action``; a LoaderError becomes a one-line task failure (then a retry)."""
    from loaders.warehouse import LoaderError

    try:
        return action()
    except LoaderError as exc:
        raise RuntimeError(str(exc)) from None


def dbt_configs(select: list[str] | None = None) -> dict[str, Any]:
    """Cosmos settings shared by every dbt DAG: manifest rendering, our profiles.yml."""
    from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import (
        ExecutionMode,
        InvocationMode,
        LoadMode,
        SourceRenderingBehavior,
        TestBehavior,
        TestIndirectSelection,
    )

    return {
        "project_config": ProjectConfig(
            dbt_project_path=DBT_PROJECT_DIR,
            manifest_path=manifest_path(),
            project_name="store_analytics",
            install_dbt_deps=False,  # no packages: the dbt hub is not reachable here
        ),
        "profile_config": ProfileConfig(
            profile_name="store_analytics",
            target_name=os.environ.get("DBT_TARGET", "warehouse"),
            profiles_yml_filepath=PROFILES_YML,
        ),
        "execution_config": ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.DBT_RUNNER,
            # A test whose parents are in several models (relationships) runs
            # with the last of them to be built, not before the others exist.
            test_indirect_selection=TestIndirectSelection.BUILDABLE,
        ),
        "render_config": RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            select=select or [],
            # One `dbt build --select <node>` per model: the model and its tests
            # in one task, half the dbt invocations of run-then-test.
            test_behavior=TestBehavior.BUILD,
            # Raw tables appear as tasks that check their freshness and run their
            # tests, upstream of the staging models that read them.
            source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
        ),
    }
