"""``python -m stack.run``: one day of the whole pipeline on the configured servers.

Starts the embedded services (those EMBEDDED_SERVICES names), lets the app
simulator write the next logical day, lands what is new, runs ``dbt build``
and prints a summary (also saved under DATA_DIR/logs). The first run writes
DATAGEN_HISTORY_DAYS days and builds everything; every later run adds one day
and processes only what is new. Airflow runs the same steps as tasks.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from pymongo import MongoClient

from datagen.mongo_writer import days_to_generate, write_days
from datagen.population import Population
from loaders.mongo import LoadResult
from loaders.mongo_run import load_all, print_progress
from loaders.sales_api import DayResult, load_day
from loaders.settings import (
    PROJECT_ROOT,
    ConfigError,
    DatagenSettings,
    LocalSettings,
    MongoSettings,
    WarehouseSettings,
)
from loaders.warehouse import LoaderError
from stack import services
from stack.postgres import ServiceError

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
PROFILES_DIR = PROJECT_ROOT / "profiles"


class DbtFailed(RuntimeError):
    pass


@dataclass
class DbtSummary:
    success: bool
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # resource type -> status -> n
    failures: list[str] = field(default_factory=list)
    incremental_rows: dict[str, int] = field(default_factory=dict)
    marts: list[tuple[str, str]] = field(default_factory=list)  # (schema, table)
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
            rows = (r.adapter_response or {}).get("rows_affected")
            if rows is not None:
                summary.incremental_rows[node.name] = rows
        if kind == "model" and len(node.fqn) > 1 and node.fqn[1] == "marts":
            summary.marts.append((node.schema, node.alias))
    return summary


def _table_count(conn: psycopg.Connection, schema: str, table: str) -> int | None:
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
    with psycopg.connect(wh.conninfo()) as conn:
        row = conn.execute("select to_regclass('loader.watermarks') is not null").fetchone()
        if not row or not row[0]:
            return True
        row = conn.execute("select count(*) from loader.watermarks").fetchone()
        return not row or row[0] == 0


def run() -> int:
    t0 = time.monotonic()
    local = LocalSettings.from_env()
    wh, mongo_settings, gen = (
        WarehouseSettings.from_env(),
        MongoSettings.from_env(),
        DatagenSettings.from_env(),
    )
    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    for line in services.up():
        say(f"service  {line}")
    first = _first_run(wh)

    # 1. The app writes the next logical day(s).
    population = Population(gen.seed, gen.scale, dt.date.fromisoformat(gen.start_date))
    client: MongoClient = MongoClient(mongo_settings.uri, serverSelectionTimeoutMS=5000)
    try:
        db = client[mongo_settings.database]
        days = days_to_generate(db, population.start_date, gen.history_days)
        for day, counts in write_days(db, population, days):
            say(f"datagen  {day}: {sum(counts.values()):,} documents written to MongoDB")
    finally:
        client.close()

    # 2. Land what is new: MongoDB incrementally, the sales API day by day.
    results: list[LoadResult] = load_all(progress=print_progress)
    sales: list[DayResult] = []
    for day in days:
        sales.append(load_day(day))
        rows = ", ".join(f"{t}={n:,}" for t, n in sales[-1].rows.items())
        print(f"  sales_api {day}: {rows} ({sales[-1].seconds:.1f}s)", file=sys.stderr, flush=True)
    # 3. Transform.
    dbt_logs = local.logs_dir / "dbt"
    dbt = run_dbt(["build", "--vars", f"{{logical_date: '{days[-1]}'}}"], dbt_logs)

    say()
    say(
        f"== summary: {'first run (full build)' if first else 'incremental run'}"
        f" for logical day {days[-1]} =="
    )
    say("landed (rows, this run)          landed   rejected")
    for r in results:
        say(f"  raw_mongo.{r.collection:<22}{r.landed:>8,}   {r.rejected:>8,}")
    for table in sorted({t for s in sales for t in s.rows}):
        say(f"  raw_sales.{table:<22}{sum(s.rows.get(table, 0) for s in sales):>8,}   {0:>8,}")
    landed = sum(r.landed for r in results) + sum(sum(s.rows.values()) for s in sales)
    rejected = sum(r.rejected for r in results)
    say(f"  {'total':<32}{landed:>8,}   {rejected:>8,}")
    if sales:
        say(f"sales API: {len(sales)} day(s) of increments, files under {sales[-1].folder.parent}")
    for note in [n for r in results for n in r.notes] + [n for s in sales for n in s.notes]:
        say(f"  note: {note}")
    if not first:
        say(
            f"incremental: only documents written since each collection's watermark were read;"
            f" {len(days)} new day(s) of source data"
        )
        for name, rows in sorted(dbt.incremental_rows.items()):
            say(f"  {name:<36} {rows:>8,} rows merged")
    parts = []
    for kind in ("model", "snapshot", "test", "unit_test"):
        c = dbt.counts.get(kind, {})
        ok = c.get("success", 0) + c.get("pass", 0)
        bad = sum(v for k, v in c.items() if k not in ("success", "pass"))
        if ok or bad:
            parts.append(f"{kind}s {ok} ok" + (f" / {bad} not ok" if bad else ""))
    say(f"dbt build ({dbt.seconds:.1f}s): " + ", ".join(parts))
    for failure in dbt.failures:
        say(f"  FAILED {failure}")
    with psycopg.connect(wh.conninfo()) as conn:
        say("marts (rows)")
        for schema, table in sorted(set(dbt.marts)):
            n = _table_count(conn, schema, table)
            say(f"  {schema}.{table:<30} {'missing' if n is None else f'{n:,}'}")
        total_rejects = _table_count(conn, "loader", "rejects") or 0
    say(f"rejected records so far: {total_rejects:,} (in loader.rejects; see them with")
    say('  make sql Q="select stream, record_id, reason from loader.rejects"')
    say(f"data: {local.data_dir}   logs: {local.logs_dir}   warehouse: {wh.describe()}")
    say(f"done in {time.monotonic() - t0:.1f}s")
    local.logs_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    (local.logs_dir / f"run-{stamp}.txt").write_text("\n".join(lines) + "\n")
    if not dbt.success:
        raise DbtFailed("dbt build failed: " + "; ".join(dbt.failures[:5]))
    return 0


def main() -> int:
    try:
        return run()
    except (ServiceError, LoaderError, ConfigError, DbtFailed) as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
