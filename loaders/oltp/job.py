"""Entry points shared by the CLI, ``make run`` and Airflow: connect from settings, load, reset.

``OLTP_CAPTURE`` picks how: ``cdc`` (the default) follows a logical
replication slot (see ``cdc``); ``keyset`` reads by write time, as follows.
A keyset load reads the source from one read-only snapshot (see ``client``) and, per
table, holds the table's stream lock while it lands the lookback window and
everything after the watermark (see ``landing``), then records the rows whose
write time the watermark refuses.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable, Iterable, Iterator

import psycopg
from psycopg import sql

from config import LoaderSettings, WarehouseSettings
from loaders.core.control import (
    ensure_control_tables,
    read_watermark,
    stream_lock,
    write_rejects,
)
from loaders.core.raw_tables import ensure_raw_tables
from loaders.core.warehouse import LoaderError, connect
from loaders.oltp import cdc
from loaders.oltp.checks import MIN_CURSOR, TABLES, OltpTable, Position, contract_problem
from loaders.oltp.client import (
    REJECT_SCAN_LIMIT,
    Source,
    future_rows,
    not_after,
    open_source,
    read_batch,
    source_columns,
    unreachable_rows,
)
from loaders.oltp.landing import SOURCE, LoadResult, land_lookback, land_new, raw_table
from loaders.oltp.settings import OltpCaptureSettings, OltpSettings
from loaders.raw_tables import ensure_all_raw_tables

# In foreign-key order: categories, products, users, orders, order details.
STREAMS = tuple(TABLES)


def print_progress(result: LoadResult) -> None:
    """One stderr line per committed batch, so long loads show they are moving."""
    rate = result.landed / result.seconds if result.seconds else 0.0
    print(
        f"  oltp.{result.table}: batch {result.batches}, {result.landed:,} landed, "
        f"{result.rejected:,} rejected ({rate:,.0f} rows/s)",
        file=sys.stderr,
        flush=True,
    )


def _specs(tables: Iterable[str] | None) -> list[OltpTable]:
    """The named tables (default: all), in foreign-key order."""
    names = set(STREAMS if tables is None else [tables] if isinstance(tables, str) else tables)
    unknown = sorted(names - set(STREAMS))
    if unknown:
        raise LoaderError(
            f"unknown OLTP table(s) {', '.join(unknown)}; "
            f"the loader replicates {', '.join(STREAMS)}"
        )
    return [TABLES[name] for name in STREAMS if name in names]


def check_contract(source: Source, specs: Iterable[OltpTable]) -> None:
    """Stop with one line, before anything lands, if a table or column of the contract is gone."""
    for spec in specs:
        problem = contract_problem(spec, source_columns(source, spec.name))
        if problem:
            raise LoaderError(f"{source.where}: {problem}")


def _prepare_warehouse(conn: psycopg.Connection) -> None:
    # The source's COPY text is UTF-8 (see client): the warehouse must read it as such.
    conn.execute("set client_encoding to 'UTF8'")
    conn.commit()


def _reject_refused_write_times(
    source: Source, conn: psycopg.Connection, spec: OltpTable, until: dt.datetime, r: LoadResult
) -> None:
    """Rows stamped too far ahead, and rows no watermark reaches, go to loader.rejects.

    Two small index range scans per run, each bounded; a row already recorded
    for the same reason is not recorded (or counted) again.
    """
    held = future_rows(source, spec, until)
    unreachable = unreachable_rows(source, spec)
    r.held, r.unreachable = len(held), len(unreachable)
    if held or unreachable:
        with conn.transaction():
            r.rejected += write_rejects(conn, None, SOURCE, spec.name, held + unreachable)

    def count(n: int) -> str:
        return f"at least {n:,}" if n >= REJECT_SCAN_LIMIT else f"{n:,}"

    if held:
        r.notes.append(
            f"{count(len(held))} row(s) of {spec.name} have {spec.cursor} more than "
            "LOADER_FUTURE_TOLERANCE_SECONDS ahead of the source's clock: held back (see "
            "loader.rejects), they land once their time has come"
        )
    if unreachable:
        r.notes.append(
            f"{count(len(unreachable))} row(s) of {spec.name} have no usable {spec.cursor} "
            "(null or before year 1), so no watermark reaches them: they are in loader.rejects "
            "and re-checked every run"
        )


def _lookback_start(watermark: Position, seconds: float) -> Position:
    try:
        return Position(max(watermark.updated_at - dt.timedelta(seconds=seconds), MIN_CURSOR))
    except OverflowError:
        return Position(MIN_CURSOR)


def load_source_table(
    source: Source,
    conn: psycopg.Connection,
    spec: OltpTable,
    *,
    batch_size: int,
    settings: LoaderSettings,
    until: dt.datetime,
    progress: Callable[[LoadResult], None] | None = None,
) -> LoadResult:
    """Land every row version of ``spec`` written since its watermark, under its stream lock.

    ``until`` is the latest write time accepted (the source's clock plus the
    tolerance). The raw and control tables must exist.
    """
    started = time.monotonic()
    result = LoadResult(table=spec.name)

    def read(batch_id: int, after: Position, upto: Position | None) -> Iterator[bytearray]:
        return read_batch(source, spec, batch_id, after, upto, until, batch_size)

    def tick(r: LoadResult) -> None:
        r.seconds = time.monotonic() - started
        if progress:
            progress(r)

    with stream_lock(conn, SOURCE, spec.name):
        watermark = Position.from_watermark(read_watermark(conn, SOURCE, spec.name))
        result.watermark = watermark.watermark() if watermark else None
        if watermark is not None and settings.lookback_seconds > 0:
            start = _lookback_start(watermark, settings.lookback_seconds)
            land_lookback(
                conn,
                spec,
                read,
                start,
                watermark,
                batch_size=batch_size,
                result=result,
                progress=tick,
            )
        land_new(
            conn,
            spec,
            read,
            watermark or Position(MIN_CURSOR),
            batch_size=batch_size,
            result=result,
            progress=tick,
        )
        _reject_refused_write_times(source, conn, spec, until, result)
    result.seconds = time.monotonic() - started
    return result


def load_table(
    table: str,
    batch_size: int | None = None,
    progress: Callable[[LoadResult], None] | None = None,
) -> LoadResult:
    """Load one table from the configured servers (its own snapshot), by keyset."""
    [spec] = _specs([table])
    settings = LoaderSettings.from_env()
    with (
        open_source(OltpSettings.from_env()) as source,
        connect(WarehouseSettings.from_env()) as conn,
    ):
        check_contract(source, [spec])
        ensure_control_tables(conn)
        ensure_raw_tables(conn, [raw_table(spec)])
        _prepare_warehouse(conn)
        return load_source_table(
            source,
            conn,
            spec,
            batch_size=batch_size or settings.batch_size,
            settings=settings,
            until=not_after(source, settings.future_tolerance_seconds),
            progress=progress,
        )


def load_all(
    tables: Iterable[str] | None = None,
    batch_size: int | None = None,
    progress: Callable[[LoadResult], None] | None = None,
) -> list[LoadResult]:
    """Load the named tables (default: all) in foreign-key order.

    Change capture lands every table's changes at once; the keyset mode reads
    the named tables from one source snapshot.
    """
    specs = _specs(tables)
    settings = LoaderSettings.from_env()
    size = batch_size or settings.batch_size
    cdc_mode = OltpCaptureSettings.from_env().capture == "cdc"
    if cdc_mode and len(specs) < len(STREAMS):
        raise LoaderError(
            "OLTP_CAPTURE=cdc lands every table's changes at once: leave out --table, "
            "or set OLTP_CAPTURE=keyset"
        )
    source_settings = OltpSettings.from_env()
    if cdc_mode:
        with open_source(source_settings) as source:
            check_contract(source, specs)
        with connect(WarehouseSettings.from_env()) as conn:
            ensure_all_raw_tables(conn)
            _prepare_warehouse(conn)
            return cdc.capture(source_settings, conn, specs, batch_size=size, progress=progress)
    with (
        open_source(source_settings) as source,
        connect(WarehouseSettings.from_env()) as conn,
    ):
        check_contract(source, specs)
        ensure_all_raw_tables(conn)
        _prepare_warehouse(conn)
        until = not_after(source, settings.future_tolerance_seconds)
        return [
            load_source_table(
                source,
                conn,
                spec,
                batch_size=size,
                settings=settings,
                until=until,
                progress=progress,
            )
            for spec in specs
        ]


def reset_table(table: str) -> None:
    """Forget a table's raw rows, rejects and watermark, so the next load starts over.

    Holds the table's lock (a load running now is not cut off). The raw table
    is emptied, not dropped, so dbt's sources still resolve. Its staging models
    then need `make dbt ARGS="build --full-refresh -s stg_oltp__<table>+"`.
    The change capture's position is forgotten too: the next load in that mode
    takes a fresh snapshot of every table.
    """
    [spec] = _specs([table])
    with connect(WarehouseSettings.from_env()) as conn:
        ensure_control_tables(conn)
        ensure_raw_tables(conn, [raw_table(spec)])
        # The change capture's lock too: a capture running now would write its position
        # back after the reset forgot it, over a raw table no snapshot refills.
        with (
            stream_lock(conn, SOURCE, spec.name),
            stream_lock(conn, SOURCE, cdc.STREAM),
            conn.transaction(),
        ):
            conn.execute(sql.SQL("truncate {}").format(raw_table(spec).identifier))
            for control in ("watermarks", "rejects"):
                conn.execute(
                    sql.SQL("delete from loader.{} where source = %s and stream = %s").format(
                        sql.Identifier(control)
                    ),
                    (SOURCE, spec.name),
                )
            cdc.forget(conn)
