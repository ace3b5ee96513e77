"""Reading the order system's database: one read-only snapshot, keyset reads as COPY text.

The session runs in UTC with ISO dates, so every timestamp prints the same way
on every run (the raw text, and the dedup of re-read versions, depend on it).
Its client encoding is UTF-8, so a LATIN1 source arrives transcoded; a
SQL_ASCII source has no encoding to convert from, so its bytes pass through
as stored and the warehouse refuses the rows that are not UTF-8 (see
``landing.copy_batch``).

Snapshot: a load (``job.load_all``, or one ``load_table``) reads from one
REPEATABLE READ READ ONLY transaction. Every batch of every table sees the same
snapshot, so the tables land consistent with each other (no order without its
user) and the fallback re-read of a batch sees exactly the rows of the first
read. The cost is a transaction open for the whole load, which holds back
vacuum on the source, and on a hot standby can be cancelled by a recovery
conflict (then the load stops with one line; committed batches stay).

Every source call is wrapped so that a failure is one ``LoaderError`` line that
names the source server, never a driver traceback, and is never mistaken for a
warehouse failure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import IsolationLevel, pq, sql

from config import advice
from loaders.core.control import Reject
from loaders.core.warehouse import LoaderError, connect_failure, first_line
from loaders.oltp import checks
from loaders.oltp.checks import MIN_CURSOR, OltpTable, Position
from loaders.oltp.settings import OltpSettings

REJECT_SCAN_LIMIT = 1_000  # rows per run looked at for each kind of refused write time


@dataclass
class Source:
    conn: psycopg.Connection
    settings: OltpSettings
    # The source's WAL position when the read-only snapshot was taken: every keyset
    # version read from it carries it (``_lsn``), so a later read outranks an earlier
    # one whatever the rows' write times say (see ``open_source``).
    read_lsn: str | None = None

    @property
    def where(self) -> str:
        return f"the order system database at {self.settings.describe()}"

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Turn a driver error on the source into one line that names the server."""
        try:
            yield
        except psycopg.Error as exc:
            raise self.failure(doing, exc) from None

    def failure(self, doing: str, exc: psycopg.Error) -> LoaderError:
        if self.conn.closed or self.conn.broken:
            return LoaderError(
                f"lost the connection to {self.where} while {doing}: {first_line(exc)}; "
                f"committed batches are kept, rerun to resume ({advice('postgres', 'OLTP_*')})"
            )
        return LoaderError(f"{self.where} failed while {doing}: {first_line(exc)}")


@contextmanager
def session(settings: OltpSettings) -> Iterator[Source]:
    """An autocommit session on the source in UTC with ISO dates and, unless the source is
    SQL_ASCII (which has no encoding to convert from), UTF-8 text: every value, read by
    COPY or by logical decoding (pgoutput converts to the client's encoding), prints the
    same way on every run."""
    try:
        conn = psycopg.connect(settings.conninfo(), autocommit=True)
    except psycopg.OperationalError as exc:
        where = f"the order system database at {settings.describe()}"
        raise connect_failure(where, exc, advice("postgres", "OLTP_*"), "OLTP_*") from None
    source = Source(conn, settings)
    try:
        with source.errors("opening a session"):
            conn.execute("set timezone to 'UTC'")
            conn.execute("set datestyle to 'ISO'")
            encoding = conn.execute("show server_encoding").fetchone()
            if encoding and checks.text(encoding[0]).upper() != "SQL_ASCII":
                conn.execute("set client_encoding to 'UTF8'")
        yield source
    finally:
        conn.close()


@contextmanager
def open_source(settings: OltpSettings, snapshot: str | None = None) -> Iterator[Source]:
    """A read-only REPEATABLE READ session on the source (see the module's docstring); with
    ``snapshot``, reading the snapshot another session exported (a replication slot's)."""
    with session(settings) as source:
        conn = source.conn
        with source.errors("opening a read-only session"):
            conn.autocommit = False
            conn.isolation_level = IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            if snapshot is not None:
                conn.execute(sql.SQL("set transaction snapshot {}").format(sql.Literal(snapshot)))
            # The transaction's first statement: the snapshot is taken now.
            row = conn.execute(
                "select (case when pg_is_in_recovery() then pg_last_wal_replay_lsn()"
                " else pg_current_wal_lsn() end)::text"
            ).fetchone()
            source.read_lsn = checks.text(row[0]) if row and row[0] is not None else None
        yield source  # closed with the session: the transaction only read, nothing to commit


def source_columns(source: Source, table: str) -> dict[str, str] | None:
    """The table's columns (name -> type) on the source; None if the table does not exist."""
    query = (
        "select a.attname, format_type(a.atttypid, null) from pg_attribute a"
        " where a.attrelid = to_regclass(quote_ident(%s)) and a.attnum > 0"
        " and not a.attisdropped"
    )
    with source.errors(f"reading the columns of {table}"):
        exists = source.conn.execute(
            "select to_regclass(quote_ident(%s)) is not null", (table,)
        ).fetchone()
        if not (exists and exists[0]):
            return None
        rows = source.conn.execute(query, (table,)).fetchall()
    return {checks.text(name): checks.text(kind) for name, kind in rows}


def not_after(source: Source, tolerance_seconds: float) -> dt.datetime:
    """The latest write time a load accepts: the source's clock (snapshot time) + tolerance."""
    with source.errors("reading its clock"):
        row = source.conn.execute(
            "select least(now() + make_interval(secs => %s), '9999-12-31 00:00:00+00')",
            (tolerance_seconds,),
        ).fetchone()
    assert row is not None
    return row[0]


def batch_query(
    spec: OltpTable,
    batch_id: int,
    after: Position,
    upto: Position | None,
    until: dt.datetime,
    limit: int,
    read_lsn: str | None = None,
) -> tuple[sql.Composed, dict]:
    """``COPY (the next keyset batch) TO STDOUT``: the contract's columns and the batch id.

    Rows after ``after`` (inclusive of its write time when it has no key), up
    to ``upto`` when given (the lookback window ends at the watermark), never
    stamped later than ``until``, in (cursor, key) order: an index range scan
    on (cursor, key).
    """
    cursor, key = sql.Identifier(spec.cursor), sql.Identifier(spec.primary_key)
    where = [
        sql.SQL("{} >= %(since)s").format(cursor)
        if after.pk is None
        else sql.SQL("({}, {}) > (%(after_ts)s, %(after_pk)s)").format(cursor, key),
        sql.SQL("{} <= %(until)s").format(cursor),
    ]
    if upto is not None:
        where.append(sql.SQL("({}, {}) <= (%(upto_ts)s, %(upto_pk)s)").format(cursor, key))
    query = sql.SQL(
        "copy (select {columns}, {batch_id}::bigint, {read_lsn}::pg_lsn from {table}"
        " where {where} order by {cursor}, {key} limit {limit}) to stdout"
    ).format(
        columns=sql.SQL(", ").join(map(sql.Identifier, spec.columns)),
        batch_id=sql.Literal(batch_id),
        read_lsn=sql.Literal(read_lsn),
        table=sql.Identifier(spec.name),
        where=sql.SQL(" and ").join(where),
        cursor=cursor,
        key=key,
        limit=sql.Literal(limit),
    )
    params = {
        "since": max(after.updated_at, MIN_CURSOR),
        "after_ts": after.updated_at,
        "after_pk": after.pk,
        "until": until,
        "upto_ts": upto.updated_at if upto else None,
        "upto_pk": upto.pk if upto else None,
    }
    return query, params


# COPY text handed on at a time: whole rows, about this many bytes (psycopg sends up to
# 128 KiB to libpq in one piece; larger writes are split, which copies them).
CHUNK_BYTES = 120 << 10


def read_batch(
    source: Source,
    spec: OltpTable,
    batch_id: int,
    after: Position,
    upto: Position | None,
    until: dt.datetime,
    limit: int,
) -> Iterator[bytearray]:
    """The batch's rows as COPY text, in chunks of whole lines, in keyset order.

    Streamed as the server sends them; close the iterator to stop early (the
    source's COPY is then cancelled). Every row ends with the one newline of
    its line (COPY text escapes a newline in a value), so the chunks' rows
    are counted and the last one found without looking at each row.
    """
    query, params = batch_query(spec, batch_id, after, upto, until, limit, source.read_lsn)
    return copy_out(source, query, params, f"reading {spec.name}")


def copy_out(
    source: Source, query: sql.Composable, params: dict | None, doing: str
) -> Iterator[bytearray]:
    """A ``COPY ... TO STDOUT`` on the source, as chunks of whole lines (see ``read_batch``)."""
    try:
        with source.conn.cursor() as cur, cur.copy(query, params) as out:
            yield from _chunks(out, source.conn)
    except psycopg.Error as exc:
        raise source.failure(doing, exc) from None


def _chunks(out: psycopg.Copy, conn: psycopg.Connection) -> Iterator[bytearray]:
    """The rows of a ``COPY TO``, appended into chunks of about CHUNK_BYTES.

    libpq hands COPY OUT data one row per call. Rows libpq has already
    buffered are taken with one call each; only when its buffer is empty does
    psycopg's ``Copy.read()`` wait on the socket (it costs a generator and a
    wait loop per call: on every row, that was half of this process's CPU).
    The end of the data is read as psycopg reads it: the COPY's own result,
    raised as psycopg's error if it is one.
    """
    pgconn = conn.pgconn
    get = pgconn.get_copy_data
    chunk = bytearray()
    while True:
        nbytes, data = get(1)  # 1: never block; 0 means nothing buffered yet
        if nbytes > 0:
            chunk += data
            if len(chunk) >= CHUNK_BYTES:
                yield chunk
                chunk = bytearray()
        elif nbytes == 0:
            if not (data := out.read()):
                break
            chunk += data
        else:  # -1: the data is over; the COPY's result follows
            error: psycopg.Error | None = None
            while (result := pgconn.get_result()) is not None:
                if result.status != pq.ExecStatus.COMMAND_OK and error is None:
                    error = psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
            if error is not None:
                raise error
            break
    if chunk:
        yield chunk


def _rejects_query(spec: OltpTable, where: str, order: str) -> sql.Composed:
    """Key, write time (text) and the row as JSON (bytes) of the rows matching ``where``.

    The payload is read as bytes: a SQL_ASCII source returns text undecoded,
    and recording a reject must never fail on its payload.
    """
    key, cursor = sql.Identifier(spec.primary_key), sql.Identifier(spec.cursor)
    return sql.SQL(
        "select {key}::text, {cursor}::text, textsend(left(row_to_json(r)::text, {size}))"
        " from {table} as r where {where} order by {order} limit {limit}"
    ).format(
        key=key,
        cursor=cursor,
        size=sql.Literal(checks.MAX_PAYLOAD),
        table=sql.Identifier(spec.name),
        where=sql.SQL(where).format(cursor=cursor),
        order=sql.SQL(order).format(cursor=cursor, key=key),
        limit=sql.Literal(REJECT_SCAN_LIMIT),
    )


def future_query(spec: OltpTable) -> sql.Composed:
    """Rows stamped after %s: an index range scan on (cursor, key)."""
    return _rejects_query(spec, "{cursor} > %s", "{cursor}, {key}")


def unreachable_query(spec: OltpTable) -> sql.Composed:
    """Rows whose write time is NULL or before %s (year 1, -infinity).

    Served by the (cursor, key) index (a btree indexes NULLs; the two
    conditions are two index ranges), so it is not a full scan on every run.
    """
    return _rejects_query(spec, "{cursor} is null or {cursor} < %s", "{key}")


def future_rows(source: Source, spec: OltpTable, until: dt.datetime) -> list[Reject]:
    """Rows stamped after ``until``, held back (at most REJECT_SCAN_LIMIT per run)."""
    with source.errors(f"looking for future write times in {spec.name}"):
        rows = source.conn.execute(future_query(spec), (until,)).fetchall()
    return [
        checks.held_back(spec, checks.text(pk), checks.text(version), _decode(payload))
        for pk, version, payload in rows
    ]


def unreachable_rows(source: Source, spec: OltpTable) -> list[Reject]:
    """Rows no watermark reaches (at most REJECT_SCAN_LIMIT per run)."""
    with source.errors(f"looking for unusable write times in {spec.name}"):
        rows = source.conn.execute(unreachable_query(spec), (MIN_CURSOR,)).fetchall()
    return [
        checks.unreachable(
            spec, checks.text(pk), None if v is None else checks.text(v), _decode(payload)
        )
        for pk, v, payload in rows
    ]


def _decode(payload: bytes | None) -> str:
    return (payload or b"").decode("utf-8", "backslashreplace")
