"""The message contract, message by message: what lands, what is refused and why.

Every value the contract lets through must be castable by staging's
``value::jsonb``: the last test checks that on a real PostgreSQL.
"""

from __future__ import annotations

import psycopg
import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_NOT_AVAILABLE, Message

from loaders.core.control import Reject
from loaders.kafka.checks import (
    Timestamps,
    copy_escape,
    copy_line,
    copy_lines,
    key_problem,
    value_problem,
)
from loaders.kafka.client import Reset

TS = (TIMESTAMP_CREATE_TIME, 1_790_000_000_123)  # 2026-09-21 14:13:20.123 UTC


def message(value: bytes | None, key: bytes | None = b"a@example.com", ts=TS) -> Message:
    return Message(topic="t", partition=2, offset=41, key=key, value=value, timestamp=ts)


def line(value: bytes | None, key: bytes | None = b"a@example.com", ts=TS) -> bytes | Reject:
    return copy_line(message(value, key, ts), b"t\t", Timestamps())


GOOD = b'{"email": "a@example.com", "first_name": "Anna"}'

REFUSED = [  # value, the start of the reason
    (None, "tombstone"),
    (b'{"email": "a\xff@example.com"}', "value is not valid UTF-8"),
    (b'{"email": "\xed\xa0\x80@x"}', "value is not valid UTF-8"),  # an encoded surrogate
    (b"", "value is not valid JSON"),
    (b"not json", "value is not valid JSON"),
    (b'{"email": "a@example.com"', "value is not valid JSON"),
    (b'{"email": "a@example.com"} {}', "value is not valid JSON"),
    (b'{"email": NaN}', "value is not valid JSON"),
    (b'{"email": "a@x", "n": 1e400}', "value is not valid JSON"),  # beyond a double
    (b'{"email": "\\ud800@x"}', "value is not valid JSON"),  # a lone surrogate escape
    (b'{"email": "x\x00"}', "value is not valid JSON"),  # a raw NUL byte
    (b"\xef\xbb\xbf" + GOOD, "value is not valid JSON"),  # a byte order mark
    (b"[" * 2000 + b"]" * 2000, "value is not valid JSON"),  # deeper than jsonb should go
    (b'[{"email": "a@example.com"}]', "value is a JSON array, not an object"),
    (b'"a@example.com"', "value is a JSON string, not an object"),
    (b"42", "value is a JSON number, not an object"),
    (b"null", "value is a JSON null, not an object"),
    (b'{"first_name": "Anna"}', "no email"),
    (b'{"email": null}', "email is a JSON null, not a string"),
    (b'{"email": 7}', "email is a JSON number, not a string"),
    (b'{"email": ["a@x"]}', "email is a JSON array, not a string"),
    (b'{"email": ""}', "email is empty"),
    (b'{"email": " \\t "}', "email is empty"),
    (b'{"email": "a@x", "email": ""}', "email is empty"),  # the last duplicate is what jsonb keeps
    (b'{"email": "a@x", "note": "\\u0000"}', "value contains \\u0000"),
    (b'{"email": "a@x", "note": "ab\\\\\\u0000"}', "value contains \\u0000"),  # \\ then \u0000
]


@pytest.mark.parametrize(("value", "reason"), REFUSED)
def test_each_malformed_value_is_refused_with_its_reason(value, reason) -> None:
    assert value_problem(value).startswith(reason)
    refused = line(value)
    assert isinstance(refused, Reject)
    assert refused.reason.startswith(reason)
    assert refused.record_id == "t/2/41"
    assert refused.record_version == "2026-09-21 14:13:20.123+00"


LANDED = [
    GOOD,
    b'{"email": "a@x", "note": "a literal \\\\u0000 is text"}',  # an escaped backslash
    b'{"email": "a@x", "smile": "\\ud83d\\ude00", "raw": "\xf0\x9f\x98\x80"}',
    b'{\n\t"email": "a@x",\r\n "n": 1}\n',  # whitespace COPY must escape
    b'{"email": "a@x", "path": "C:\\\\temp\\\\new", "q": "say \\"hi\\""}',
    b'{"email": "a@x", "n": 123456789012345678901234567890, "f": -0.0, "e": 1e300}',
    b'{"email": "", "email": "a@x"}',  # duplicate keys: jsonb keeps the last, as orjson does
    b'{"email": "a@x", "registration_date": "2026-02-30", "loyalty_status": "diamond"}',
    b'{"email": "a@x", "phone": 79001234567, "first_name": null, "extra": {"a": [1]}}',
    b'{"email": "a@x", "ctl": "\\u0001\\u001f\\u007f"}',
    b'{"email": "a@x", "big": "' + b"x" * 500_000 + b'"}',
]


@pytest.mark.parametrize("value", LANDED, ids=range(len(LANDED)))
def test_odd_but_valid_values_land_byte_for_byte(value) -> None:
    """Types and values are staging's business; only the COPY escaping touches the bytes."""
    assert value_problem(value) is None
    got = line(value)
    assert isinstance(got, bytes)
    fields = got.split(b"\t")  # the batch adds its id and the newline
    assert fields[:4] == [b"t", b"2", b"41", b"a@example.com"]
    assert fields[4] == copy_escape(value)
    assert fields[5:] == [b"2026-09-21 14:13:20.123+00"]


def test_keys_land_as_text_or_refuse_the_message() -> None:
    assert line(GOOD, key=None).split(b"\t")[3] == b"\\N"
    assert line(GOOD, key=b"tab\there\\").split(b"\t")[3] == b"tab\\there\\\\"
    assert key_problem("é@example.com".encode()) is None
    assert key_problem(b"a\x00b").startswith("key contains a NUL byte")
    assert key_problem(b"\xff").startswith("key is not valid UTF-8")
    refused = line(GOOD, key=b"\xfe\xff")
    assert isinstance(refused, Reject) and refused.payload == GOOD.decode()


def test_a_tombstone_keeps_its_key_in_the_reject() -> None:
    refused = line(None, key=b"gone@example.com")
    assert isinstance(refused, Reject)
    assert refused.payload == "key: gone@example.com"


def test_an_undecodable_value_is_kept_escaped_in_the_reject() -> None:
    refused = line(b'{"email": "a\xff"}')
    assert isinstance(refused, Reject)
    assert refused.payload == '{"email": "a\\xff"}'


def test_timestamps() -> None:
    stamps = Timestamps()
    assert stamps((TIMESTAMP_CREATE_TIME, 0)) == b"1970-01-01 00:00:00.000+00"
    assert stamps((TIMESTAMP_CREATE_TIME, 999)) == b"1970-01-01 00:00:00.999+00"
    assert stamps((TIMESTAMP_CREATE_TIME, -1)) == b"1969-12-31 23:59:59.999+00"
    assert stamps((TIMESTAMP_NOT_AVAILABLE, -1)) == b"\\N"
    assert stamps((TIMESTAMP_CREATE_TIME, 2**62)) == b"\\N"  # beyond year 9999: null, not a crash
    assert stamps.iso((TIMESTAMP_NOT_AVAILABLE, -1)) == "no timestamp"
    refused = line(None, ts=(TIMESTAMP_NOT_AVAILABLE, -1))
    assert isinstance(refused, Reject) and refused.record_version == "no timestamp"


def test_copy_escape() -> None:
    assert copy_escape(b"plain") == b"plain"
    assert copy_escape(b"a\\b\tc\nd\re") == b"a\\\\b\\tc\\nd\\re"


def test_reset_notes_say_what_happened() -> None:
    retention = Reset(0, stored=100, high_watermark=None, restarted_at=250)
    assert "150 unread message(s) are lost" in retention.note("t")
    assert "earliest available offset (offset 250)" in retention.note("t")
    emptied = Reset(1, stored=100, high_watermark=5, restarted_at=0)
    note = emptied.note("t")
    assert "stored offset 100 is beyond the end of the log (5)" in note
    assert "read again from offset 0" in note and "may be lost" in note


def test_every_line_that_passes_the_checks_is_castable_to_jsonb(warehouse) -> None:
    """The promise staging relies on: value::jsonb never fails for a landed row."""
    with psycopg.connect(warehouse) as conn:
        conn.execute("create table t (v text)")
        with conn.cursor() as cur, cur.copy("copy t (v) from stdin") as copy:
            for value in LANDED:
                copy.write(copy_escape(value) + b"\n")
        rows = conn.execute("select v, v::jsonb ->> 'email' from t").fetchall()
    assert [r[0].encode() for r in rows] == LANDED
    assert all(r[1] is not None for r in rows)
    for value, _ in REFUSED:  # and the values refused as jsonb-unsafe are indeed unsafe
        if value is not None and b"\\u0000" in value:
            with psycopg.connect(warehouse) as conn, pytest.raises(psycopg.errors.DataError):
                conn.execute("select %s::jsonb", (value.decode(),))


KEYS = [None, b"a@x", b"tab\tkey", b"back\\slash", "é@x".encode(), b"n\x00l", b"\xff"]
STAMPS = [TS, (TIMESTAMP_NOT_AVAILABLE, -1), (TIMESTAMP_CREATE_TIME, 2**62)]


def test_the_fast_path_for_a_chunk_gives_exactly_what_copy_line_gives() -> None:
    """``copy_lines`` inlines the common case; it must never differ from ``copy_line``."""
    messages = [
        message(value, key, ts)
        for value in [v for v, _ in REFUSED] + LANDED
        for key in KEYS
        for ts in STAMPS
    ]
    stamps = Timestamps()
    stamps(TS)  # the second of TS is formatted: its messages take the fast path
    expected = [copy_line(m, b"t\t", Timestamps()) for m in messages]
    lines, refused = copy_lines(messages, b"t\t", stamps)
    assert lines == [e for e in expected if isinstance(e, bytes)]
    assert refused == [e for e in expected if isinstance(e, Reject)]
    assert len(lines) == len(LANDED) * 5 * len(STAMPS)  # 5 of the keys can land
