"""An Airflow home of its own for the DAG tests: a fresh SQLite metadata DB.

Airflow reads its configuration when first imported, so the environment is set
here, before any test module imports it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import PROJECT_ROOT

AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="airflow-home-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "airflow" / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        # dag.test() runs every task in this process, with no triggerer: the
        # default WATCHER mode's watchers would wait forever. Its DAGs are
        # checked as parsed here and run under the real scheduler by
        # tests/bench/test_airflow_scheduler.py.
        "AIRFLOW_DBT_EXECUTION_MODE": "local",
    }
)


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """dag.test() runs each task in this process, and Cosmos's OpenLineage step
    copies a dbt task's environment (DBT_LOGICAL_DATE, DBT_EXCLUDE_RESOURCE_TYPES)
    into os.environ for good: harmless in a task's own process, but here it would
    reach the next test on this worker (its dbt build would leave out unit tests)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`dbt parse` into a private target dir; DAG parsing reads this manifest."""
    target = tmp_path_factory.mktemp("dbt-target")
    subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "parse", "--project-dir", "dbt_project",
         "--profiles-dir", "profiles", "--target-path", str(target), "--quiet"],
        cwd=PROJECT_ROOT, check=True,
    )  # fmt: skip
    path = target / "manifest.json"
    os.environ["DBT_MANIFEST_PATH"] = str(path)
    return path


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[Path]:
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True, capture_output=True,
    )  # fmt: skip
    yield AIRFLOW_HOME


@pytest.fixture(scope="session")
def dagbag(manifest: Path):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(PROJECT_ROOT / "airflow" / "dags"))


def simulate(dagbag, *systems: str) -> None:
    """One run of ``simulate_day`` writing only ``systems`` (the ones the test has servers for).

    ``next_day`` moves the simulation's clock (``pipelines.clock``, in the
    warehouse) whichever systems write.
    """
    dag = dagbag.dags["simulate_day"].partial_subset(
        task_ids=[f"write_{s}" for s in systems], include_upstream=True
    )
    dag_run = dag.test()
    assert dag_run.state == "success", f"simulate_day {systems} ended {dag_run.state}"
