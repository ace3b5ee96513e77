"""Throwaway servers for the events benches: a PostgreSQL and an embedded ClickHouse.

Both on free ports in a temporary folder, removed afterwards; WAREHOUSE_* and
CLICKHOUSE_* point at them (database ``bench`` and ``events``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stack.embedded_clickhouse import EmbeddedClickHouse
from stack.embedded_postgres import EmbeddedPostgres
from tests.conftest import free_port


@contextmanager
def warehouse_and_clickhouse(prefix: str) -> Iterator[tuple[EmbeddedPostgres, Path]]:
    """(the PostgreSQL server, a scratch folder), with both servers up and the env set."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        os.chmod(tmp, 0o755)  # the embedded PostgreSQL runs as its own user
        pg = EmbeddedPostgres(pgdata=Path(tmp) / "pg" / "data", port=free_port())
        ch = EmbeddedClickHouse(data_dir=Path(tmp) / "clickhouse" / "data", port=free_port())
        pg.start()
        try:
            ch.start()
            try:
                pg.ensure_database("bench")
                os.environ.update({
                    "WAREHOUSE_HOST": pg.host, "WAREHOUSE_PORT": str(pg.port),
                    "WAREHOUSE_USER": pg.superuser, "WAREHOUSE_PASSWORD": "",
                    "WAREHOUSE_DB": "bench", "CLICKHOUSE_HOST": ch.host,
                    "CLICKHOUSE_PORT": str(ch.port), "CLICKHOUSE_USER": "default",
                    "CLICKHOUSE_PASSWORD": "", "CLICKHOUSE_DB": "events",
                    "CLICKHOUSE_SECURE": "false", "EMBEDDED_SERVICES": "none",
                })  # fmt: skip
                yield pg, Path(tmp)
            finally:
                ch.stop()
        finally:
            pg.destroy()
