"""``raw_sales_api.<table>``: the checked files' rows, a date replaced atomically.

Reloading a date replaces that date's raw rows and rejects in one transaction,
so a restart or a backfill never duplicates rows (or rejects) and never leaves
half a date. Rows the checks set aside go to ``loader.rejects``; the rest land.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg
from psycopg import sql

from loaders.core import result as core
from loaders.core.control import Reject, close_batch, open_batch, stream_lock, write_rejects
from loaders.core.copy import CopyRow, copy_rows, copy_text
from loaders.core.raw_tables import RawTable
from loaders.sales_api.checks import FILES, CheckedFile, RawFile

SOURCE = "sales_api"
RAW_SCHEMA = "raw_sales_api"
META_COLUMNS = ("_increment_date", "_file_name", "_row_number", "_batch_id")


def raw_table(spec: RawFile) -> RawTable:
    return RawTable(
        RAW_SCHEMA,
        spec.table,
        (
            # Values arrive as text, exactly as in the files; staging types them.
            *((column, "text") for column in spec.columns),
            ("_increment_date", "date not null"),
            ("_file_name", "text not null"),
            ("_row_number", "integer not null"),
        ),
        indexes=(("_increment_date",),),
        former_schemas=("raw_sales",),  # its name before the schema took the source's
    )


RAW_TABLES = tuple(raw_table(spec) for spec in FILES.values())


def _watermark(conn: psycopg.Connection, spec: RawFile, day: dt.date) -> dict:
    """The latest increment date landed: a reload or backfill of an older date keeps it."""
    row = conn.execute(
        "select value ->> 'increment_date' from loader.watermarks"
        " where source = %s and stream = %s",
        (SOURCE, spec.table),
    ).fetchone()
    latest = max(day.isoformat(), row[0]) if row and row[0] else day.isoformat()
    return {"increment_date": latest}


@dataclass(kw_only=True)
class LoadResult(core.LoadResult):
    """One day's increment, its three files (``landed``, ``rejected``: their sums)."""

    day: dt.date
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows landed
    rejects: dict[str, int] = field(default_factory=dict)  # table -> rows in loader.rejects
    folder: Path | None = None

    def tables(self) -> dict[str, dict[str, int]]:
        return {
            f"{RAW_SCHEMA}.{t}": {"landed": n, "rejected": self.rejects.get(t, 0)}
            for t, n in self.rows.items()
        }


def _copy_rows(name: str, file: CheckedFile, day: dt.date, batch_id: int) -> list[CopyRow]:
    """The file's valid rows as COPY lines; ``_row_number`` is the row's place in the file.

    The place in the file (line - 1), not in the list of valid rows, so a row
    keeps its number whether or not rows before it were rejected (staging's
    "last one in its file wins" depends on it).
    """
    meta = (day.isoformat(), name)
    version = day.isoformat().encode()
    id_at = file.spec.columns.index(file.spec.record_id) if file.spec.record_id else None
    out: list[CopyRow] = []
    for row, line in zip(file.rows, file.line_numbers, strict=True):
        values = (*row, *meta, str(line - 1), str(batch_id))
        text = b"\t".join(b"\\N" if v is None else copy_text(v) for v in values) + b"\n"
        record_id = row[id_at] if id_at is not None else None
        out.append(
            CopyRow(
                text,
                (record_id or f"{name}:{line}").encode(),
                version,
                ",".join(v for v in row if v is not None).encode(),
            )
        )
    return out


def _with_line(name: str, file: CheckedFile, refused: list[Reject]) -> list[Reject]:
    """Rows PostgreSQL refused (which the checks should have caught), with file and line."""
    if not refused:
        return []
    id_at = file.spec.columns.index(file.spec.record_id) if file.spec.record_id else None
    lines: dict[tuple[str, str], int] = {}
    for row, line in zip(file.rows, file.line_numbers, strict=True):
        record_id = (row[id_at] if id_at is not None else None) or f"{name}:{line}"
        body = ",".join(v for v in row if v is not None)
        lines.setdefault((record_id, body), line)
    return [
        replace(r, reason=f"{name}: line {lines.get((r.record_id, r.payload), '?')}: {r.reason}")
        for r in refused
    ]


def land_increment(
    conn: psycopg.Connection, day: dt.date, checked: dict[str, CheckedFile]
) -> LoadResult:
    """Replace ``day``'s raw rows and rejects with the checked files', atomically.

    The date's rejects are replaced in the same transaction as its rows, so a
    rerun leaves exactly what one clean load leaves, and a corrected re-send
    clears the rejects it fixes. The caller has created the raw tables
    (``loaders.raw_tables``).
    """
    result = LoadResult(day=day)
    # One lock for every date: batch ids then commit in order, which is what
    # the incremental dbt models rely on (see the incremental_since macro).
    with stream_lock(conn, SOURCE, "increments"), conn.transaction():
        for name, file in checked.items():
            spec = file.spec
            table = raw_table(spec).identifier
            conn.execute(sql.SQL("delete from {} where _increment_date = %s").format(table), (day,))
            conn.execute(
                "delete from loader.rejects"
                " where source = %s and stream = %s and record_version = %s",
                (SOURCE, spec.table, day.isoformat()),
            )
            batch_id = open_batch(conn, SOURCE, spec.table)
            rows = _copy_rows(name, file, day, batch_id)
            refused = _with_line(
                name, file, copy_rows(conn, table, (*spec.columns, *META_COLUMNS), rows)
            )
            rejects = [bad.reject(day) for bad in file.bad] + refused
            rejected = write_rejects(conn, batch_id, SOURCE, spec.table, rejects)
            landed = len(rows) - len(refused)
            close_batch(
                conn, batch_id, SOURCE, spec.table, landed, rejected, _watermark(conn, spec, day)
            )
            result.rows[spec.table] = landed
            result.rejects[spec.table] = rejected
            result.landed += landed
            result.rejected += rejected
            if rejects:
                result.notes.append(
                    f"{name} for {day}: {len(rejects)} row(s) rejected (in loader.rejects), "
                    f"e.g. {rejects[0].reason}"
                )
            if file.missing_optional:
                result.notes.append(
                    f"{name} for {day} has no {', '.join(file.missing_optional)} column "
                    "(older format): staging treats those rows as shipped"
                )
    return result
