"""make run's dbt state: what the last build whose every test passed covered, and the
environment that scopes a build to it (the logical day, the tests' new rows).

The record lives in the warehouse (``loader.watermarks``, stream ``dbt``), so
it survives a lost DATA_DIR and belongs to the warehouse it describes; the
last good build's manifest is kept in DBT_STATE_DIR for ``make dbt-changed``
and the daily build's unchanged views.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from config import DbtSettings, WarehouseSettings
from loaders.core.control import (
    ensure_control_tables,
    full_check_due,
    mark_full_check,
    read_watermark,
    write_watermark,
)
from loaders.core.warehouse import connect


@dataclass(frozen=True)
class Tested:
    """What the last build whose every test passed covered: the daily builds test what is newer.

    ``before``: when it started, on the warehouse's clock (the loaders stamp
    rows with it too); every row loaded earlier was in that build. ``day``: its
    logical day; the events models' days up to it were rebuilt and tested.
    """

    before: dt.datetime
    day: dt.date


def warehouse_now(wh: WarehouseSettings) -> dt.datetime:
    with connect(wh) as conn:
        row = conn.execute("select now()").fetchone()
    assert row is not None
    return row[0]


def _dbt_stream(settings: DbtSettings) -> str:
    """One record per set of schemas: two prefixes on one warehouse are two projects."""
    return f"{settings.schema_prefix}build"


def last_passed_build(wh: WarehouseSettings, settings: DbtSettings) -> Tested | None:
    """The last passing build, or None when this build must be the full check.

    The full check is due every DBT_FULL_CHECK_HOURS, and whenever no build has
    passed yet. A failed build records nothing, so the next daily build tests
    everything since the last one that passed, however many days ago.
    """
    with connect(wh) as conn:
        ensure_control_tables(conn)
        if full_check_due(conn, "dbt", _dbt_stream(settings), settings.full_check_hours):
            return None
        last = read_watermark(conn, "dbt", _dbt_stream(settings))
    if not last:
        return None
    return Tested(dt.datetime.fromisoformat(last["before"]), dt.date.fromisoformat(last["day"]))


def record_passed_build(
    wh: WarehouseSettings, settings: DbtSettings, tested: Tested, full: bool
) -> None:
    with connect(wh) as conn:
        value = {"before": tested.before.isoformat(), "day": tested.day.isoformat()}
        write_watermark(conn, "dbt", _dbt_stream(settings), value)
        if full:
            mark_full_check(conn, "dbt", _dbt_stream(settings))


def dbt_scope_args(full_check: bool) -> list[str]:
    """Unit tests test the SQL, which a new day does not change: CI and the full check run them.

    Nor does a day run the platform health views' tests (they check the platform's own
    tables, whose keys the tables enforce): the full check and Airflow's platform_health
    do. The daily selector says the same (dbt ignores --exclude beside --selector).
    """
    if full_check:
        return []
    return ["--exclude-resource-type", "unit_test", "--exclude", "tag:ops,resource_type:test"]


def keep_unchanged_views_args(
    wh: WarehouseSettings, settings: DbtSettings, health: bool = True
) -> list[str]:
    """A daily build's views unchanged since the last good build stay as they are.

    dbt_project/selectors.yml's daily_build, against that build's manifest (the
    one save_state keeps). Only when every view of that manifest exists in the
    warehouse: one dropped by hand, or a warehouse that is not the one that
    manifest was built on, means every view is built again. Without ``health``
    (HEALTH_ENABLED=false) the platform health views are not built, nor expected.
    """
    manifest = settings.state_dir / "manifest.json"
    try:
        nodes = json.loads(manifest.read_text())["nodes"].values()
    except (OSError, ValueError, KeyError):
        return []  # no good build yet (or a manifest we cannot read): build them all
    views = {
        (node["schema"], node["alias"])
        for node in nodes
        if node.get("resource_type") == "model"
        and node.get("config", {}).get("materialized") == "view"
        and node.get("config", {}).get("enabled", True)
        and (health or "ops" not in node.get("tags", []))
    }
    # That manifest must be this build's: another DBT_SCHEMA_PREFIX's (one
    # DATA_DIR, two sets of schemas) says nothing about these schemas' views.
    layers = ("staging", "intermediate", "marts", "ops")
    ours = {f"{settings.schema_prefix}{layer}" for layer in layers}
    if not views or not {schema for schema, _ in views} <= ours:
        return []
    with connect(wh) as conn:
        present = set(conn.execute("select schemaname, viewname from pg_views").fetchall())
    if not views <= present:
        return []
    return ["--selector", "daily_build", "--state", str(settings.state_dir)]


def without_health_args(args: list[str]) -> list[str]:
    """A build's selection args without the platform health models (HEALTH_ENABLED=false).

    dbt ignores --exclude beside --selector: the daily selector has a twin.
    """
    if "--selector" in args:
        i = args.index("--selector") + 1
        return [*args[:i], f"{args[i]}_without_health", *args[i + 1 :]]
    return [*args, "--exclude", "tag:ops"]


@contextmanager
def dbt_scope(day: dt.date, tested: Tested | None) -> Iterator[None]:
    """The logical day, and what the last passing build tested, for in-process dbt builds.

    See dbt_project/macros/run_scope.sql. Without ``tested`` every test checks
    every row. Environment, not --vars: a var that changes every run makes dbt
    re-parse the whole project (about 3 s); these are read only when the build runs.
    """
    scope = {
        "DBT_LOGICAL_DATE": day.isoformat(),
        "DBT_TESTED_BEFORE": tested.before.isoformat() if tested else None,
        "DBT_TESTED_DAY": tested.day.isoformat() if tested else None,
    }
    saved = {name: os.environ.get(name) for name in scope}
    try:
        _set_environ(scope)
        yield
    finally:
        _set_environ(saved)


def _set_environ(values: dict[str, str | None]) -> None:
    """Set each variable, or remove it where the value is None."""
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def save_state() -> None:
    """Keep the manifest of the last good build: `make dbt-changed` compares against it."""
    dbt = DbtSettings.from_env()
    manifest = dbt.target_path / "manifest.json"
    if manifest.exists():
        dbt.state_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(manifest, dbt.state_dir / "manifest.json")
