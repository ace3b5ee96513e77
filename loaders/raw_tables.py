"""Every raw table of every source, created together.

dbt's sources must resolve even for a source that has not delivered yet (a
new deployment, or a test loading one source), so whichever loader runs first
creates all raw tables, empty. A new source adds its ``RAW_TABLES`` here.
"""

from __future__ import annotations

import psycopg

from loaders.core.control import ensure_control_tables
from loaders.core.raw_tables import RawTable, ensure_raw_tables
from loaders.events import landing as events
from loaders.kafka import landing as kafka
from loaders.mongo import landing as mongo
from loaders.oltp import landing as oltp
from loaders.sales_api import landing as sales_api

ALL_RAW_TABLES: tuple[RawTable, ...] = (
    *mongo.RAW_TABLES,
    *sales_api.RAW_TABLES,
    *oltp.RAW_TABLES,
    *kafka.RAW_TABLES,
    *events.RAW_TABLES,
)


def ensure_all_raw_tables(conn: psycopg.Connection) -> None:
    ensure_control_tables(conn)
    ensure_raw_tables(conn, ALL_RAW_TABLES)
