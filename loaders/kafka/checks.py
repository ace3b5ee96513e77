"""The contract every message must meet to land, and its COPY line.

Only what raw landing needs is checked: staging reads ``value::jsonb`` as a
registration keyed by email, so a message lands when its value is UTF-8 JSON
that parses to an object with a non-empty string ``email``, and that jsonb can
store (no ``\\u0000``; orjson already refuses lone surrogates and numbers
beyond a double, which is stricter than jsonb). Anything else is rejected with
the reason, and its offset still advances. Field types and values (a bad date,
an unknown loyalty status) are staging's business: they land.

The value lands byte for byte as produced (only COPY-escaped), so a duplicate
re-sent by the producer lands as a row of its own, and staging dedupes by email.
"""

from __future__ import annotations

import datetime as dt
import re

import orjson
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message

from loaders.core.control import Reject
from loaders.core.copy import CopyRow

NULL = b"\\N"  # COPY text format's null
_MAX_PAYLOAD = 100_000  # characters of a rejected value kept in loader.rejects
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_EPOCH = dt.datetime(1970, 1, 1)
_MILLIS = [b".%03d+00" % ms for ms in range(1000)]  # the end of every timestamp, made once
_KINDS = {dict: "object", list: "array", str: "string", int: "number", float: "number",
          bool: "boolean", type(None): "null"}  # fmt: skip


def copy_escape(data: bytes) -> bytes:
    """``data`` escaped for COPY's text format, as bytes (nothing is decoded).

    Membership tests with an int (a byte value) are a plain memchr, several
    times faster than with a one-byte ``bytes``; most values need no escaping.
    """
    if not (92 in data or 9 in data or 10 in data or 13 in data):  # \\ \t \n \r
        return data
    if b"\\" in data:
        data = data.replace(b"\\", b"\\\\")
    if b"\t" in data:
        data = data.replace(b"\t", b"\\t")
    if b"\n" in data:
        data = data.replace(b"\n", b"\\n")
    if b"\r" in data:
        data = data.replace(b"\r", b"\\r")
    return data


def _special(key: bytes) -> bool:
    """A NUL, or a byte COPY must escape (a key this rare takes the slow path)."""
    return 0 in key or 92 in key or 9 in key or 10 in key or 13 in key


def value_problem(value: bytes | None) -> str | None:
    """Why ``value`` cannot land, or None. One orjson parse in the common case."""
    if value is None:
        return "tombstone: the message has no value (null)"
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        try:
            value.decode()
        except UnicodeDecodeError as bad:
            return f"value is not valid UTF-8 ({bad.reason} at byte {bad.start})"
        return f"value is not valid JSON: {exc}"
    if type(doc) is not dict:
        return f"value is a JSON {_KINDS.get(type(doc), 'value')}, not an object"
    email = doc.get("email")
    if type(email) is not str:
        if "email" not in doc:
            return "no email (the natural key of a registration)"
        return f"email is a JSON {_KINDS.get(type(email), 'value')}, not a string"
    if not email or email.isspace():
        return "email is empty"
    if 92 in value and _NUL_ESCAPE.search(value):  # 92: a backslash, so maybe \\u0000
        return "value contains \\u0000 (NUL), which PostgreSQL jsonb cannot store"
    return None


def key_problem(key: bytes) -> str | None:
    """Why a (non-null) key cannot land as text, or None."""
    if 0 in key:
        return "key contains a NUL byte, which PostgreSQL text cannot store"
    if not key.isascii():
        try:
            key.decode()
        except UnicodeDecodeError as bad:
            return f"key is not valid UTF-8 ({bad.reason} at byte {bad.start})"
    return None


class Timestamps:
    """Message timestamps (ms since the epoch) as COPY text; each second formatted once.

    A timestamp Python cannot represent (beyond year 9999) lands as null: the
    message itself is fine, only the broker metadata is out of range.
    """

    def __init__(self) -> None:
        self._seconds: dict[int, bytes] = {}

    def __call__(self, timestamp: tuple[int, int]) -> bytes:
        kind, ms = timestamp
        if kind == TIMESTAMP_NOT_AVAILABLE:
            return NULL
        seconds, millis = divmod(ms, 1000)
        text = self._seconds.get(seconds)
        if text is None:
            try:
                text = (_EPOCH + dt.timedelta(seconds=seconds)).isoformat(" ").encode()
            except OverflowError:
                return NULL
            if len(self._seconds) >= 100_000:
                self._seconds.clear()
            self._seconds[seconds] = text
        return text + _MILLIS[millis]

    def iso(self, timestamp: tuple[int, int]) -> str:
        text = self(timestamp)
        return "no timestamp" if text == NULL else text.decode()


def copy_line(message: Message, prefix: bytes, stamps: Timestamps) -> bytes | Reject:
    """The message's COPY line up to its batch id, or a Reject saying why it cannot land.

    ``prefix`` is the escaped topic and a tab. The batch's tab, id and newline
    are added when the batch writes its lines (``suffix.join``), so lines can
    be encoded before their batch is opened. This runs once per message and is
    most of the loader's own CPU time, so it stays in bytes from the broker's
    buffer to COPY.
    """
    value = message.value()
    key = message.key()
    problem = value_problem(value) or (key_problem(key) if key is not None else None)
    if problem is not None:
        return reject(message, problem, stamps)
    return b"%b%d\t%d\t%b\t%b\t%b" % (
        prefix,
        message.partition(),
        message.offset(),
        NULL if key is None else copy_escape(key),
        copy_escape(value),  # type: ignore[arg-type]  # value_problem refused None
        stamps(message.timestamp()),
    )


def copy_lines(
    messages: list[Message], prefix: bytes, stamps: Timestamps
) -> tuple[list[bytes], list[Reject]]:
    """``copy_line`` for a chunk of messages: (lines, rejects).

    The common message (a JSON object with an email, nothing to escape, a
    timestamp whose second is already formatted) is encoded inline here, which
    halves the per-message cost; anything else goes through ``copy_line``, the
    one place that decides and explains. So this path never rejects: it only
    accepts what ``copy_line`` would accept, byte for byte the same.
    """
    lines: list[bytes] = []
    rejects: list[Reject] = []
    append = lines.append
    loads, seconds, millis = orjson.loads, stamps._seconds, _MILLIS
    for m in messages:
        value = m.value()
        key = m.key()
        kind, ms = m.timestamp()
        text = seconds.get(ms // 1000)
        try:
            doc = loads(value) if value is not None else None
        except orjson.JSONDecodeError:
            doc = None
        if (
            type(doc) is dict
            and type(email := doc.get("email")) is str
            and email
            and not email.isspace()
            and not (92 in value or 9 in value or 10 in value or 13 in value)  # see copy_escape
            and (key is None or (key.isascii() and not _special(key)))
            and text is not None
            and kind != TIMESTAMP_NOT_AVAILABLE
        ):
            append(
                b"%b%d\t%d\t%b\t%b\t%b%b"
                % (prefix, m.partition(), m.offset(), NULL if key is None else key, value, text,
                   millis[ms % 1000])
            )  # fmt: skip
            continue
        item = copy_line(m, prefix, stamps)
        if type(item) is bytes:
            append(item)
        else:
            rejects.append(item)  # type: ignore[arg-type]
    return lines, rejects


def record_id(message: Message) -> str:
    return f"{message.topic()}/{message.partition()}/{message.offset()}"


def reject(message: Message, reason: str, stamps: Timestamps) -> Reject:
    """A refused message: named by topic/partition/offset, versioned by its timestamp.

    The timestamp tells two messages apart that share an offset because the
    topic was recreated (offsets start again at 0), so neither reject is lost.
    """
    value, key = message.value(), message.key()
    if value is None:
        payload = "" if key is None else "key: " + key.decode("utf-8", "backslashreplace")
    else:
        payload = value.decode("utf-8", "backslashreplace")
    return Reject(
        record_id(message), stamps.iso(message.timestamp()), reason, payload[:_MAX_PAYLOAD]
    )


def to_copy_row(message: Message, line: bytes, stamps: Timestamps) -> CopyRow:
    """What ``copy_rows`` needs to reject this line if PostgreSQL still refuses it."""
    return CopyRow(
        line,
        record_id(message).encode(),
        stamps.iso(message.timestamp()).encode(),
        message.value() or b"",
    )
