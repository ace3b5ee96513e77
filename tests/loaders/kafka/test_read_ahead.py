"""The reader thread: chunks read ahead of the COPY land in the batch they belong to, once.

Chunks are made tiny here, so every batch is several chunks and the reader is
always ahead of the batch being committed.
"""

from __future__ import annotations

import threading

import psycopg
import pytest

from loaders.kafka import job
from loaders.kafka.job import load_topic
from tests.loaders.kafka.conftest import PARTITIONS, raw_rows, registration, registrations, rejects

HOSTILE = [
    b"{not json",
    b'{"email": ""}',
    b"[]",
    None,
    b'{"email": "x@example.com", "note": "\\u0000"}',
    b'{"email": "bad\xff@example.com"}',
]


@pytest.fixture(autouse=True)
def tiny_chunks(monkeypatch):
    monkeypatch.setattr(job, "CHUNK", 3)
    monkeypatch.setattr(job, "AHEAD", 2)


def readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "kafka-reader"]


def batches(conninfo: str) -> list[tuple[int, int, dict]]:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(
            "select rows_landed, rows_rejected, watermark from loader.batches order by batch_id"
        ).fetchall()


def assert_each_watermark_is_its_batchs_end(conninfo: str) -> None:
    """Every batch's offsets are one past the last message landed or refused by then."""
    with psycopg.connect(conninfo) as conn:
        seen = conn.execute(
            'select b.batch_id, r.partition, max(r."offset") + 1 from loader.batches b'
            " join raw_kafka.new_users_events r on r._batch_id <= b.batch_id"
            " group by 1, 2"
        ).fetchall()
        refused = conn.execute(
            "select b.batch_id, split_part(j.record_id, '/', 2)::int,"
            " max(split_part(j.record_id, '/', 3)::bigint) + 1"
            " from loader.batches b join loader.rejects j on j.batch_id <= b.batch_id"
            " group by 1, 2"
        ).fetchall()
        marks = dict(conn.execute("select batch_id, watermark from loader.batches").fetchall())
    ends: dict[int, dict[str, int]] = {}
    for batch_id, partition, end in seen + refused:
        mine = ends.setdefault(batch_id, {})
        mine[str(partition)] = max(mine.get(str(partition), 0), end)
    for batch_id, end in ends.items():
        offsets = marks[batch_id]["offsets"]
        assert {p: offsets[p] for p in end} == end, batch_id


def test_hostile_messages_mid_batch_are_rejected_and_batches_keep_their_size(
    warehouse, topic, send
) -> None:
    items = []
    for i in range(60):
        items.append((i % PARTITIONS, b"k%d" % i, registration(i)))
        if i % 10 == 4:
            items.append((i % PARTITIONS, b"bad%d" % i, HOSTILE[(i // 10) % len(HOSTILE)]))
    send(items)
    result = load_topic(batch_size=7)
    assert (result.landed, result.rejected) == (60, 6)
    sizes = [landed + rejected for landed, rejected, _ in batches(warehouse)]
    assert sizes == [7] * (66 // 7) + [66 % 7]  # chunks never straddle a batch
    assert len(rejects(warehouse)) == 6
    assert sorted(r[4] for r in raw_rows(warehouse)) == sorted(
        registration(i).decode() for i in range(60)
    )
    assert_each_watermark_is_its_batchs_end(warehouse)
    assert readers() == []


def test_a_crash_between_batches_then_a_rerun_lands_each_message_once(
    warehouse, topic, send
) -> None:
    send([*registrations(100), (1, b"bad", b"[]"), *registrations(50, start=100)])

    def crash_after_second(result) -> None:
        if result.batches == 2:
            raise RuntimeError("simulated crash between batches")

    with pytest.raises(RuntimeError, match="between batches"):
        load_topic(batch_size=20, progress=crash_after_second)
    # Two committed batches of 20 messages, whatever was read ahead. The bad message
    # may be among them (the consumer reads the partitions in the order it fetches
    # them), as a reject instead of a row.
    assert len(raw_rows(warehouse)) + len(rejects(warehouse)) == 40
    assert readers() == []  # the reader was stopped, not left behind
    assert_each_watermark_is_its_batchs_end(warehouse)
    rest = load_topic(batch_size=20)
    assert rest.landed + rest.rejected == 111  # every message after the two batches
    rows = raw_rows(warehouse)
    assert len(rows) == 150 == len({(r[1], r[2]) for r in rows})
    assert len(rejects(warehouse)) == 1  # the bad message, once, in whichever run read it
    assert_each_watermark_is_its_batchs_end(warehouse)


def test_a_reader_failure_mid_batch_rolls_that_batch_back(
    warehouse, topic, send, monkeypatch
) -> None:
    send(registrations(90))
    real_encode = job.encode
    calls = {"n": 0}

    def fail_on_ninth(*args):
        calls["n"] += 1
        if calls["n"] == 9:  # chunks of 3, batches of 10: inside the third batch
            raise ValueError("simulated bug while encoding")
        return real_encode(*args)

    monkeypatch.setattr(job, "encode", fail_on_ninth)
    with pytest.raises(ValueError, match="simulated bug"):
        load_topic(batch_size=10)
    assert len(raw_rows(warehouse)) == 20  # the third batch rolled back whole
    assert readers() == []
    monkeypatch.setattr(job, "encode", real_encode)
    assert load_topic(batch_size=10).landed == 70
    assert len({(r[1], r[2]) for r in raw_rows(warehouse)}) == 90


def test_max_messages_with_the_reader_ahead(warehouse, topic, send) -> None:
    send(registrations(100))
    first = load_topic(max_messages=25, batch_size=10)
    assert (first.landed, first.batches) == (25, 3)
    assert sum(first.offsets.values()) == 25
    assert load_topic(batch_size=10).landed == 75
    assert len({(r[1], r[2]) for r in raw_rows(warehouse)}) == 100
