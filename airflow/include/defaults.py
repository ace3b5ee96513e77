"""Defaults every DAG shares: owner, retries, paths, the simulation's first day."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from config import DBT_PROJECT_DIR, PROFILES_DIR, DatagenSettings, DbtSettings

PROFILES_YML = PROFILES_DIR / "profiles.yml"

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
    """The manifest Cosmos renders from: `make airflow` writes Airflow's own with `dbt parse`."""
    return DbtSettings.from_env().manifest_path


__all__ = ["DBT_PROJECT_DIR", "DEFAULT_ARGS", "LOADER_RETRIES", "PROFILES_YML", "SIMULATION_START"]
