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
    from airflow.sdk import get_current_context
    from pymongo import MongoClient

    from datagen.mongo_writer import play_day
    from datagen.population import Population
    from loaders.settings import MongoSettings

    context = get_current_context()
    day = (context.get("logical_date") or context["data_interval_start"]).date()
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
    from loaders.warehouse import LoaderError

    try:
        [result] = load_all([collection], progress=print_progress)
    except LoaderError as exc:
        raise RuntimeError(str(exc)) from None  # one line in the task log, then a retry
    print(f"mongo.{collection}: landed {result.landed:,}, rejected {result.rejected:,}")
    for note in result.notes:
        print(f"warning: {note}")
    return {"landed": result.landed, "rejected": result.rejected}


def dbt_configs() -> dict[str, Any]:
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
            # One `dbt build --select <node>` per model: the model and its tests
            # in one task, half the dbt invocations of run-then-test.
            test_behavior=TestBehavior.BUILD,
            # Raw tables appear as tasks that check their freshness and run their
            # tests, upstream of the staging models that read them.
            source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
        ),
    }
