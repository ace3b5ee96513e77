"""COPY text encoding, and a COPY that isolates the rows PostgreSQL refuses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from loaders.core.control import Reject


@dataclass(frozen=True, slots=True)
class CopyRow:
    """One line of COPY text format plus what to record if the database refuses it.

    Built once per record on the hot path, so it holds bytes and decodes only
    when a row is actually refused.
    """

    line: bytes
    record_id: bytes
    record_version: bytes
    body: bytes  # the payload kept in loader.rejects if PostgreSQL refuses the line

    def refused(self, reason: str) -> Reject:
        return Reject(
            self.record_id.decode(errors="replace"),
            self.record_version.decode(errors="replace"),
            f"refused by PostgreSQL: {reason}",
            self.body.decode(errors="replace"),
        )


# What PostgreSQL refuses a row for: a value its column cannot hold, or a
# domain rule the table enforces (RawTable.checks).
REFUSED_ROW = (psycopg.errors.DataError, psycopg.errors.CheckViolation)


def copy_statement(table: sql.Composable, columns: Sequence[str]) -> sql.Composed:
    return sql.SQL("copy {} ({}) from stdin").format(
        table, sql.SQL(", ").join(map(sql.Identifier, columns))
    )


def _copy_in(
    conn: psycopg.Connection, table: sql.Composable, columns: Sequence[str], data: bytes
) -> None:
    """One COPY of ``data`` (whole lines) inside a savepoint: all of it lands, or none."""
    with (
        conn.transaction(),
        conn.cursor() as cur,
        cur.copy(copy_statement(table, columns)) as copy,
    ):
        copy.write(data)


def copy_rows(
    conn: psycopg.Connection, table: sql.Composable, columns: Sequence[str], rows: Sequence[CopyRow]
) -> list[Reject]:
    """COPY ``rows`` in; rows the database refuses come back as rejects.

    The fast path is one COPY of the whole batch. If PostgreSQL refuses a row
    (a data error our own checks did not foresee, a check constraint), the batch is split in halves
    inside savepoints until the bad rows are isolated: k bad rows cost
    O(k log n) COPYs, and every good row still lands.
    """
    if not rows:
        return []
    try:
        _copy_in(conn, table, columns, b"".join(r.line for r in rows))
        return []
    except REFUSED_ROW as exc:
        if len(rows) == 1:
            return [rows[0].refused((str(exc).strip().splitlines() or ["data error"])[0])]
        mid = len(rows) // 2
        return copy_rows(conn, table, columns, rows[:mid]) + copy_rows(
            conn, table, columns, rows[mid:]
        )


def copy_lines(
    conn: psycopg.Connection,
    table: sql.Composable,
    columns: Sequence[str],
    lines: Sequence[bytes],
    rows: Callable[[], Sequence[CopyRow]],
) -> list[Reject]:
    """``copy_rows`` for a hot path: the lines go in as one COPY, and only if PostgreSQL
    refuses one are the rows (with what to record) built and bisected."""
    if not lines:
        return []
    try:
        _copy_in(conn, table, columns, b"".join(lines))
        return []
    except REFUSED_ROW:
        return copy_rows(conn, table, columns, rows())


def copy_bytes(value: bytes) -> bytes:
    """Escape a value (UTF-8 bytes) for COPY's text format; most values need nothing."""
    if b"\\" in value or b"\t" in value or b"\n" in value or b"\r" in value:
        value = (
            value.replace(b"\\", b"\\\\")
            .replace(b"\t", b"\\t")
            .replace(b"\n", b"\\n")
            .replace(b"\r", b"\\r")
        )
    return value


def copy_text(value: str) -> bytes:
    """Escape a value for COPY's text format."""
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    ).encode()
