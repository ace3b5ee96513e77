"""Defaults every DAG shares: owner, retries, paths, the start date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pendulum

from config import DBT_PROJECT_DIR, PROFILES_DIR, DbtSettings
from include.health import task_failed

PROFILES_YML = PROFILES_DIR / "profiles.yml"

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "data-platform",
    "retries": 1,
    "retry_delay": dt.timedelta(minutes=1),
    # A task that failed for good is a health alert (Telegram, or disk), sent once.
    "on_failure_callback": task_failed,
}
# Source and warehouse outages are usually transient: back off and retry.
LOADER_RETRIES: dict[str, Any] = {
    "retries": 4,
    "retry_delay": dt.timedelta(seconds=20),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=10),
}
# No DAG catches up on the calendar (its days come from include/clock.py):
# any date in the past will do.
START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")


def manifest_path() -> Path:
    """The manifest Cosmos renders from: `make airflow` writes Airflow's own with `dbt parse`."""
    return DbtSettings.from_env().manifest_path


__all__ = ["DBT_PROJECT_DIR", "DEFAULT_ARGS", "LOADER_RETRIES", "PROFILES_YML", "START_DATE"]
