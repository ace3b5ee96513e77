"""COPY text encoding, a COPY that isolates the rows PostgreSQL refuses, and a source
read ahead in a thread while COPY writes."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import psycopg
from psycopg import sql

from loaders.core.control import Reject

T = TypeVar("T")


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


_DONE = object()


def read_ahead(items: Iterable[T], depth: int = 16, name: str = "read-ahead") -> Iterator[T]:
    """``items`` read by a thread of its own, up to ``depth`` ahead of the consumer.

    For a source read while the warehouse's COPY writes (socket waits release the
    GIL, so the two overlap). An error in the reader is raised in the consumer after
    the items read before it. Closing the generator stops the reader, which closes
    ``items`` (a cursor, a response) in its own thread, where it was used.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer
            put(exc)
        finally:
            if close := getattr(items, "close", None):
                try:
                    close()
                except Exception as exc:  # a second error: the consumer's first one is the news
                    logging.getLogger(__name__).debug("closing the source: %s", exc)

    reader = threading.Thread(target=read, name=name, daemon=True)
    reader.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)
