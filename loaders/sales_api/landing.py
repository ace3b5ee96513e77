"""``raw_sales.<table>``: the checked files' rows, a date replaced atomically.

Reloading a date replaces that date's raw rows in one transaction, so a
restart or a backfill never duplicates rows and never leaves half a date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from loaders.core.control import close_batch, open_batch, stream_lock
from loaders.core.copy import copy_statement
from loaders.core.raw_tables import RawTable
from loaders.sales_api.checks import FILES, CheckedFile, RawFile

SOURCE = "sales_api"
RAW_SCHEMA = "raw_sales"
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
            ("_batch_id", "bigint not null"),
            ("_loaded_at", "timestamptz not null default now()"),
        ),
        indexes=(("_increment_date",),),
    )


RAW_TABLES = tuple(raw_table(spec) for spec in FILES.values())


@dataclass
class DayResult:
    day: dt.date
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows landed
    folder: Path | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def land_increment(
    conn: psycopg.Connection, day: dt.date, checked: dict[str, CheckedFile]
) -> DayResult:
    """Replace ``day``'s raw rows with the checked files, atomically.

    The caller has created the raw tables (``loaders.raw_tables``).
    """
    result = DayResult(day)
    # One lock for every date: batch ids then commit in order, which is what
    # the incremental dbt models rely on (see the incremental_since macro).
    with stream_lock(conn, SOURCE, "increments"), conn.transaction():
        for name, file in checked.items():
            table = raw_table(file.spec).identifier
            conn.execute(sql.SQL("delete from {} where _increment_date = %s").format(table), (day,))
            batch_id = open_batch(conn, SOURCE, file.spec.table)
            stmt = copy_statement(table, (*file.spec.columns, *META_COLUMNS))
            with conn.cursor() as cur, cur.copy(stmt) as copy:
                for number, row in enumerate(file.rows, start=1):
                    copy.write_row((*row, day, name, number, batch_id))
            close_batch(
                conn,
                batch_id,
                SOURCE,
                file.spec.table,
                len(file.rows),
                0,
                {"increment_date": day.isoformat()},
            )
            result.rows[file.spec.table] = len(file.rows)
            if file.missing_optional:
                result.notes.append(
                    f"{name} for {day} has no {', '.join(file.missing_optional)} column "
                    "(older format): staging treats those rows as shipped"
                )
    return result
