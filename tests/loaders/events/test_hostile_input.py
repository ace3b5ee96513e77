"""Hostile source tables: text that must survive the TSV -> COPY round trip lands intact, rows
the warehouse refuses (NUL, bytes that are not UTF-8, out of range, an action outside the
table's rule) are rejected with the
reason, every other row lands; a table that breaks the contract stops with one line."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from loaders.core.warehouse import LoaderError
from loaders.events import landing
from loaders.events.client import stream_error
from loaders.events.job import load_table_day
from tests.loaders.events.helpers import day, raw_rows, rejects, scalar

FEED_COLUMNS = (
    "user_id", "post_id", "action", "time", "gender", "age", "country", "city", "os", "source",
    "exp_group",
)  # fmt: skip
# Nullable and wider types than the simulator's: a real ClickHouse may have them.
HOSTILE_DDL = """
CREATE TABLE feed_actions
(
    user_id Nullable(UInt32), post_id UInt64, action Nullable(String), time DateTime('UTC'),
    gender LowCardinality(Nullable(String)), age Nullable(UInt8), country String, city String,
    os String, source Nullable(String), exp_group Int16, extra String DEFAULT 'not landed'
)
ENGINE = MergeTree PARTITION BY toDate(time) ORDER BY time
"""
# Values a COPY text round trip must keep.
HOSTILE_TEXT = (
    "tab\there",
    "new\nline\r\n",
    "back\\slash \\N \\0 \\x00 \\.",
    "\\N",
    "\\.",
    "",
    "quote ' \" ; `",
    "Zoë Ñandú 東京 🛒",
    "ctrl \x01\x07\x08\x0b\x0c\x1b\x7f",
)
T = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)


def good_rows(n: int) -> list[list]:
    rows = []
    for i in range(n):
        text = HOSTILE_TEXT[i % len(HOSTILE_TEXT)]
        rows.append([
            None if i % 7 == 0 else i, i, None if i % 5 == 0 else ("view", "like")[i % 2],
            T + dt.timedelta(seconds=i * 60), None if i % 3 == 0 else "female",
            None if i % 4 == 0 else 30, text, "city " + text, "iOS", None, -i % 5,
        ])  # fmt: skip
    return rows


def landed(rows: list[list]) -> Counter:
    return Counter(tuple(r) for r in rows)


def test_bad_rows_are_rejected_with_the_reason_and_the_rest_land_intact(
    ch, warehouse, monkeypatch
) -> None:
    monkeypatch.setattr(landing, "FALLBACK_LINES", 64)  # the fallback's chunks, several of them
    ch.command(HOSTILE_DDL)
    good = good_rows(300)
    ch.insert("feed_actions", good, column_names=list(FEED_COLUMNS))
    # A NUL, bytes that are not UTF-8, a UInt64 beyond bigint, an unknown action: the
    # warehouse refuses them.
    ch.command(
        f"INSERT INTO feed_actions ({', '.join(FEED_COLUMNS)}) VALUES"
        " (1, 1, 'view', '2026-10-01 01:00:00', 'male', 20, 'a\\0nul', 'c', 'iOS', 'ads', 1),"
        " (2, 2, 'view', '2026-10-01 02:00:00', 'male', 20, concat(unhex('FFFE'), ' bytes'),"
        "  'c', 'iOS', 'ads', 1),"
        " (3, 9223372036854775808, 'view', '2026-10-01 03:00:00', 'male', 20, 'r', 'c', 'iOS',"
        "  'ads', 1),"
        # an action outside the table's rule (the raw table's check constraint)
        " (4, 4, 'share', '2026-10-01 04:00:00', 'male', 20, 's', 'c', 'iOS', 'ads', 1)"
    )
    # The next day's first second and the previous day's last: not this day's.
    edge = [[9, 9, "like", T + dt.timedelta(days=1), "m", 1, "x", "x", "x", "x", 0],
            [9, 9, "like", T - dt.timedelta(seconds=1), "m", 1, "x", "x", "x", "x", 0]]  # fmt: skip
    ch.insert("feed_actions", edge, column_names=list(FEED_COLUMNS))

    for _ in range(2):  # a rerun: the same rows and the same rejects, none twice
        r = load_table_day("feed_actions", day(0))
        assert (r.landed, r.rejected) == (300, 4), r.notes
        assert raw_rows(warehouse, "feed_actions", day(0)) == landed(good)
        found = rejects(warehouse, "feed_actions")
        assert len(found) == 4
        assert {version for version, _, _ in found.values()} == {str(day(0))}
        assert all(rid.startswith(f"feed_actions:{day(0)}:") for rid in found)
        reasons = sorted(reason for _, reason, _ in found.values())
        assert reasons == [
            'refused by PostgreSQL: invalid byte sequence for encoding "UTF8": 0x00',
            'refused by PostgreSQL: invalid byte sequence for encoding "UTF8": 0xff',
            'refused by PostgreSQL: new row for relation "feed_actions" violates check'
            ' constraint "feed_actions_action_known"',
            'refused by PostgreSQL: value "9223372036854775808" is out of range for type bigint',
        ]
        payloads = {payload.split("\t")[6] for _, _, payload in found.values()}
        assert payloads == {"a\\0nul", "\\xff\\xfe bytes", "r", "s"}  # the line, readable
    assert r.notes == [
        f"feed_actions {day(0)}: 4 row(s) rejected (in loader.rejects), e.g. refused by "
        'PostgreSQL: invalid byte sequence for encoding "UTF8": 0x00'
    ]
    assert scalar(warehouse, "select count(*) from raw_events.feed_actions where source is null")
    # The previous day's last second landed as that day's (its lookback), the next day's not.
    assert raw_rows(warehouse, "feed_actions", day(-1)) == landed(edge[1:])
    assert raw_rows(warehouse, "feed_actions", day(1)) == landed([])

    # The source fixes its rows: the reload clears the day's rejects.
    ch.command(f"ALTER TABLE feed_actions DROP PARTITION '{day(0)}'")
    ch.insert("feed_actions", good, column_names=list(FEED_COLUMNS))
    r = load_table_day("feed_actions", day(0))
    assert (r.landed, r.rejected) == (300, 0) and rejects(warehouse, "feed_actions") == {}
    assert raw_rows(warehouse, "feed_actions", day(0)) == landed(good)


def test_a_missing_table_or_column_is_one_line(ch, warehouse) -> None:
    ch.command(HOSTILE_DDL.replace("os String,", "").replace("source Nullable(String),", ""))
    with pytest.raises(LoaderError) as caught:
        load_table_day("feed_actions", day(0))
    message = str(caught.value)
    assert message.startswith("ClickHouse at http://") and "\n" not in message
    assert "table feed_actions lacks column(s) os, source, which the loader lands" in message
    with pytest.raises(LoaderError, match="has no table message_actions, which the loader lands"):
        load_table_day("message_actions", day(0))
    assert scalar(warehouse, "select count(*) from raw_events.feed_actions") == 0


def test_a_column_of_the_wrong_type_is_one_line(ch, warehouse) -> None:
    ddl = HOSTILE_DDL.replace("time DateTime('UTC')", "time String")
    ch.command(ddl.replace("toDate(time)", "tuple()"))
    with pytest.raises(LoaderError, match=r"feed_actions\.time is String, but the loader lands a"):
        load_table_day("feed_actions", day(0))


@pytest.mark.parametrize(
    ("tail", "tag", "expected"),
    [
        (b"1\t2\n", None, None),
        (b"1\t2\nCode: 241. DB::Exception: Memory limit exceeded. (MEMORY_LIMIT_EXCEEDED) "
         b"(version 24.8.1)\n", None, "code 241: Memory limit exceeded. (MEMORY_LIMIT_EXCEEDED)"),
        (b"1\t2\n3\t__exception__\r\nab12\r\nCode: 241. DB::Exception: Memory limit exceeded. "
         b"(version 25.8.1)\r\n77 ab12\r\n__exception__\r\n", "ab12",
         "code 241: Memory limit exceeded."),
        (b"1\tCode: 1. DB::Exception: looks like one, but the tag says no\n", "ab12", None),
        (b"1\tCode: 1. DB::Exception: a value, not an error\n", None, None),
    ],
)  # fmt: skip
def test_an_error_written_into_the_stream_is_found(tail, tag, expected) -> None:
    assert stream_error(tail, tag) == expected


@pytest.mark.parametrize("size", [1, 2, 5, 1000])
def test_the_fallback_splits_any_chunks_into_whole_lines(size) -> None:
    text = b"1\ta\\tb\n2\t\\N\n3\tc\n\n4\tlast, no newline"
    chunks = (text[i : i + size] for i in range(0, len(text), size))
    assert list(landing._lines(chunks)) == [
        b"1\ta\\tb\n",
        b"2\t\\N\n",
        b"3\tc\n",
        b"\n",
        b"4\tlast, no newline\n",
    ]
