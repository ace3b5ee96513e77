"""Every raw table of every source, created together.

dbt's sources must resolve even for a source that has not delivered yet (a
new deployment, or a test loading one source), so whichever loader runs first
creates all raw tables, empty.
"""

from __future__ import annotations

import psycopg

from loaders import mongo, sales_api


def ensure_all_raw_tables(conn: psycopg.Connection) -> None:
    for spec in mongo.COLLECTIONS.values():
        mongo.ensure_raw_table(conn, spec)
    sales_api.ensure_raw_tables(conn)
