"""Helpers for the dbt tests: a private dbt target dir, and writing and reading the warehouse."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from psycopg import sql


@pytest.fixture
def dbt_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """dbt writes its target (manifest, compiled SQL) under tmp, not in the project."""
    target = tmp_path / "target"
    monkeypatch.setenv("DBT_TARGET_PATH", str(target))
    return target


def incremental_models(target: Path) -> dict[str, tuple[str, str]]:
    """Every incremental model of the last dbt invocation: name -> (schema, table)."""
    manifest = json.loads((target / "manifest.json").read_text())
    return {
        node["name"]: (node["schema"], node["alias"])
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["config"]["materialized"] == "incremental"
    }


def table_rows(conninfo: str, schema: str, table: str, skip: set[str] = frozenset()) -> list[tuple]:
    """All rows of a table (columns in skip left out), sorted, so two states compare."""
    with psycopg.connect(conninfo) as conn:
        columns = [
            name
            for (name,) in conn.execute(
                "select column_name from information_schema.columns"
                " where table_schema = %s and table_name = %s order by ordinal_position",
                (schema, table),
            )
            if name not in skip
        ]
        query = sql.SQL("select {} from {}.{}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.Identifier(schema),
            sql.Identifier(table),
        )
        return sorted(conn.execute(query).fetchall(), key=repr)


def insert(conn: psycopg.Connection, schema: str, table: str, record: dict) -> None:
    """One row into a raw table, as a loader would land it (values as given)."""
    conn.execute(
        sql.SQL("insert into {}.{} ({}) values ({})").format(
            sql.Identifier(schema),
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, record)),
            sql.SQL(", ").join(sql.Placeholder() * len(record)),
        ),
        list(record.values()),
    )


def rows(conninfo: str, query: str) -> list[tuple]:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(query).fetchall()
