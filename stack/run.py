"""``python -m stack.run``: one day of the whole pipeline on the configured servers.

Starts the embedded services (those EMBEDDED_SERVICES names), lets the app
simulator write the next logical day, lands what is new, runs ``dbt build``
and prints a summary (also saved under DATA_DIR/logs). The first run writes
DATAGEN_HISTORY_DAYS days and builds everything; every later run adds one day
and processes only what is new. Airflow runs the same steps as tasks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from config import (
    DBT_PROJECT_DIR,
    PROFILES_DIR,
    ClickHouseSettings,
    ConfigError,
    DbtSettings,
    LocalSettings,
    WarehouseSettings,
    redact,
)
from loaders.core.control import (
    ensure_control_tables,
    full_check_due,
    mark_full_check,
    read_watermark,
    write_watermark,
)
from loaders.core.warehouse import LoaderError, connect
from pipelines import SOURCES
from pipelines.clock import next_days
from pipelines.day import land, landed_lines, simulate
from stack import services
from stack.embedded_postgres import ServiceError
from stack.run_lock import RunLocked, run_lock


class DbtFailed(RuntimeError):
    pass


@dataclass
class DbtSummary:
    success: bool
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # resource type -> status -> n
    failures: list[str] = field(default_factory=list)
    incremental_rows: dict[str, int] = field(default_factory=dict)  # model -> rows merged
    incremental: set[str] = field(default_factory=set)  # incremental models built
    views_built: int = 0
    layers: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    seconds: float = 0.0


def run_dbt(args: list[str], log_dir: Path) -> DbtSummary:
    """Invoke dbt in-process and summarise its results (counts, failures, new rows)."""
    from dbt.cli.main import dbtRunner

    started = time.monotonic()
    res = dbtRunner().invoke(
        [
            *args,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(PROFILES_DIR),
            "--log-path",
            str(log_dir),
            "--quiet",
        ]
    )
    summary = DbtSummary(success=bool(res.success), seconds=time.monotonic() - started)
    results = getattr(res.result, "results", None)
    if results is None:
        reason = res.exception or "dbt did not run (see its log)"
        summary.failures.append(str(reason).strip().splitlines()[0])
        return summary
    for r in results:
        node = r.node
        kind = str(node.resource_type).split(".")[-1].lower()
        status = str(r.status).split(".")[-1].lower()
        summary.counts.setdefault(kind, {}).setdefault(status, 0)
        summary.counts[kind][status] += 1
        if status in ("error", "fail"):
            msg = " ".join(
                line.strip() for line in (r.message or status).splitlines() if line.strip()
            )
            summary.failures.append(f"{kind} {node.name}: {msg[:400]}")
        if kind == "model" and node.config.materialized == "incremental":
            summary.incremental.add(node.name)
            rows = (r.adapter_response or {}).get("rows_affected")
            if rows is not None:
                summary.incremental_rows[node.name] = rows
        if kind == "model" and node.config.materialized == "view":
            summary.views_built += 1
        if kind == "model" and status == "success" and len(node.fqn) > 1:
            layer = summary.layers.setdefault(node.fqn[1], [])
            layer.append((node.name, node.schema, node.alias))
    return summary


def _is_table(conn: psycopg.Connection, schema: str, table: str) -> bool:
    """A materialized table (views are left out of the summary)."""
    row = conn.execute(
        "select 1 from pg_tables where schemaname = %s and tablename = %s", (schema, table)
    ).fetchone()
    return row is not None


def _table_count(conn: psycopg.Connection, schema: str, table: str) -> int | None:
    """Rows in ``schema.table``; None if it does not exist."""
    try:
        row = conn.execute(
            sql.SQL("select count(*) from {}.{}").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
        ).fetchone()
        return int(row[0]) if row else 0
    except psycopg.errors.UndefinedTable:
        conn.rollback()
        return None


def _first_run(wh: WarehouseSettings) -> bool:
    with connect(wh) as conn:
        row = conn.execute("select to_regclass('loader.watermarks') is not null").fetchone()
        if not row or not row[0]:
            return True
        row = conn.execute("select count(*) from loader.watermarks").fetchone()
        return not row or row[0] == 0


def run() -> int:
    t0 = time.monotonic()
    local, wh = LocalSettings.from_env(), WarehouseSettings.from_env()
    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    dbt_settings = DbtSettings.from_env()  # a bad DBT_* setting stops the run before any work
    for line in services.up():
        say(f"service  {line}")
    first = _first_run(wh)
    days = next_days()
    steps: dict[str, float] = {}  # step -> seconds, for the summary and make bench
    t_step = time.monotonic()

    # 1. Each simulated source system writes the logical day(s); 2. land what
    # is new (every day a daily source has not landed yet, watermark-based
    # sources once).
    simulate(days, say)
    steps["datagen"], t_step = time.monotonic() - t_step, time.monotonic()
    landed = land(wh, days)
    steps["load"] = time.monotonic() - t_step

    # 3. Transform: every model on the warehouse, then the models some sources
    # also build elsewhere (the events models on ClickHouse, from the events in
    # place), each target with its own dbt target dir so the warehouse's
    # manifest stays the one Airflow and `make dbt-changed` read.
    tested = last_passed_build(wh, dbt_settings)  # None: the full check (every row, unit tests)
    build_started = _warehouse_now(wh)  # rows loaded before this are in this build
    full_check = tested is None
    keep_views = [] if full_check else keep_unchanged_views_args(wh, dbt_settings)
    with dbt_scope(days[-1], tested):
        dbt = run_dbt(["build", *dbt_scope_args(full_check), *keep_views], local.logs_dir / "dbt")
        steps["dbt"] = dbt.seconds
        if dbt.success:
            _save_state()
        other_targets = sorted({t for s in SOURCES for t in s.dbt_targets} - {"warehouse"})
        elsewhere: dict[str, DbtSummary] = {}
        for target in other_targets:
            target_path = dbt_settings.target_path / target
            elsewhere[target] = run_dbt(
                ["build", "--target", target, "--target-path", str(target_path),
                 *dbt_scope_args(full_check)],
                local.logs_dir / f"dbt-{target}",
            )  # fmt: skip
            steps[f"dbt {target}"] = elsewhere[target].seconds
    if dbt.success and all(d.success for d in elsewhere.values()):
        _dbt_passed(wh, dbt_settings, Tested(build_started, days[-1]), full_check)

    say()
    kind = "first run (full build)" if first else "incremental run"
    say(f"== summary: {kind} for logical day {days[-1]} ({len(days)} new day(s) of source data) ==")
    for line in landed_lines(landed):
        say(line)
    say(f"dbt build ({dbt.seconds:.1f}s): " + _counts_line(dbt))
    say(
        "  the full check: tests over every row, and the unit tests (every DBT_FULL_CHECK_HOURS)"
        if full_check
        else f"  tests checked what is new since the last build that passed (run of {tested.day})"
    )
    if keep_views:
        say(f"  views: {dbt.views_built} recreated, the others unchanged since the last good build")
    for failure in dbt.failures:
        say(redact(f"  FAILED {failure}"))
    with connect(wh) as conn:
        for layer in ("staging", "intermediate", "marts"):
            models = sorted(dbt.layers.get(layer, []), key=lambda m: (m[1], m[2]))
            tables = [m for m in models if _is_table(conn, m[1], m[2])]
            if not tables:
                continue
            say(f"{layer + ' tables':<46}{'rows':>9}   written this run")
            for name, schema, table in tables:
                n = _table_count(conn, schema, table)
                merged = dbt.incremental_rows.get(name)
                written = "rebuilt" if merged is None else f"{merged:,} merged"
                say(f"  {schema + '.' + table:<44}{n or 0:>9,}   {written}")
        total_rejects = _table_count(conn, "loader", "rejects") or 0
    for target, summary in elsewhere.items():
        say(f"dbt build --target {target} ({summary.seconds:.1f}s): " + _counts_line(summary))
        for failure in summary.failures:
            say(redact(f"  FAILED {failure}"))
        for line in _target_tables(target, summary):
            say(line)
    t_step = time.monotonic()
    if dbt.success:
        report_failure = _daily_report(days[-1], say)
    else:  # never a report of marts whose tests failed (it would count as delivered)
        report_failure = None
        say(f"report   {days[-1]}: not made, dbt build failed")
    steps["report"] = time.monotonic() - t_step
    say("steps    " + " · ".join(f"{name} {seconds:.1f}s" for name, seconds in steps.items()))
    say(f"rejected records so far: {total_rejects:,} (in loader.rejects; see them with")
    say('  make sql Q="select stream, record_id, reason from loader.rejects"')
    say(f"data: {local.data_dir}   logs: {local.logs_dir}   warehouse: {wh.describe()}")
    say(f"done in {time.monotonic() - t0:.1f}s")
    local.logs_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    (local.logs_dir / f"run-{stamp}.txt").write_text("\n".join(lines) + "\n")
    failed = [
        ("dbt build" + ("" if t == dbt_settings.target else f" --target {t}"), d)
        for t, d in [(dbt_settings.target, dbt), *elsewhere.items()]
        if not d.success
    ]
    if failed:
        raise DbtFailed(
            "; ".join(f"{what} failed: " + "; ".join(d.failures[:5]) for what, d in failed)
        )
    if report_failure:
        raise report_failure
    return 0


def _daily_report(day: dt.date, say) -> LoaderError | None:
    """The logical day's app report, delivered where REPORT_*/TELEGRAM_* say.

    A day the marts do not have (events not built) is a note; a delivery that
    fails (Telegram refusing) fails the run after the summary.
    """
    from reports import daily
    from reports.marts import MartMissing

    try:
        result = daily.send(day)
    except MartMissing as exc:
        say(f"report   {day}: not made ({exc})")
        return None
    except (LoaderError, ConfigError, OSError) as exc:
        say(redact(f"report   {day}: FAILED {exc}"))
        return exc if isinstance(exc, LoaderError) else LoaderError(f"the report failed: {exc}")
    done = "written to" if result.channel == "disk" else "sent to"
    if not result.sent:
        say(f"report   {day}: already delivered to {result.delivered_to}")
    else:
        say(f"report   {day}: {done} {result.delivered_to}")
    return None


@dataclass(frozen=True)
class Tested:
    """What the last build whose every test passed covered: the daily builds test what is newer.

    ``before``: when it started, on the warehouse's clock (the loaders stamp
    rows with it too); every row loaded earlier was in that build. ``day``: its
    logical day; the events models' days up to it were rebuilt and tested.
    """

    before: dt.datetime
    day: dt.date


def _warehouse_now(wh: WarehouseSettings) -> dt.datetime:
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


def _dbt_passed(wh: WarehouseSettings, settings: DbtSettings, tested: Tested, full: bool) -> None:
    with connect(wh) as conn:
        value = {"before": tested.before.isoformat(), "day": tested.day.isoformat()}
        write_watermark(conn, "dbt", _dbt_stream(settings), value)
        if full:
            mark_full_check(conn, "dbt", _dbt_stream(settings))


def dbt_scope_args(full_check: bool) -> list[str]:
    """Unit tests test the SQL, which a new day does not change: CI and the full check run them."""
    return [] if full_check else ["--exclude-resource-type", "unit_test"]


def keep_unchanged_views_args(wh: WarehouseSettings, settings: DbtSettings) -> list[str]:
    """A daily build's views unchanged since the last good build stay as they are.

    dbt_project/selectors.yml's daily_build, against that build's manifest (the
    one _save_state keeps). Only when every view of that manifest exists in the
    warehouse: one dropped by hand, or a warehouse that is not the one that
    manifest was built on, means every view is built again.
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
    }
    # That manifest must be this build's: another DBT_SCHEMA_PREFIX's (one
    # DATA_DIR, two sets of schemas) says nothing about these schemas' views.
    ours = {f"{settings.schema_prefix}{layer}" for layer in ("staging", "intermediate", "marts")}
    if not views or not {schema for schema, _ in views} <= ours:
        return []
    with connect(wh) as conn:
        present = set(conn.execute("select schemaname, viewname from pg_views").fetchall())
    if not views <= present:
        return []
    return ["--selector", "daily_build", "--state", str(settings.state_dir)]


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


def _counts_line(dbt: DbtSummary) -> str:
    """``models 8 ok, tests 20 ok / 1 warn``: what a dbt build did, by resource type."""
    parts = []
    for kind_name in ("model", "snapshot", "test", "unit_test"):
        c = dbt.counts.get(kind_name, {})
        ok = c.get("success", 0) + c.get("pass", 0)
        # Warn-level tests count bad source values that staging nulled or left out.
        warn = c.get("warn", 0)
        bad = sum(v for k, v in c.items() if k not in ("success", "pass", "warn"))
        if ok or warn or bad:
            parts.append(
                f"{kind_name}s {ok} ok"
                + (f" / {warn} warn" if warn else "")
                + (f" / {bad} not ok" if bad else "")
            )
    return ", ".join(parts)


def _target_tables(target: str, dbt: DbtSummary) -> list[str]:
    """Rows in the marts a build on another target made (only ClickHouse so far)."""
    if target != "clickhouse" or not dbt.layers.get("marts"):
        return []
    from loaders.events.client import open_source

    lines = [f"{'marts tables on ' + target:<46}{'rows':>9}   built this run"]
    marts = sorted(dbt.layers["marts"], key=lambda m: (m[1], m[2]))
    try:
        with open_source(ClickHouseSettings.from_env()) as ch, ch.errors("counting the marts"):
            for name, schema, table in marts:
                n = ch.client.command(f"SELECT count() FROM `{schema}`.`{table}`")
                # dbt-clickhouse reports no row counts for incremental runs.
                kind = "incremental" if name in dbt.incremental else "table"
                lines.append(f"  {schema + '.' + table:<44}{int(n):>9,}   {kind}")
    except LoaderError as exc:  # one line, secrets masked
        lines.append(f"  (cannot count its tables: {exc})")
    return lines


def _save_state() -> None:
    """Keep the manifest of the last good build: `make dbt-changed` compares against it."""
    dbt = DbtSettings.from_env()
    manifest = dbt.target_path / "manifest.json"
    if manifest.exists():
        dbt.state_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(manifest, dbt.state_dir / "manifest.json")


def main() -> int:
    try:
        with run_lock(LocalSettings.from_env().data_dir):
            return run()
    except (ServiceError, LoaderError, ConfigError, DbtFailed, RunLocked) as exc:
        print(f"make run: {redact(str(exc))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
