"""PostgreSQL's logical replication messages (the built-in ``pgoutput`` plugin), decoded.

The order system's change capture reads a slot's changes as rows of
``pg_logical_slot_peek_binary_changes(...)``: one protocol message per row
(Begin, Relation, Insert, Update, Delete, Truncate, Commit, ...), in commit
order. This module turns each message's bytes into a small record; nothing
here talks to a server.

Protocol version 1, column values in text: each value is its type's text
output in the reading session (run it in UTC with ISO dates, as the keyset
reads do, and the values are those ``COPY ... TO STDOUT`` writes, before
COPY's escaping). Message layout:
https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html
No well-kept decoder is on PyPI (pypgoutput's last release is from 2022), and
version 1 is a few fixed layouts.
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass
from typing import NamedTuple

# Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
_PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

# A column value: its text, None for SQL NULL, or UNCHANGED for a TOASTed value an
# update did not touch (the message leaves it out; the row's earlier version has it).
UNCHANGED = object()


class DecodeError(ValueError):
    """Bytes that are not a pgoutput version 1 message."""


@dataclass(frozen=True)
class Relation:
    oid: int
    schema: str
    name: str
    columns: tuple[str, ...]
    key_columns: tuple[str, ...]  # the replica identity's columns


@dataclass(frozen=True)
class Begin:
    final_lsn: int
    committed_at: dt.datetime
    xid: int


@dataclass(frozen=True)
class Commit:
    lsn: int
    end_lsn: int
    committed_at: dt.datetime


class Change(NamedTuple):
    """An insert (op ``c``), update (``u``) or delete (``d``) of one row of ``relation``.

    ``values``: the row after the change, or for a delete the key (or the whole old row,
    with replica identity full); a column the message does not carry is missing.
    (A named tuple: one is made per changed row, the loader's hot path.)
    """

    op: str
    relation: int
    values: tuple[object, ...]
    # An update's old key (or, with replica identity full, old row), when the message
    # carries one: with the default identity, only when the update changed the key.
    old: tuple[object, ...] | None = None


@dataclass(frozen=True)
class Truncate:
    relations: tuple[int, ...]


@dataclass(frozen=True)
class Other:
    """A message change capture has no use for (Type, Origin, Message)."""

    kind: str


Message = Relation | Begin | Commit | Change | Truncate | Other


class _Reader:
    def __init__(self, data: bytes, raw: bool = False) -> None:
        self.data, self.at, self.raw = data, 0, raw

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.at + size > len(self.data):
            raise DecodeError(f"message ends after {len(self.data)} bytes, inside a field")
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += size
        return values

    def byte(self) -> str:
        return chr(self.take("!B")[0])

    def int16(self) -> int:
        return self.take("!h")[0]

    def int32(self) -> int:
        return self.take("!i")[0]

    def uint32(self) -> int:
        return self.take("!I")[0]

    def int64(self) -> int:
        return self.take("!q")[0]

    def lsn(self) -> int:
        return self.take("!Q")[0]

    def time(self) -> dt.datetime:
        return _PG_EPOCH + dt.timedelta(microseconds=self.int64())

    def string(self) -> str:
        end = self.data.find(b"\0", self.at)
        if end < 0:
            raise DecodeError("a string without its terminating NUL")
        text = self.data[self.at : end].decode()
        self.at = end + 1
        return text

    def tuple_data(self) -> tuple[object, ...]:
        values, self.at = tuple_values(self.data, self.at, self.raw)
        return values


def tuple_values(data: bytes, at: int, raw: bool = True) -> tuple[tuple[object, ...], int]:
    """A TupleData at ``at``: its values, and where it ends. Written out byte by byte: it
    runs once per changed row, so every call it saves is the loader's time."""
    try:
        count = (data[at] << 8) | data[at + 1]
        at += 2
        values: list[object] = []
        append = values.append
        for _ in range(count):
            kind = data[at]
            if kind == 116:  # t: text
                size = int.from_bytes(data[at + 1 : at + 5], "big", signed=True)
                at += 5
                end = at + size
                if size < 0 or end > len(data):
                    raise DecodeError("a column value longer than its message")
                append(data[at:end] if raw else data[at:end].decode())
                at = end
            elif kind == 110:  # n: null
                append(None)
                at += 1
            elif kind == 117:  # u: unchanged TOAST
                append(UNCHANGED)
                at += 1
            else:
                raise DecodeError(f"column kind {chr(kind)!r} (binary values need protocol 2)")
    except IndexError:
        raise DecodeError("message ends after its last byte, inside a column") from None
    return tuple(values), at


_CHANGES = frozenset(b"IUD")


def _change(data: bytes, raw: bool) -> Change:
    """An Insert, Update or Delete message (see ``decode``)."""
    if len(data) < 7:
        raise DecodeError(f"message ends after {len(data)} bytes, inside a field")
    kind, oid, marker = data[0], int.from_bytes(data[1:5], "big"), data[5]
    if kind == 73:  # I
        if marker != 78:  # N
            raise DecodeError("an insert without its new tuple")
        return Change("c", oid, tuple_values(data, 6, raw)[0])
    if kind == 68:  # D
        if marker not in (75, 79):  # K, O
            raise DecodeError("a delete without its old key")
        return Change("d", oid, tuple_values(data, 6, raw)[0])
    at, old = 5, None
    if marker in (75, 79):  # the old key or row, before the new one
        old, at = tuple_values(data, 6, raw)
        if at >= len(data):
            raise DecodeError("an update without its new tuple")
        marker = data[at]
    if marker != 78:
        raise DecodeError("an update without its new tuple")
    return Change("u", oid, tuple_values(data, at + 1, raw)[0], old)


def decode(data: bytes, raw: bool = False) -> Message:
    """One pgoutput message; with ``raw``, column values stay bytes in the server's encoding."""
    if not data:
        raise DecodeError("an empty message")
    data = bytes(data)
    if data[0] in _CHANGES:  # the hot path: one per changed row
        return _change(data, raw)
    r = _Reader(data, raw)
    kind = r.byte()
    if kind == "B":
        return Begin(final_lsn=r.lsn(), committed_at=r.time(), xid=r.uint32())
    if kind == "C":
        r.byte()  # flags, unused
        return Commit(lsn=r.lsn(), end_lsn=r.lsn(), committed_at=r.time())
    if kind == "R":
        oid, schema, name = r.uint32(), r.string(), r.string()
        r.byte()  # replica identity setting
        columns, keys = [], []
        for _ in range(r.int16()):
            flags, column = r.take("!B")[0], r.string()
            r.take("!Ii")  # type oid, type modifier
            columns.append(column)
            if flags & 1:
                keys.append(column)
        return Relation(oid, schema, name, tuple(columns), tuple(keys))
    if kind == "T":
        count = r.int32()
        r.byte()  # options: cascade, restart identity
        return Truncate(tuple(r.uint32() for _ in range(count)))
    if kind in ("Y", "O", "M"):
        return Other(kind)
    raise DecodeError(f"message type {kind!r}")


def lsn_text(lsn: int) -> str:
    """An LSN as PostgreSQL writes it (``16/B374D848``)."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def lsn_value(text: str) -> int:
    """An LSN from PostgreSQL's text form."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)
