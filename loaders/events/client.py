"""Reading the app's events from ClickHouse over HTTP: the contract, day counts, a day's rows.

The loader only reads: it never creates the database or a table (the user
may be read-only; it needs SELECT on the two tables and on
``system.columns``, and may change the ``date_time_output_format`` setting,
i.e. ``readonly=2`` or grants, not ``readonly=1``).

A day is the half-open UTC interval ``[day 00:00, day + 1 00:00)`` on
``time``: the tables are partitioned by ``toDate(time)``, so the filter
prunes to one partition. Rows come as ClickHouse's ``TabSeparated`` through
clickhouse-connect's raw stream (no parsing on this side), times as ISO 8601
UTC with a ``Z`` (``date_time_output_format='iso'``), which PostgreSQL reads
as the same instant whatever its session's time zone.

Every failure is one ``LoaderError`` line naming the server, with the
server's own reason and never the password: the server down or refusing,
a timeout, the connection cut mid-stream, an error the server writes into
the stream after it has started sending rows (then the load must not land a
truncated day).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import clickhouse_connect
import urllib3
from clickhouse_connect.driver.binding import quote_identifier
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from config import advice
from loaders.core.warehouse import LoaderError
from loaders.events.landing import EventTable
from loaders.events.settings import ClickHouseSettings

# TSV handed on at a time (psycopg passes up to 128 KiB to libpq in one piece).
CHUNK_BYTES = 120 << 10
# A day's rows are read as this many time ranges (see EventSource.read_day).
DAY_SLICES = 4
# The output settings of every read: ISO 8601 UTC times ("2026-10-03T05:06:07Z").
READ_SETTINGS = {"date_time_output_format": "iso"}

# clickhouse-connect logs a warning ("Unexpected Http Driver Exception") before it raises
# the error that becomes our one line; without logging configured, Python would print
# it too (an application that configures logging still gets it).
logging.getLogger("clickhouse_connect").addHandler(logging.NullHandler())

_SERVER_ERROR = re.compile(r"Code: (\d+)\. DB::Exception: (.*?)(?: \(version |\n|$)")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^\"')]+)")
_INTEGER = re.compile(r"U?Int(8|16|32|64|128|256)")


def reason(exc: BaseException) -> str:
    """The useful part of a clickhouse-connect (or urllib3) error, on one line."""
    text = str(exc)
    if found := _SERVER_ERROR.search(text):
        return f"code {found[1]}: {found[2].strip()}"[:200]
    if found := _ERRNO.search(text):
        return found[1].strip()[:200]
    if "timed out" in text.lower():
        return "timed out"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:200] if lines else type(exc).__name__


def stream_error(tail: bytes, tag: str | None) -> str | None:
    """The error a server wrote into a result it had started sending, or None.

    ClickHouse 25.x+ frames it as ``__exception__\\r\\n<tag> ... <tag>\\r\\n__exception__``
    (the tag is in the ``X-ClickHouse-Exception-Tag`` header); older servers append
    ``Code: N. DB::Exception: ...`` to the output, on a line of its own (a row's first
    column is an integer, so no row of the contract starts so). ``tail`` is the
    stream's end.
    """
    if tag:
        start = tail.rfind(b"__exception__\r\n" + tag.encode())
        if start == -1:
            return None
        body = tail[start:].decode("utf-8", "replace")
        found = _SERVER_ERROR.search(body)
        return f"code {found[1]}: {found[2].strip()}"[:200] if found else "error in the stream"
    last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1].decode("utf-8", "replace")
    if found := _SERVER_ERROR.match(last):
        return f"code {found[1]}: {found[2].strip()}"[:200]
    return None


def contract_problem(spec: EventTable, found: dict[str, str] | None) -> str | None:
    """What keeps ``spec`` from loading, given the ClickHouse columns (name -> type), or None."""
    if found is None:
        return (
            f"has no table {spec.name}, which the loader lands (has the event writer run? "
            "python -m datagen events)"
        )
    missing = [c for c in spec.column_names if c not in found]
    if missing:
        return (
            f"table {spec.name} lacks column(s) {', '.join(missing)}, which the loader lands "
            "(contract: loaders/events/landing.py); restore them at the source or change the "
            "contract"
        )
    for name, kind in spec.columns:
        base = _unwrap(found[name])
        if kind in ("bigint", "integer") and not _INTEGER.fullmatch(base):
            return f"{spec.name}.{name} is {found[name]}, but the loader lands an integer"
        if kind == "timestamptz" and not base.startswith("DateTime"):
            return f"{spec.name}.{name} is {found[name]}, but the loader lands a DateTime"
    return None


def _unwrap(kind: str) -> str:
    """``Nullable(LowCardinality(X))`` -> ``X``."""
    while found := re.fullmatch(r"(?:Nullable|LowCardinality)\((.*)\)", kind):
        kind = found[1]
    return kind


def canonical_row(spec: EventTable, clickhouse: bool) -> str:
    """One row as text, the same in ClickHouse and in the warehouse's raw table: each value's
    text (times to the second, in UTC), ``\\N`` for null, joined by the ASCII unit
    separator (0x1F), which no value here holds."""
    parts = []
    for name, kind in spec.columns:
        if clickhouse:
            column = quote_identifier(name)
            value = (
                f"formatDateTime({column}, '%Y-%m-%d %H:%i:%S', 'UTC')"
                if kind == "timestamptz"
                else f"toString({column})"
            )
            parts.append(f"ifNull({value}, '\\\\N')")
        else:
            column = '"' + name.replace('"', '""') + '"'
            value = (
                f"to_char({column} at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
                if kind == "timestamptz"
                else f"{column}::text"
            )
            parts.append(f"coalesce({value}, E'\\\\N')")
    if clickhouse:
        return f"arrayStringConcat([{', '.join(parts)}], '\\x1F')"
    return f"concat_ws(E'\\x1F', {', '.join(parts)})"


def _day_bounds(first: dt.date, end: dt.date) -> str:
    return (
        f"time >= toDateTime('{first.isoformat()}', 'UTC')"
        f" AND time < toDateTime('{end.isoformat()}', 'UTC')"
    )


def _stamped_by(horizon: dt.datetime) -> str:
    """Rows stamped up to the loader's horizon (its clock plus the future tolerance)."""
    return f"time <= toDateTime('{horizon:%Y-%m-%d %H:%M:%S}', 'UTC')"


def _until(horizon: dt.datetime | None) -> str:
    return "" if horizon is None else f" AND {_stamped_by(horizon)}"


def day_query(
    spec: EventTable,
    day: dt.date,
    batch_id: int,
    ordered: bool = False,
    horizon: dt.datetime | None = None,
    hours: tuple[int, int] = (0, 24),
) -> str:
    """The day's rows up to ``horizon``: the contract's columns, then ``_event_date`` and
    the batch id. Rows stamped later are held back: they land once their time has come.
    ``hours``: only the rows of ``[day + first hour, day + last hour)``."""
    columns = ", ".join(quote_identifier(c) for c in spec.column_names)
    start = dt.datetime.combine(day, dt.time()) + dt.timedelta(hours=hours[0])
    end = start + dt.timedelta(hours=hours[1] - hours[0])
    query = (
        f"SELECT {columns}, '{day.isoformat()}' AS _event_date, {int(batch_id)} AS _batch_id"
        f" FROM {quote_identifier(spec.name)}"
        f" WHERE time >= toDateTime('{start:%Y-%m-%d %H:%M:%S}', 'UTC')"
        f" AND time < toDateTime('{end:%Y-%m-%d %H:%M:%S}', 'UTC'){_until(horizon)}"
    )
    if ordered:  # a fixed order, so the fallback's line numbers mean the same on a rerun
        query += f" ORDER BY {columns}"
    return query


@dataclass
class EventSource:
    """One ClickHouse client (one per thread: a client is not shared between threads)."""

    client: Client
    settings: ClickHouseSettings

    @property
    def where(self) -> str:
        return f"ClickHouse at {self.settings.describe()}"

    def failure(self, doing: str, exc: BaseException) -> LoaderError:
        why = reason(exc)
        hint = "" if why.startswith("code ") else f" ({advice('clickhouse', 'CLICKHOUSE_*')})"
        return LoaderError(f"{self.where} failed while {doing}: {why}{hint}")

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Turn a driver error into one line that names the server and what was being done."""
        try:
            yield
        except (ClickHouseError, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self.failure(doing, exc) from None

    def columns(self, table: str) -> dict[str, str] | None:
        """The table's columns (name -> type); None if the table does not exist (a table
        has at least one column: one query answers both)."""
        with self.errors(f"reading the columns of {table}"):
            rows = self.client.query(
                "SELECT name, type FROM system.columns"
                " WHERE database = currentDatabase() AND table = {table:String}",
                parameters={"table": table},
            ).result_rows
        return {str(name): str(kind) for name, kind in rows} or None

    def check_contract(self, spec: EventTable) -> None:
        """Stop with one line, before anything lands, if the table or a column is gone."""
        problem = contract_problem(spec, self.columns(spec.name))
        if problem:
            raise LoaderError(f"{self.where}: {problem}")

    def day_counts(
        self, spec: EventTable, first: dt.date, end: dt.date, horizon: dt.datetime | None = None
    ) -> dict[dt.date, int]:
        """Rows per UTC day in ``[first, end)`` up to ``horizon`` (days without rows left out)."""
        if end <= first:
            return {}
        with self.errors(f"counting the rows of {spec.name} per day"):
            rows = self.client.query(
                f"SELECT toDate(time, 'UTC') AS day, count() FROM {quote_identifier(spec.name)}"
                f" WHERE {_day_bounds(first, end)}{_until(horizon)} GROUP BY day"
            ).result_rows
        return {day: int(n) for day, n in rows}

    def day_stats(
        self, spec: EventTable, last_day: dt.date, horizon: dt.datetime
    ) -> dict[dt.date, tuple[int, int]]:
        """Rows and their hash per UTC day up to ``last_day`` over the whole history, up to
        ``horizon`` (see ``canonical_row``): one aggregate, a row per day."""
        text = canonical_row(spec, clickhouse=True)
        bits = f"bitShiftRight(reinterpretAsUInt64(reverse(substring(MD5({text}), 1, 8))), 4)"
        with self.errors(f"counting and hashing the rows of {spec.name} per day"):
            rows = self.client.query(
                f"SELECT toDate(time, 'UTC') AS day, count(), toString(sum(toUInt128({bits})))"
                f" FROM {quote_identifier(spec.name)}"
                f" WHERE day <= toDate('{last_day.isoformat()}') AND {_stamped_by(horizon)}"
                " GROUP BY day"
            ).result_rows
        return {day: (int(n), int(h)) for day, n, h in rows}

    def latest_day(self, spec: EventTable, horizon: dt.datetime) -> tuple[dt.date | None, int]:
        """The latest UTC day with a row up to ``horizon`` (None: no such row), and the
        rows stamped after it (held back: a clock that runs ahead is not followed)."""
        with self.errors(f"finding the latest day of {spec.name}"):
            by = _stamped_by(horizon)
            rows = self.client.query(
                f"SELECT toDate(maxIf(time, {by}), 'UTC'), countIf({by}), countIf(NOT ({by}))"
                f" FROM {quote_identifier(spec.name)}"
            ).result_rows
        if not rows:
            return None, 0
        latest, before, after = rows[0]
        return (latest if before else None), int(after)

    def read_day(
        self,
        spec: EventTable,
        day: dt.date,
        batch_id: int,
        ordered: bool = False,
        horizon: dt.datetime | None = None,
    ) -> Iterator[bytes]:
        """The day's rows as TabSeparated text, in chunks, as the server sends them.

        Unordered, the day is read as ``DAY_SLICES`` time ranges one after the other:
        a server that builds a result before sending it (the embedded one does) keeps
        the warehouse waiting only for the first range's, and builds each next one while
        the warehouse takes the last. Close the iterator to stop early (the response is
        closed). Each stream is checked at its end: an error the server wrote into it,
        or a last line cut short, raise ``LoaderError`` before the COPY can commit.
        """
        doing = f"reading {spec.name} for {day}"
        slices = 1 if ordered else DAY_SLICES
        for k in range(slices):
            hours = (24 * k // slices, 24 * (k + 1) // slices)
            with self.errors(doing):
                response = self.client.raw_stream(
                    day_query(spec, day, batch_id, ordered, horizon, hours),
                    fmt="TabSeparated",
                    settings=READ_SETTINGS,
                )
            yield from self._chunks(response, doing)

    def _chunks(self, response: urllib3.BaseHTTPResponse, doing: str) -> Iterator[bytes]:
        tag = response.headers.get("X-ClickHouse-Exception-Tag")
        previous, last = b"", b""
        try:
            with self.errors(doing):
                for chunk in response.stream(CHUNK_BYTES):
                    if chunk:
                        yield chunk
                        previous, last = last, chunk
        finally:
            response.close()
            response.release_conn()
        if problem := stream_error(previous[-4096:] + last, tag):
            raise LoaderError(f"{self.where} failed while {doing}: {problem}")
        if last and not last.endswith(b"\n"):
            raise LoaderError(
                f"{self.where} failed while {doing}: the result ended in the middle of a row"
            )


@contextmanager
def open_source(settings: ClickHouseSettings) -> Iterator[EventSource]:
    """A client on ``settings.database`` (which must exist: the loader creates nothing)."""
    try:
        client = clickhouse_connect.get_client(
            host=settings.host,
            port=settings.port,
            username=settings.user,
            password=settings.password.get_secret_value(),
            secure=settings.secure,
            database=settings.database,
            connect_timeout=5,
            # No session: the loader needs none, and a session allows one query at a time.
            autogenerate_session_id=False,
        )
    except (ClickHouseError, urllib3.exceptions.HTTPError, OSError) as exc:
        where = f"ClickHouse at {settings.describe()}"
        why = reason(exc)
        if why.startswith("code "):  # the server answered: its reason says what to fix
            raise LoaderError(f"{where} refused the connection: {why}") from None
        hint = advice("clickhouse", "CLICKHOUSE_HOST/CLICKHOUSE_PORT")
        raise LoaderError(f"cannot connect to {where}: {why} ({hint})") from None
    source = EventSource(client, settings)
    try:
        yield source
    finally:
        client.close()
