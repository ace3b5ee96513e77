"""The order system's change capture: a logical replication slot, landed exactly once.

Every insert, update, delete and truncate on the replicated tables lands in
``raw_oltp.<table>`` as a row version with its kind of change (``_op``), its
transaction's commit LSN (``_lsn``) and its place in that transaction
(``_seq``), in commit order, whatever its ``updated_at`` says and however late
it committed. A delete lands as a tombstone (the key, other columns null,
``_op = 'd'``); a truncate lands a tombstone (``_op = 't'``) for every key raw
held before it. Staging keeps each key's latest version by (``_lsn``,
``_seq``) and drops the keys whose latest version is a tombstone.

- **Start** (no position stored, or the slot is gone): the slot is created over a
  replication connection, which exports the snapshot its stream starts from.
  Every table is copied from that snapshot (``_op = 'r'``, ``_lsn`` = the slot's
  consistent point) and keys raw holds that the snapshot lacks land as
  tombstones; all of it, and the position, commit in one warehouse transaction.
  So the copy and the stream meet with no gap and no overlap, and a start cut
  off midway leaves nothing (the next run drops the slot and starts again).
- **Stream**: each batch of whole transactions, read with
  ``pg_logical_slot_peek_binary_changes`` and decoded by ``pgoutput``, commits
  its rows and the position it reached (the end of its last commit) in one
  warehouse transaction; only then is the slot advanced. A rerun after a crash
  between the two skips the transactions that commit before the stored
  position, so nothing lands twice.
- **A slot dropped or invalidated** (the server keeps at most
  ``max_slot_wal_keep_size`` of WAL for it) is one line in the load's notes, and
  a fresh start: the snapshot re-lands every row and turns keys deleted meanwhile
  into tombstones, so raw equals the source again.

Values are their types' text output in a UTC, ISO session, as the keyset mode's
COPY writes them, so the two modes land the same text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psycopg
from psycopg import pq, sql

from config import WarehouseSettings
from loaders.core.control import (
    close_batch,
    open_batch,
    read_watermark,
    record_lag,
    stream_lock,
    write_rejects,
    write_watermark,
)
from loaders.core.copy import CopyRow, copy_bytes, copy_lines
from loaders.core.warehouse import LoaderError, first_line
from loaders.oltp import checks, pgoutput
from loaders.oltp.checks import OltpTable
from loaders.oltp.client import Source, copy_out, open_source, session
from loaders.oltp.landing import (
    SOURCE,
    LoadResult,
    copy_batch,
    latest_versions,
    raw_table,
    tombstone_missing,
)
from loaders.oltp.pgoutput import UNCHANGED, lsn_text, lsn_value
from loaders.oltp.settings import OltpCaptureSettings, OltpSettings

STREAM = "cdc"  # loader.watermarks (source oltp): {"slot": ..., "position": LSN}
CHANGE_COLUMNS = ("_batch_id", "_op", "_lsn", "_seq")
NO_KEYSET = "OLTP_CAPTURE=keyset reads with any read-only user"


@dataclass(frozen=True)
class SlotState:
    wal_status: str  # reserved, extended, unreserved, lost
    retained: int  # bytes of WAL the slot keeps on the source
    behind: int  # bytes of WAL written since the position the slot confirmed
    confirmed: int = 0  # the position the slot confirmed (nothing before it is sent again)

    def describe(self, slot: str) -> str:
        return (
            f"slot {slot}: {_size(self.behind)} behind, {_size(self.retained)} of WAL held "
            "on the source"
        )


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError


def slot_state(conn: psycopg.Connection, slot: str) -> SlotState | None:
    """The slot's health, or None if it does not exist."""
    row = conn.execute(
        "select wal_status, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0),"
        " coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0),"
        " coalesce(confirmed_flush_lsn, '0/0')::text"
        " from pg_replication_slots where slot_name = %s",
        (slot,),
    ).fetchone()
    if row is None:
        return None
    # checks.text: a SQL_ASCII source answers text as bytes.
    status, confirmed = checks.text(row[0]) or "lost", checks.text(row[3])
    return SlotState(status, int(row[1]), int(row[2]), lsn_value(confirmed))


@dataclass
class Capture:
    """What one load works with: the source (autocommit, UTC, ISO), the slot, the warehouse."""

    source: Source
    settings: OltpCaptureSettings
    slot: str
    warehouse: psycopg.Connection
    specs: list[OltpTable]
    batch_size: int
    results: dict[str, LoadResult] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def result(self, table: str) -> LoadResult:
        return self.results.setdefault(table, LoadResult(table=table))


def capture(
    source_settings: OltpSettings,
    warehouse: psycopg.Connection,
    specs: list[OltpTable],
    *,
    batch_size: int,
    progress: Callable[[LoadResult], None] | None = None,
) -> list[LoadResult]:
    """Land every change since the stored position (after a start, if one is needed)."""
    settings = OltpCaptureSettings.from_env()
    slot = settings.slot_name(WarehouseSettings.from_env().dbname)
    started = time.monotonic()
    with session(source_settings) as source, stream_lock(warehouse, SOURCE, STREAM):
        cap = Capture(source, settings, slot, warehouse, specs, batch_size)
        position = _position(cap)
        if position is None:
            position = _start(cap)
        _stream(cap, position, progress)
        with source.errors("reading the slot's lag"):
            state = slot_state(source.conn, slot)
        if state is not None:
            cap.notes.append(state.describe(slot))
            record_lag(warehouse, SOURCE, slot, state.behind, "bytes")
            if state.retained > settings.lag_warn_bytes:
                cap.notes.append(
                    f"warning: slot {slot} holds more WAL than OLTP_SLOT_LAG_WARN_BYTES "
                    f"({_size(settings.lag_warn_bytes)}); run the load, or drop the slot if "
                    "nothing reads it any more (the next load takes a fresh snapshot)"
                )
    results = [cap.result(spec.name) for spec in specs]
    for r in results:
        r.seconds = time.monotonic() - started
    results[0].notes.extend(cap.notes)
    return results


def _position(cap: Capture) -> int | None:
    """The stored position, if the slot it belongs to can still serve it; else None."""
    stored = read_watermark(cap.warehouse, SOURCE, STREAM)
    with cap.source.errors("reading the replication slot"):
        state = slot_state(cap.source.conn, cap.slot)
    if stored and stored.get("slot") == cap.slot and state and state.wal_status != "lost":
        position = lsn_value(stored["position"])
        # The slot never confirms past what the warehouse committed; if it has, the
        # warehouse lost batches (restored from a backup, say): start again.
        if state.confirmed <= position:
            return position
    if stored and stored.get("slot") == cap.slot:
        what = (
            "was dropped"
            if state is None
            else "was invalidated (WAL it needed is gone)"
            if state.wal_status == "lost"
            else "is ahead of what the warehouse holds (restored from a backup?)"
        )
        cap.notes.append(
            f"the replication slot {cap.slot} {what}: took a fresh snapshot of every table; "
            "keys deleted meanwhile land as deletes"
        )
    elif stored and stored.get("slot"):
        old = stored["slot"]
        cap.notes.append(
            f"OLTP_SLOT changed from {old} to {cap.slot}: took a fresh snapshot of every table; "
            f"drop the old slot if nothing else reads it (select pg_drop_replication_slot('{old}')"
            " on the source), or it keeps WAL there"
        )
    if state is not None:  # a start cut off midway, or an invalidated slot: begin again
        with cap.source.errors("dropping the unusable replication slot"):
            cap.source.conn.execute("select pg_drop_replication_slot(%s)", (cap.slot,))
    return None


def _ensure_publication(cap: Capture) -> None:
    names = [spec.name for spec in cap.specs]
    pub = cap.settings.publication
    with cap.source.errors(f"creating the publication {pub} ({NO_KEYSET})"):
        have = {
            checks.text(t)
            for (t,) in cap.source.conn.execute(
                "select tablename from pg_publication_tables where pubname = %s"
                " and schemaname = current_schema()",
                (pub,),
            ).fetchall()
        }
        exists = cap.source.conn.execute(
            "select count(*) from pg_publication where pubname = %s", (pub,)
        ).fetchone()[0]
        missing = [n for n in names if n not in have]
        if not missing:
            return
        verb = (
            "alter publication {} add table {}" if exists else "create publication {} for table {}"
        )
        cap.source.conn.execute(
            sql.SQL(verb).format(
                sql.Identifier(pub), sql.SQL(", ").join(map(sql.Identifier, missing))
            )
        )


def _create_slot(cap: Capture) -> tuple[psycopg.Connection, int, str]:
    """The slot, over a replication connection kept open: (connection, consistent point,
    exported snapshot). The snapshot lives as long as the connection runs nothing else."""
    settings = cap.source.settings
    where = f"the order system database at {settings.describe()}"
    try:
        repl = psycopg.connect(settings.conninfo(), replication="database", autocommit=True)
    except psycopg.OperationalError as exc:
        raise LoaderError(
            f"{where} refused a replication connection: {first_line(exc)} (change capture "
            f"needs a user with the REPLICATION attribute; {NO_KEYSET})"
        ) from None
    command = sql.SQL("CREATE_REPLICATION_SLOT {} LOGICAL pgoutput (SNAPSHOT 'export')").format(
        sql.Identifier(cap.slot)
    )
    res = repl.pgconn.exec_(command.as_bytes(repl))
    if res.status != pq.ExecStatus.TUPLES_OK:
        message = (res.error_message or b"").decode(errors="replace").strip()
        repl.close()
        raise LoaderError(f"{where} could not create the replication slot {cap.slot}: {message}")
    consistent = res.get_value(0, 1)
    snapshot = res.get_value(0, 2)
    assert consistent is not None and snapshot is not None
    return repl, lsn_value(consistent.decode()), snapshot.decode()


def _start(cap: Capture) -> int:
    """Create the slot and land every table from its snapshot; returns the position."""
    _ensure_publication(cap)
    repl, consistent, snapshot = _create_slot(cap)
    try:
        with open_source(cap.source.settings, snapshot) as snap, cap.warehouse.transaction():
            for spec in cap.specs:
                _land_snapshot(cap, snap, spec, consistent)
            _save_position(cap, consistent)
    finally:
        repl.close()
    return consistent


def _land_snapshot(cap: Capture, snap: Source, spec: OltpTable, lsn: int) -> None:
    raw = raw_table(spec).identifier
    batch_id = open_batch(cap.warehouse, SOURCE, spec.name)
    query = sql.SQL(
        "copy (select {columns}, {batch}::bigint, 'r', {lsn}::pg_lsn, 0 from {table}) to stdout"
    ).format(
        columns=sql.SQL(", ").join(map(sql.Identifier, spec.columns)),
        batch=sql.Literal(batch_id),
        lsn=sql.Literal(lsn_text(lsn)),
        table=sql.Identifier(spec.name),
    )

    def read() -> Iterator[bytearray]:
        return copy_out(snap, query, None, f"copying {spec.name} from the slot's snapshot")

    n, _, refused = copy_batch(
        cap.warehouse, spec, raw, read, columns=(*spec.columns, *CHANGE_COLUMNS)
    )
    gone = tombstone_missing(cap.warehouse, spec, batch_id, lsn_text(lsn), refused=refused)
    r = cap.result(spec.name)
    r.landed += n - len(refused) + gone
    r.rejected += write_rejects(cap.warehouse, batch_id, SOURCE, spec.name, refused)
    r.batches += 1
    close_batch(
        cap.warehouse, batch_id, SOURCE, spec.name, n - len(refused) + gone, len(refused), None
    )


def _tombstone_truncated(
    conn: psycopg.Connection, spec: OltpTable, batch_id: int, lsn: int, seq: int
) -> int:
    """A truncate at (``lsn``, ``seq``): every key alive in raw before it gets a tombstone."""
    statement = sql.SQL(
        "insert into {raw} ({key}, _batch_id, _op, _lsn, _seq)"
        " select l.key, %(batch)s, 't', %(lsn)s::pg_lsn, %(seq)s from ({latest}) as l"
        " where l._op is distinct from 'd' and l._op is distinct from 't'"
    ).format(
        raw=raw_table(spec).identifier,
        key=sql.Identifier(spec.primary_key),
        latest=latest_versions(
            spec,
            "(coalesce(_lsn, '0/0'), coalesce(_seq, 0)) < (%(lsn)s::pg_lsn, %(seq)s)",
        ),
    )
    with conn.cursor() as cur:
        cur.execute(statement, {"batch": batch_id, "lsn": lsn_text(lsn), "seq": seq})
        return cur.rowcount


def _save_position(cap: Capture, position: int) -> None:
    write_watermark(
        cap.warehouse, SOURCE, STREAM, {"slot": cap.slot, "position": lsn_text(position)}
    )


# --- the stream ---------------------------------------------------------------------------


@dataclass
class _Table:
    """A replicated table as the stream's Relation message describes it."""

    spec: OltpTable
    positions: tuple[int, ...]  # where each contract column is in the message's row
    batch_id: int | None = None
    lines: list[bytes] = field(default_factory=list)  # COPY text, one per change
    # This batch's latest fields per key: a TOASTed value an update did not touch
    # is taken from the key's previous version.
    latest: dict[bytes, list[bytes]] = field(default_factory=dict)
    truncates: list[tuple[int, int]] = field(default_factory=list)  # (lsn, seq)


@dataclass
class _Batch:
    """What one peek decoded: the changes to land and where the slot can be advanced to."""

    tables: dict[int, _Table]
    end: int | None = None  # the end of the last commit read
    skipped: int = 0  # transactions landed by an earlier run


def _relation(cap: Capture, message: pgoutput.Relation) -> _Table | None:
    spec = next((s for s in cap.specs if s.name == message.name), None)
    if spec is None:
        return None
    missing = [c for c in spec.columns if c not in message.columns]
    if missing:
        raise LoaderError(
            f"{cap.source.where}: table {spec.name} lacks column(s) {', '.join(missing)}, "
            "which the loader lands (contract: loaders/oltp/checks.py); restore them at the "
            "source or change the contract"
        )
    return _Table(spec, tuple(message.columns.index(c) for c in spec.columns))


def _previous(cap: Capture, table: _Table, key: bytes) -> list[bytes] | None:
    """The key's latest landed fields (COPY text), for a value an update left out."""
    spec = table.spec
    row = cap.warehouse.execute(
        sql.SQL(
            "select {columns} from {raw} where {key} = %s"
            " order by _lsn desc nulls last, _seq desc nulls last, _batch_id desc limit 1"
        ).format(
            columns=sql.SQL(", ").join(map(sql.Identifier, spec.columns)),
            raw=raw_table(spec).identifier,
            key=sql.Identifier(spec.primary_key),
        ),
        (key.decode(errors="replace"),),
    ).fetchone()
    if row is None:
        return None
    return [b"\\N" if v is None else copy_bytes(v.encode()) for v in row]


def _decode_batch(cap: Capture, messages: list[bytes], position: int, tables: dict) -> _Batch:
    batch = _Batch(tables)
    skip, lsn, seq, lsn_bytes = False, 0, 0, b""
    for data in messages:
        try:
            m = pgoutput.decode(data, raw=True)
        except pgoutput.DecodeError as exc:
            raise LoaderError(
                f"{cap.source.where}: a change the loader cannot read: {exc}"
            ) from None
        if isinstance(m, pgoutput.Change):
            if skip or (table := tables.get(m.relation)) is None:
                continue
            if m.old is not None:  # an update that changed the key: the old key is gone
                at = table.positions[table.spec.key_index]
                if m.old[at] is not None and m.old[at] != m.values[at]:
                    seq += 1
                    _add_tombstone(cap, table, m.old[at], lsn_bytes, seq)  # type: ignore[arg-type]
            seq += 1
            _add_change(cap, table, m, lsn_bytes, seq)
        elif isinstance(m, pgoutput.Begin):
            lsn, seq = m.final_lsn, 0
            lsn_bytes = lsn_text(lsn).encode()
            skip = lsn < position
            batch.skipped += skip
        elif isinstance(m, pgoutput.Commit):
            batch.end = m.end_lsn
        elif isinstance(m, pgoutput.Relation):
            if (table := _relation(cap, m)) is not None:
                old = tables.get(m.oid)
                if old is not None:  # sent again: keep what this batch gathered
                    table.batch_id, table.lines, table.latest = old.batch_id, old.lines, old.latest
                    table.truncates = old.truncates
                tables[m.oid] = table
        elif isinstance(m, pgoutput.Truncate) and not skip:
            for oid in m.relations:
                if (table := tables.get(oid)) is not None:
                    seq += 1
                    _batch_of(cap, table)
                    table.truncates.append((lsn, seq))
                    table.latest.clear()
    return batch


def _batch_of(cap: Capture, table: _Table) -> int:
    if table.batch_id is None:
        table.batch_id = open_batch(cap.warehouse, SOURCE, table.spec.name)
    return table.batch_id


def _add_change(cap: Capture, table: _Table, m: pgoutput.Change, lsn: bytes, seq: int) -> None:
    """The change as a COPY text line: the contract's columns, then the change columns."""
    values = m.values
    fields: list = [values[i] for i in table.positions]
    if m.op == "u" and UNCHANGED in values:
        # A TOASTed value the update left out: the key's previous version has it (the
        # key itself is always sent). Its fields are COPY text already.
        key = copy_bytes(fields[table.spec.key_index])
        before = table.latest.get(key) or _previous(cap, table, key)
        fields = [
            (before[i] if before else b"\\N")
            if f is UNCHANGED
            else b"\\N"
            if f is None
            else copy_bytes(f)
            for i, f in enumerate(fields)
        ]
    else:
        # Most rows hold nothing COPY must escape: one look at all their values.
        probe = b"".join([f for f in fields if f is not None])
        if b"\\" in probe or b"\t" in probe or b"\n" in probe or b"\r" in probe:
            fields = [b"\\N" if f is None else copy_bytes(f) for f in fields]
        else:
            fields = [b"\\N" if f is None else f for f in fields]
        key = fields[table.spec.key_index]
    table.latest[key] = fields
    table.lines.append(
        b"%b\t%d\t%b\t%b\t%d\n"
        % (b"\t".join(fields), table.batch_id or _batch_of(cap, table), _OPS[m.op],
           lsn, seq)
    )  # fmt: skip


_OPS = {op: op.encode() for op in ("c", "u", "d")}


def _add_tombstone(cap: Capture, table: _Table, key: bytes, lsn: bytes, seq: int) -> None:
    """A delete of ``key``: the key, every other column null."""
    fields = [b"\\N"] * len(table.positions)
    fields[table.spec.key_index] = copy_bytes(key)
    table.latest.pop(fields[table.spec.key_index], None)
    table.lines.append(
        b"%b\t%d\t%b\t%b\t%d\n"
        % (b"\t".join(fields), table.batch_id or _batch_of(cap, table), b"d", lsn, seq)
    )


def _land(cap: Capture, batch: _Batch) -> None:
    """COPY each table's changes, then its truncates' tombstones (rows before them, in raw)."""
    for table in batch.tables.values():
        if table.batch_id is None:
            continue
        spec = table.spec
        raw = raw_table(spec).identifier

        def rows(spec: OltpTable = spec, lines: list[bytes] = table.lines) -> list[CopyRow]:
            found = []
            for line in lines:
                parts = line.rstrip(b"\n").split(b"\t")
                found.append(CopyRow(line, parts[spec.key_index], parts[-2], line))
            return found

        refused = copy_lines(
            cap.warehouse, raw, (*spec.columns, *CHANGE_COLUMNS), table.lines, rows
        )
        landed = len(table.lines) - len(refused)
        for lsn, seq in table.truncates:
            landed += _tombstone_truncated(cap.warehouse, spec, table.batch_id, lsn, seq)
        rejected = write_rejects(cap.warehouse, table.batch_id, SOURCE, spec.name, refused)
        close_batch(cap.warehouse, table.batch_id, SOURCE, spec.name, landed, rejected, None)
        r = cap.result(spec.name)
        r.landed += landed
        r.rejected += rejected
        r.batches += 1


def _stream(cap: Capture, position: int, progress: Callable[[LoadResult], None] | None) -> None:
    src, started = cap.source, time.monotonic()
    with src.errors("reading its clock"):
        # Flushed, not written: a peek decodes only flushed WAL, and the position may
        # move to this point once the peeks are empty (see below).
        upto = checks.text(
            src.conn.execute("select pg_current_wal_flush_lsn()::text").fetchone()[0]
        )
    tables: dict[int, _Table] = {}  # a Relation message is sent once per session
    while True:
        with src.errors(f"reading the replication slot {cap.slot}"):
            # Binary results: the messages arrive as bytes, not hex to decode.
            messages = [
                data
                for (data,) in src.conn.execute(
                    "select data from pg_logical_slot_peek_binary_changes(%s, %s::pg_lsn, %s,"
                    " 'proto_version', '1', 'publication_names', %s)",
                    (cap.slot, upto, cap.batch_size, cap.settings.publication),
                    binary=True,
                ).fetchall()
            ]
        if not messages:
            # Every change committed before the load began has landed: the position
            # moves there, past the WAL of other databases (the warehouse's own
            # writes, on the embedded server), so the slot does not hold it.
            end = lsn_value(upto)
            if end > position:
                with cap.warehouse.transaction():
                    _save_position(cap, end)
                _advance(cap, end)
            return
        for table in tables.values():
            table.batch_id, table.lines, table.latest, table.truncates = None, [], {}, []
        with cap.warehouse.transaction():
            batch = _decode_batch(cap, messages, position, tables)
            _land(cap, batch)
            if batch.end is not None and batch.end > position:
                position = batch.end
                _save_position(cap, position)
        _advance(cap, position)
        if progress:
            for table in tables.values():
                if table.lines or table.truncates:
                    r = cap.result(table.spec.name)
                    r.seconds = time.monotonic() - started
                    progress(r)


def _advance(cap: Capture, position: int) -> None:
    """Only now, with the rows and the position committed, may the slot forget them."""
    with cap.source.errors(f"advancing the replication slot {cap.slot}"):
        cap.source.conn.execute(
            "select pg_replication_slot_advance(%s, %s::pg_lsn)", (cap.slot, lsn_text(position))
        )


def forget(warehouse: psycopg.Connection) -> None:
    """Drop the stored position: the next load takes a fresh snapshot (``--reset``)."""
    with warehouse.transaction():
        warehouse.execute(
            "delete from loader.watermarks where source = %s and stream = %s", (SOURCE, STREAM)
        )


def slot_lag(source_settings: OltpSettings, warehouse_db: str) -> str | None:
    """One line on the slot's lag for ``make status``; None if there is no slot."""
    settings = OltpCaptureSettings.from_env()
    if settings.capture != "cdc":
        return None
    slot = settings.slot_name(warehouse_db)
    with session(source_settings) as source, source.errors("reading the replication slot"):
        state = slot_state(source.conn, slot)
    if state is None:
        return None
    line = state.describe(slot)
    if state.wal_status == "lost":
        line += " (invalidated: the next load takes a fresh snapshot)"
    elif state.retained > settings.lag_warn_bytes:
        line += f" (over OLTP_SLOT_LAG_WARN_BYTES, {_size(settings.lag_warn_bytes)})"
    return line
