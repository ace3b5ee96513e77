"""A throwaway stack's marts as plain data, to compare two stacks' builds.

The bench tier's two background runs share one `make run` reference: the
scaling bench's stack runs `make run` for the same first days, seed and size
as the two days under Airflow's scheduler (``tests.bench.airflow_days``), so
it saves its marts to a file (``save``) that the Airflow run reads
(``wait_for``) instead of building a second stack for the same result.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

# Bookkeeping, not data: when a row was loaded or built or a snapshot version
# began, and the loader batch that brought it (numbered across all loads).
VOLATILE = re.compile(r"(^_?loaded_at$|^dbt_|valid_from|valid_to|^etl_|^last_updated$|^batch_id$)")
# What makes two stacks' `make run`s the same: the simulated days, seed and size.
SAME_RUN = ("DATAGEN_START_DATE", "DATAGEN_HISTORY_DAYS", "DATAGEN_SCALE", "DATAGEN_SEED")


def warehouse_conninfo(env: dict[str, str], dbname: str = "warehouse") -> str:
    """A stack's embedded PostgreSQL: its WAREHOUSE_PASSWORD, or the one it generated
    (none: a release before passwords, whose server trusted every login)."""
    generated = Path(env["DATA_DIR"]) / "postgres" / "password"
    password = env.get("WAREHOUSE_PASSWORD") or (
        generated.read_text().strip() if generated.exists() else None
    )
    return make_conninfo(
        host="127.0.0.1", port=env["WAREHOUSE_PORT"], user="postgres", dbname=dbname,
        password=password,
    )  # fmt: skip


def marts(env: dict[str, str]) -> dict[str, list[str]]:
    """Every table of the marts schema: its rows (wall-clock columns left out) as text, sorted."""
    out: dict[str, list[str]] = {}
    with psycopg.connect(warehouse_conninfo(env)) as conn:
        tables = conn.execute(
            "select table_name from information_schema.tables"
            " where table_schema = 'marts' and table_type = 'BASE TABLE' order by 1"
        ).fetchall()
        for (table,) in tables:
            columns = [
                c
                for (c,) in conn.execute(
                    "select column_name from information_schema.columns"
                    " where table_schema = 'marts' and table_name = %s order by ordinal_position",
                    (table,),
                ).fetchall()
                if not VOLATILE.search(c)
            ]
            query = sql.SQL("select {} from marts.{}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table)
            )
            out[table] = sorted(repr(row) for row in conn.execute(query).fetchall())
    return out


def run_key(env: dict[str, str]) -> dict[str, str]:
    return {name: env.get(name, "") for name in SAME_RUN}


def _write(path: Path, content: dict) -> None:
    part = path.with_suffix(".part")
    part.write_text(json.dumps(content))
    os.replace(part, path)  # whole or not at all: the reader polls for the file


def save(path: Path, env: dict[str, str]) -> None:
    """Save this stack's marts, with what its `make run`s simulated."""
    _write(path, {"run": run_key(env), "marts": marts(env)})


def save_failure(path: Path, reason: str) -> None:
    """Tell the reader no marts will come (it then builds its own reference)."""
    if not path.exists():
        _write(path, {"error": reason})


def wait_for(path: Path, env: dict[str, str], timeout: float) -> dict[str, list[str]] | None:
    """The marts saved at ``path`` for the same run as ``env``'s; None (saying why) if none come."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            print(f"no reference marts in {path} after {timeout:.0f}s", flush=True)
            return None
        time.sleep(2)
    saved = json.loads(path.read_text())
    if "error" in saved:
        print(f"no reference marts: {saved['error']}", flush=True)
        return None
    if saved["run"] != run_key(env):
        print(f"the reference marts are of another run: {saved['run']}", flush=True)
        return None
    return saved["marts"]
