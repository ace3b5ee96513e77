"""Raw tables as data: each source declares its tables, the core creates them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from loaders.core.control import DDL_LOCK

# Every raw table ends with these: the loader batch (loader.batches) that landed
# the row, which incremental dbt models use as their high-water mark, and when.
LOAD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_batch_id", "bigint not null"),
    ("_loaded_at", "timestamptz not null default now()"),
)


@dataclass(frozen=True)
class RawTable:
    schema: str
    name: str
    columns: tuple[tuple[str, str], ...]  # the source's own columns: (name, type), in order
    indexes: tuple[tuple[str, ...], ...] = ()
    # Schemas it was in before a rename: a warehouse that still has one (and not
    # ``schema``) has it renamed, rows and history kept, the next time tables are ensured.
    former_schemas: tuple[str, ...] = ()
    # Domain rules the table itself enforces: (constraint name, SQL check). A
    # row breaking one is refused by PostgreSQL, and the loader keeps it in
    # loader.rejects with the constraint's name as its reason. A table made
    # before a check existed gets it NOT VALID: rows already there stay.
    checks: tuple[tuple[str, str], ...] = ()

    @property
    def all_columns(self) -> tuple[tuple[str, str], ...]:
        return (*self.columns, *LOAD_COLUMNS)

    @property
    def identifier(self) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(self.name))

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"


def ensure_raw_tables(conn: psycopg.Connection, tables: Iterable[RawTable]) -> None:
    """Create the schemas, tables and indexes that do not exist yet, in one transaction."""
    with conn.transaction():
        conn.execute(DDL_LOCK)
        for table in tables:
            for former in table.former_schemas:
                _rename_schema(conn, former, table.schema)
            conn.execute(
                sql.SQL("create schema if not exists {}").format(sql.Identifier(table.schema))
            )
            columns = sql.SQL(",\n").join(
                sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(definition))
                for name, definition in table.all_columns
            )
            conn.execute(
                sql.SQL("create table if not exists {} ({})").format(table.identifier, columns)
            )
            _add_missing_columns(conn, table)
            for name, check in table.checks:
                _add_check(conn, table, name, check)
            for cols in table.indexes:
                name = f"{table.name}__{'_'.join(c.strip('_') for c in cols)}_idx"
                conn.execute(
                    sql.SQL("create index if not exists {} on {} ({})").format(
                        sql.Identifier(name),
                        table.identifier,
                        sql.SQL(", ").join(map(sql.Identifier, cols)),
                    )
                )


def _add_missing_columns(conn: psycopg.Connection, table: RawTable) -> None:
    """Columns a newer release declares, added to a table an older one made (null in its rows).

    Looked up first: ALTER TABLE takes an exclusive lock even when the column exists.
    """
    present = {
        name
        for (name,) in conn.execute(
            "select attname from pg_attribute where attrelid = %s::regclass"
            " and attnum > 0 and not attisdropped",
            (table.qualified_name,),
        ).fetchall()
    }
    for name, definition in table.all_columns:
        if name not in present:
            conn.execute(
                sql.SQL("alter table {} add column {} {}").format(
                    table.identifier, sql.Identifier(name), sql.SQL(definition)
                )
            )


def _add_check(conn: psycopg.Connection, table: RawTable, name: str, check: str) -> None:
    exists = conn.execute(
        "select count(*) from pg_constraint where conrelid = %s::regclass and conname = %s",
        (table.qualified_name, name),
    ).fetchone()[0]
    if not exists:
        conn.execute(
            sql.SQL("alter table {} add constraint {} check ({}) not valid").format(
                table.identifier, sql.Identifier(name), sql.SQL(check)
            )
        )


def _rename_schema(conn: psycopg.Connection, former: str, schema: str) -> None:
    exists = "select count(*) from pg_namespace where nspname = %s"
    if (
        conn.execute(exists, (former,)).fetchone()[0]
        and not conn.execute(exists, (schema,)).fetchone()[0]
    ):
        conn.execute(
            sql.SQL("alter schema {} rename to {}").format(
                sql.Identifier(former), sql.Identifier(schema)
            )
        )
