"""pgoutput messages from a real slot decode to the changes that were made, in commit order."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from loaders.oltp.pgoutput import (
    UNCHANGED,
    Begin,
    Change,
    Commit,
    DecodeError,
    Relation,
    Truncate,
    decode,
    lsn_text,
    lsn_value,
)

# Incompressible enough to be stored out of line (TOAST).
BIG = "".join(uuid.uuid4().hex for _ in range(300))
HOSTILE = "tab\there, new\nline, back\\slash, quote ' \", Zoë 東京"


@pytest.fixture
def source(pg_server):
    """A database with a table, its publication and a pgoutput slot on it."""
    name = f"cdc_{uuid.uuid4().hex[:8]}"
    pg_server.ensure_database(name)
    conn = psycopg.connect(pg_server.conninfo(name), autocommit=True)
    conn.execute("set timezone to 'UTC'")
    conn.execute(
        "create table items (id bigint primary key, note text, price numeric(10, 2),"
        " at timestamptz, big text)"
    )
    conn.execute("create publication capture for table items")
    conn.execute(f"select pg_create_logical_replication_slot('{name}', 'pgoutput')")
    yield conn, name
    conn.execute(f"select pg_drop_replication_slot('{name}')")
    conn.close()


def changes(conn: psycopg.Connection, slot: str) -> list:
    rows = conn.execute(
        "select lsn::text, data from pg_logical_slot_peek_binary_changes(%s, null, null,"
        " 'proto_version', '1', 'publication_names', 'capture')",
        (slot,),
    ).fetchall()
    return [(lsn, decode(data)) for lsn, data in rows]


def test_inserts_updates_deletes_and_truncates_decode_in_commit_order(source) -> None:
    conn, slot = source
    with conn.transaction():
        conn.execute(
            "insert into items values (1, %s, 9.50, '2026-10-01 12:00:00+00', %s),"
            " (2, null, -1, null, null)",
            (HOSTILE, BIG),
        )
    # A large value an update does not touch is not sent again (TOAST): marked unchanged.
    conn.execute("update items set price = 7.25 where id = 1")
    conn.execute("delete from items where id = 2")
    conn.execute("truncate items")

    decoded = changes(conn, slot)
    kinds = [type(m).__name__ for _, m in decoded]
    # A table's Relation message comes before its first change (and again when the
    # server's cache of it was reset, as a truncate does), the same each time.
    assert kinds.index("Relation") < kinds.index("Change")
    assert len({m for _, m in decoded if isinstance(m, Relation)}) == 1
    assert [k for k in kinds if k != "Relation"] == [
        "Begin", "Change", "Change", "Commit",
        "Begin", "Change", "Commit",
        "Begin", "Change", "Commit",
        "Begin", "Truncate", "Commit",
    ]  # fmt: skip
    relation = next(m for _, m in decoded if isinstance(m, Relation))
    assert (relation.schema, relation.name) == ("public", "items")
    assert relation.columns == ("id", "note", "price", "at", "big")
    assert relation.key_columns == ("id",)

    rows = [m for _, m in decoded if isinstance(m, Change)]
    assert [r.op for r in rows] == ["c", "c", "u", "d"]
    assert rows[0].values[:4] == ("1", HOSTILE, "9.50", "2026-10-01 12:00:00+00")
    assert rows[0].values[4] == BIG
    assert rows[1].values == ("2", None, "-1.00", None, None)
    assert rows[2].values[:3] == ("1", HOSTILE, "7.25") and rows[2].values[4] is UNCHANGED
    assert rows[3].values[0] == "2"  # a delete carries the key
    assert all(r.relation == relation.oid for r in rows)
    truncates = [m for _, m in decoded if isinstance(m, Truncate)]
    assert truncates == [Truncate((relation.oid,))]

    begins = [m for _, m in decoded if isinstance(m, Begin)]
    commits = [m for _, m in decoded if isinstance(m, Commit)]
    assert len(begins) == len(commits) == 4
    assert [b.final_lsn for b in begins] == [c.lsn for c in commits]
    assert all(c.committed_at.year == begins[0].committed_at.year for c in commits)
    # Messages come in LSN order; LSNs read back as PostgreSQL writes them.
    lsns = [lsn_value(lsn) for lsn, _ in decoded]
    assert lsns == sorted(lsns)
    assert all(lsn_text(lsn_value(lsn)) == lsn for lsn, _ in decoded)


@pytest.mark.parametrize(
    "data, error",
    [
        (b"", "empty"),
        (b"Z", "message type 'Z'"),
        (b"I\x00\x00\x00\x01", "inside a field"),
        (b"I\x00\x00\x00\x01N\x00\x01t\x00\x00\x00\x09ab", "longer than its message"),
        (b"R\x00\x00\x00\x01public", "terminating NUL"),
        (b"I\x00\x00\x00\x01N\x00\x01b\x00\x00\x00\x01a", "binary values"),
    ],
)
def test_bytes_that_are_not_a_message_are_one_clear_error(data: bytes, error: str) -> None:
    with pytest.raises(DecodeError, match=error):
        decode(data)
