"""What ``make run`` prints at the end, and keeps under DATA_DIR/logs.

What landed per raw table, what dbt did (counts, failures, and whether the
tests checked every row or the new ones), the tables of each layer with their
rows, the steps' times, the rejects so far, the rows quarantined this run and
where everything is.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg
from psycopg import sql

from config import LocalSettings, WarehouseSettings, redact
from loaders.core.warehouse import connect
from pipelines.day import landed_lines
from reports.marts import quarantine_line, quarantined_since
from stack.dbt_build import DbtSummary, counts_line, target_tables
from stack.dbt_state import Tested

__all__ = ["dbt_lines", "footer_lines", "landed_lines", "save", "table_lines"]


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


def dbt_lines(
    dbt: DbtSummary, tested: Tested | None, kept_views: bool, target: str | None = None
) -> list[str]:
    """The build's counts, what its tests covered and its failures (``target``: an extra one)."""
    if target is not None:
        lines = [f"dbt build --target {target} ({dbt.seconds:.1f}s): " + counts_line(dbt)]
        lines += [redact(f"  FAILED {failure}") for failure in dbt.failures]
        return lines + target_tables(target, dbt)
    lines = [
        f"dbt build ({dbt.seconds:.1f}s): " + counts_line(dbt),
        "  the full check: tests over every row, and the unit tests (every DBT_FULL_CHECK_HOURS)"
        if tested is None
        else f"  tests checked what is new since the last build that passed (run of {tested.day})",
    ]
    if kept_views:
        lines.append(
            f"  views: {dbt.views_built} recreated, the others unchanged since the last good build"
        )
    return lines + [redact(f"  FAILED {failure}") for failure in dbt.failures]


def table_lines(wh: WarehouseSettings, dbt: DbtSummary) -> list[str]:
    """Each layer's tables the build made, their rows, and what this run wrote to them."""
    lines = []
    with connect(wh) as conn:
        for layer in ("staging", "intermediate", "marts"):
            models = sorted(dbt.layers.get(layer, []), key=lambda m: (m[1], m[2]))
            tables = [m for m in models if _is_table(conn, m[1], m[2])]
            if not tables:
                continue
            lines.append(f"{layer + ' tables':<46}{'rows':>9}   written this run")
            for name, schema, table in tables:
                n = _table_count(conn, schema, table)
                merged = dbt.incremental_rows.get(name)
                written = "rebuilt" if merged is None else f"{merged:,} merged"
                lines.append(f"  {schema + '.' + table:<44}{n or 0:>9,}   {written}")
    return lines


def footer_lines(
    steps: dict[str, float], wh: WarehouseSettings, local: LocalSettings, seconds: float
) -> list[str]:
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
    with connect(wh) as conn:
        total_rejects = _table_count(conn, "loader", "rejects") or 0
        quarantined = quarantined_since(conn, started)
    return [
        "steps    " + " · ".join(f"{name} {secs:.1f}s" for name, secs in steps.items()),
        f"rejected records so far: {total_rejects:,} (in loader.rejects; see them with",
        '  make sql Q="select stream, record_id, reason from loader.rejects"',
        quarantine_line(quarantined, "this run"),
        f"data: {local.data_dir}   logs: {local.logs_dir}   warehouse: {wh.describe()}",
        f"done in {seconds:.1f}s",
    ]


def save(lines: list[str], logs_dir: Path) -> Path:
    """The summary as a file, ``run-<time>.txt`` in the logs folder."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    path = logs_dir / f"run-{dt.datetime.now():%Y%m%dT%H%M%S}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path
