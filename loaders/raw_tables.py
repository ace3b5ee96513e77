"""Every raw table of every source, created together.

dbt's sources must resolve even for a source that has not delivered yet (a
new deployment, or a test loading one source), so whichever loader runs first
creates all raw tables, empty. Each source declares its own in
``loaders/<source>/landing.py`` (``RAW_TABLES``), found here by that path.
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path

import psycopg

from loaders.core.control import ensure_control_tables
from loaders.core.raw_tables import RawTable, ensure_raw_tables
from loaders.ops.artifacts import ensure_ops_tables

LOADERS_DIR = Path(__file__).resolve().parent


@cache
def all_raw_tables() -> tuple[RawTable, ...]:
    tables: list[RawTable] = []
    for landing in sorted(LOADERS_DIR.glob("*/landing.py")):
        module = importlib.import_module(f"loaders.{landing.parent.name}.landing")
        tables += getattr(module, "RAW_TABLES", ())
    return tuple(tables)


def ensure_all_raw_tables(conn: psycopg.Connection) -> None:
    ensure_control_tables(conn)
    ensure_raw_tables(conn, all_raw_tables())
    # dbt's artifacts' tables too, so that the first build's ops views read them.
    ensure_ops_tables(conn)
