"""The order system reconciled with raw per key range, when it is read by keyset.

Change capture sees every change and needs no reconciliation (nothing is done
in that mode). The keyset mode misses deletes and updates stamped behind its
watermark: this finds them. Per range of ``RANGE_KEYS`` primary keys, the
source's rows and raw's kept versions (the version staging keeps of each key,
tombstones left out) are counted and hashed on each side, over the same text
(each column as the source prints it in a UTC, ISO session, which is what raw
holds). A range that differs is read again from the source's snapshot and
landed whole, as one batch, each row a version stamped with the read's LSN so
it outranks what raw held; keys raw holds that the source no longer has land
as tombstones (``_op = 'd'``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import psycopg
from psycopg import sql

from config import WarehouseSettings
from loaders.core.control import (
    close_batch,
    open_batch,
    read_watermark,
    stream_lock,
    write_rejects,
)
from loaders.core.reconcile import (
    LOCK_WAIT_SECONDS,
    Partition,
    Reconciled,
    md5_60_sum_sql,
    record,
    timed,
)
from loaders.core.warehouse import connect
from loaders.oltp.checks import TABLES, OltpTable
from loaders.oltp.client import Source, copy_out, open_source
from loaders.oltp.job import STREAMS, check_contract
from loaders.oltp.landing import (
    SOURCE,
    copy_batch,
    latest_versions,
    raw_table,
    tombstone_missing,
)
from loaders.oltp.settings import OltpCaptureSettings, OltpSettings
from loaders.raw_tables import ensure_all_raw_tables

RANGE_KEYS = 10_000  # primary keys per compared range


def _row_text(spec: OltpTable, alias: str = "") -> str:
    """The row as text, the same on the source (typed columns printed in a UTC, ISO
    session) and in raw (that text): a record of the columns' text, which tells a null
    from an empty string and quotes a value holding a separator."""
    prefix = f"{alias}." if alias else ""
    return "row(" + ", ".join(f"{prefix}{sql_ident(c)}::text" for c in spec.columns) + ")::text"


def sql_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def source_ranges(source: Source, spec: OltpTable) -> dict[int, Partition]:
    key = sql_ident(spec.primary_key)
    with source.errors(f"counting and hashing {spec.name} per key range"):
        rows = source.conn.execute(
            f"select floor({key}::numeric / {RANGE_KEYS})::bigint, count(*),"
            f" {md5_60_sum_sql(_row_text(spec))}"
            f" from {sql_ident(spec.name)} group by 1"
        ).fetchall()
    return {int(r): Partition(int(n), int(h)) for r, n, h in rows}


def _numeric_key(spec: OltpTable) -> str:
    """Raw's key is text: only a whole number can be placed in a range."""
    return f"{sql_ident(spec.primary_key)} ~ '^-?[0-9]{{1,18}}$'"


def raw_ranges(conn: psycopg.Connection, spec: OltpTable) -> dict[int, Partition]:
    latest = latest_versions(spec, _numeric_key(spec)).as_string(conn)
    key = sql_ident(spec.primary_key)
    rows = conn.execute(
        f"select floor(l.{key}::numeric / {RANGE_KEYS})::bigint, count(*),"
        f" {md5_60_sum_sql(_row_text(spec, 'l'))}"
        f" from ({latest}) as l where l._op is distinct from 'd' and l._op is distinct from 't'"
        " group by 1"
    ).fetchall()
    conn.commit()
    return {int(r): Partition(int(n), int(h)) for r, n, h in rows}


def _reland_range(source: Source, conn: psycopg.Connection, spec: OltpTable, number: int) -> str:
    """The range's rows from the snapshot, as one batch; keys no longer there, tombstones."""
    low, high = number * RANGE_KEYS, (number + 1) * RANGE_KEYS
    key = sql_ident(spec.primary_key)
    query = sql.SQL(
        "copy (select {columns}, {batch}::bigint, 'r', {lsn}::pg_lsn, 0 from {table}"
        " where {key} >= {low} and {key} < {high}) to stdout"
    )
    with conn.transaction():
        batch_id = open_batch(conn, SOURCE, spec.name)

        def read() -> Iterator[bytearray]:
            statement = query.format(
                columns=sql.SQL(", ").join(map(sql.Identifier, spec.columns)),
                batch=sql.Literal(batch_id),
                lsn=sql.Literal(source.read_lsn),
                table=sql.Identifier(spec.name),
                key=sql.Identifier(spec.primary_key),
                low=sql.Literal(low),
                high=sql.Literal(high),
            )
            return copy_out(source, statement, None, f"reading {spec.name} keys {low}..")

        n, _, refused = copy_batch(
            conn,
            spec,
            raw_table(spec).identifier,
            read,
            columns=(*spec.columns, "_batch_id", "_op", "_lsn", "_seq"),
        )
        in_range = f"{_numeric_key(spec)} and {key}::bigint >= {low} and {key}::bigint < {high}"
        gone = tombstone_missing(
            conn, spec, batch_id, source.read_lsn or "0/0", in_range, refused=refused
        )
        rejected = write_rejects(conn, batch_id, SOURCE, spec.name, refused)
        close_batch(conn, batch_id, SOURCE, spec.name, n - len(refused) + gone, rejected, None)
    return f"relanded {n - len(refused):,} row(s), {gone:,} deleted"


def reconcile(tables: Iterable[str] | None = None) -> list[Reconciled]:
    """Each table (or the named ones) in keyset mode; nothing under change capture."""
    if OltpCaptureSettings.from_env().capture == "cdc":
        return []
    specs = [TABLES[name] for name in STREAMS if tables is None or name in tables]
    with connect(WarehouseSettings.from_env()) as conn:
        ensure_all_raw_tables(conn)
        # A table never landed is the loads' business (the source may not have it yet).
        specs = [spec for spec in specs if read_watermark(conn, SOURCE, spec.name) is not None]
    if not specs:
        return []
    results = []
    with (
        open_source(OltpSettings.from_env()) as source,
        connect(WarehouseSettings.from_env()) as conn,
    ):
        check_contract(source, specs)
        conn.execute("set client_encoding to 'UTF8'")
        conn.commit()
        for spec in specs:
            started = time.monotonic()
            result = Reconciled(SOURCE, spec.name)
            with stream_lock(conn, SOURCE, spec.name, wait_seconds=LOCK_WAIT_SECONDS):
                theirs, ours = source_ranges(source, spec), raw_ranges(conn, spec)
                for number in sorted(set(theirs) | set(ours)):
                    low = number * RANGE_KEYS
                    result.compare(
                        f"keys {low}..{low + RANGE_KEYS - 1}",
                        theirs.get(number, Partition(0, 0)),
                        ours.get(number, Partition(0, 0)),
                        lambda number=number, spec=spec: _reland_range(source, conn, spec, number),
                    )
            record(conn, timed(result, started))
            results.append(result)
    return results
