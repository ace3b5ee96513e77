"""``raw_events.<table>``: one UTC day of events, replaced atomically, COPY text end to end.

A day is the unit: ``land_day`` replaces a table's rows of one day
(``_event_date``) and that day's rejects in one warehouse transaction, under
the stream's lock: delete the day, open a batch, stream ClickHouse's
TabSeparated output for the day straight into ``COPY ... FROM STDIN`` (no
Python loop per row), close the batch with the watermark, commit. A crash
anywhere rolls the transaction back, leaving the previous version of the day;
a rerun leaves exactly what one clean run leaves.

ClickHouse's TabSeparated escaping is PostgreSQL's COPY text escaping
(``\\t``, ``\\n``, ``\\\\``, ``\\N`` for NULL, ...), with two exceptions the
warehouse refuses: a NUL byte (ClickHouse writes ``\\0``, which COPY reads as
the byte 0) and bytes that are not UTF-8 (ClickHouse strings are bytes). Then
the COPY's savepoint rolls back, the day is read again in a fixed order and
landed in chunks by ``copy_rows``, which isolates the refused lines: each
becomes a reject (``<table>:<day>:<line>``, PostgreSQL's reason, the line as
payload) and every other row lands.

A day for which ClickHouse returns no rows while the warehouse holds rows of
it is left as it is (rolled back, with a note): a source partition that was
dropped must not empty the warehouse's copy of the day.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from loaders.core import result as core
from loaders.core.control import Reject, close_batch, open_batch, write_rejects
from loaders.core.copy import REFUSED_ROW, CopyRow, copy_rows, copy_statement, read_ahead
from loaders.core.raw_tables import RawTable

SOURCE = "events"
RAW_SCHEMA = "raw_events"
FALLBACK_LINES = 50_000  # lines per copy_rows call on the fallback path
MAX_PAYLOAD = 100_000  # bytes of a refused line kept in loader.rejects
READ_AHEAD = 64  # chunks of the source's stream held while the warehouse catches up (~8 MB)

# See loaders/oltp/landing.py: psycopg's warning on a connection lost mid-COPY
# would print beside the one line the load stops with.
logging.getLogger("psycopg").addHandler(logging.NullHandler())


@dataclass(frozen=True)
class EventTable:
    """A ClickHouse events table's contract: the columns that land, in order, and their
    warehouse types (bigint/integer: a ClickHouse integer; timestamptz: a DateTime),
    and its domain rules (RawTable.checks)."""

    name: str
    columns: tuple[tuple[str, str], ...]
    checks: tuple[tuple[str, str], ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


TABLES: dict[str, EventTable] = {
    t.name: t
    for t in (
        EventTable(
            "feed_actions",
            (
                ("user_id", "bigint"),
                ("post_id", "bigint"),
                ("action", "text"),
                ("time", "timestamptz"),
                ("gender", "text"),
                ("age", "integer"),
                ("country", "text"),
                ("city", "text"),
                ("os", "text"),
                ("source", "text"),
                ("exp_group", "integer"),
            ),
            # The events' domain rule is checked as they land (their staging is a
            # view over the raw days, which a quarantine cannot delete from): a
            # row with another action is refused, with this name as its reason.
            checks=(("feed_actions_action_known", "action in ('view', 'like')"),),
        ),
        EventTable(
            "message_actions",
            (
                ("user_id", "bigint"),
                ("receiver_id", "bigint"),
                ("time", "timestamptz"),
                ("source", "text"),
                ("exp_group", "integer"),
                ("gender", "text"),
                ("age", "integer"),
                ("country", "text"),
                ("city", "text"),
                ("os", "text"),
            ),
        ),
    )
}
STREAMS = tuple(TABLES)  # stream names are the table names

_RAW = {
    t.name: RawTable(
        RAW_SCHEMA,
        t.name,
        # Nullable: a real ClickHouse may have Nullable columns; staging validates.
        (*t.columns, ("_event_date", "date not null")),
        indexes=(("_event_date",),),
        checks=t.checks,
    )
    for t in TABLES.values()
}
RAW_TABLES = tuple(_RAW.values())


def raw_table(spec: EventTable) -> RawTable:
    return _RAW[spec.name]


def copy_columns(spec: EventTable) -> tuple[str, ...]:
    """What a day's COPY fills, in the order the ClickHouse query selects it."""
    return (*spec.column_names, "_event_date", "_batch_id")


@dataclass(kw_only=True)
class LoadResult(core.LoadResult):
    """One table's load of one day (and of the late days its lookback reloaded);
    ``rejected``: rows of the day in loader.rejects."""

    table: str
    day: dt.date
    batch_id: int | None = None  # None: nothing committed for the day (kept as it was)
    reloaded: dict[dt.date, int] = field(default_factory=dict)  # late day -> rows landed

    @property
    def raw_table(self) -> str:
        return f"{RAW_SCHEMA}.{self.table}"


# Reads one day from the source as TabSeparated text (whole lines, the batch id in
# every row); ``ordered``: in a fixed order (the fallback numbers the lines).
DayReader = Callable[[int, bool], Iterator[bytes]]


@dataclass
class DayReplaced:
    batch_id: int | None
    landed: int
    rejected: int
    kept: int = 0  # rows kept because the source returned none for the day
    refused: list[Reject] = field(default_factory=list)


def _pipe(chunks: Iterator[bytes], copy: psycopg.Copy) -> int:
    """Write the source's chunks into the warehouse's COPY as they come; returns the rows."""
    rows = 0
    with closing(chunks):  # on a warehouse error, the source's response is closed
        for chunk in chunks:
            copy.write(chunk)
            rows += chunk.count(b"\n")
    return rows


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The TSV lines of a stream of chunks, each with its newline."""
    rest = b""
    with closing(chunks):
        for chunk in chunks:
            data = rest + chunk
            end = data.rfind(b"\n") + 1
            if end:
                yield from (line + b"\n" for line in data[: end - 1].split(b"\n"))
            rest = data[end:]
    if rest:
        yield rest + b"\n"


def _payload(line: bytes) -> bytes:
    """The line as kept in loader.rejects: bytes that are not UTF-8 shown as ``\\xNN``."""
    text = line[:MAX_PAYLOAD].rstrip(b"\n").decode("utf-8", "backslashreplace")
    return text.encode()


def _fallback(
    conn: psycopg.Connection, spec: EventTable, day: dt.date, chunks: Iterator[bytes]
) -> tuple[int, list[Reject]]:
    """Land the day line by line in chunks; the refused lines come back as rejects."""
    target, columns = raw_table(spec).identifier, copy_columns(spec)
    version = day.isoformat().encode()
    n, refused, rows = 0, [], []
    for line in _lines(chunks):
        n += 1
        rows.append(CopyRow(line, f"{spec.name}:{day}:{n}".encode(), version, _payload(line)))
        if len(rows) >= FALLBACK_LINES:
            refused += copy_rows(conn, target, columns, rows)
            rows = []
    refused += copy_rows(conn, target, columns, rows)
    return n, refused


def landed_counts(
    conn: psycopg.Connection, spec: EventTable, days: Iterable[dt.date]
) -> dict[dt.date, int]:
    """Rows of each day the warehouse holds: landed in raw plus refused in loader.rejects."""
    days = sorted(set(days))
    if not days:
        return {}
    counts = dict.fromkeys(days, 0)
    rows = conn.execute(
        sql.SQL(
            "select _event_date, count(*) from {} where _event_date between %s and %s group by 1"
        ).format(raw_table(spec).identifier),
        (days[0], days[-1]),
    ).fetchall()
    rows += conn.execute(
        "select record_version::date, count(*) from loader.rejects where source = %s"
        " and stream = %s and record_version = any(%s) group by 1",
        (SOURCE, spec.name, [d.isoformat() for d in days]),
    ).fetchall()
    for day, n in rows:
        if day in counts:
            counts[day] += n
    conn.commit()
    return counts


def _watermark(
    conn: psycopg.Connection, spec: EventTable, day: dt.date, last_day: dt.date | None
) -> dict:
    """The latest day landed: a reload or backfill of an older day keeps it.

    A recorded day after ``last_day`` (the loader's horizon; a watermark moved
    there by a release that followed a clock running ahead) is not kept: the
    watermark comes back to the day just landed.
    """
    row = conn.execute(
        "select value ->> 'increment_date' from loader.watermarks"
        " where source = %s and stream = %s",
        (SOURCE, spec.name),
    ).fetchone()
    recorded = row[0] if row and row[0] else None
    if recorded and last_day is not None and recorded > last_day.isoformat():
        recorded = None
    latest = max(day.isoformat(), recorded) if recorded else day.isoformat()
    return {"increment_date": latest}


def land_day(
    conn: psycopg.Connection,
    spec: EventTable,
    day: dt.date,
    read: DayReader,
    last_day: dt.date | None = None,
) -> DayReplaced:
    """Replace ``day``'s raw rows and rejects of ``spec`` with the source's, atomically.

    The caller holds the stream's lock (``stream_lock(conn, SOURCE, spec.name)``)
    and has created the raw tables; the warehouse session's client encoding is
    UTF-8.
    """
    raw = raw_table(spec).identifier
    with conn.transaction() as tx:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("delete from {} where _event_date = %s").format(raw), (day,))
            old_rows = cur.rowcount
            cur.execute(
                "delete from loader.rejects"
                " where source = %s and stream = %s and record_version = %s",
                (SOURCE, spec.name, day.isoformat()),
            )
            old_rejects = cur.rowcount
        batch_id = open_batch(conn, SOURCE, spec.name)
        try:
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(copy_statement(raw, copy_columns(spec))) as copy,
            ):
                # The source is read in a thread of its own, so ClickHouse sends the next
                # chunks while PostgreSQL takes the last ones.
                n = _pipe(read_ahead(read(batch_id, False), READ_AHEAD, "events-read"), copy)
            refused: list[Reject] = []
        except REFUSED_ROW:
            # A NUL, a byte that is not UTF-8 or a row breaking the table's rule somewhere
            # in the day: read it again, in a fixed order, and isolate the lines the
            # warehouse refuses.
            n, refused = _fallback(conn, spec, day, read(batch_id, True))
        if n == 0 and old_rows + old_rejects > 0:
            raise psycopg.Rollback(tx)  # the source lost the day: keep what landed
        rejected = write_rejects(conn, batch_id, SOURCE, spec.name, refused)
        landed = n - len(refused)
        watermark = _watermark(conn, spec, day, last_day)
        close_batch(conn, batch_id, SOURCE, spec.name, landed, rejected, watermark)
        return DayReplaced(batch_id, landed, rejected, refused=refused)
    return DayReplaced(None, 0, 0, kept=old_rows)
