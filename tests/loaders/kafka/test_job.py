"""The Kafka loader against the embedded broker (tansu) and PostgreSQL: what lands, once."""

from __future__ import annotations

import datetime as dt
import json

import psycopg
import pytest

from loaders.core.warehouse import LoaderError
from loaders.kafka import landing
from loaders.kafka.job import STREAMS, load_topic, print_progress, reset_topic
from tests.loaders.kafka.conftest import (
    PARTITIONS,
    raw_rows,
    registration,
    registrations,
    rejects,
    scalar,
)


def landed_values(conninfo: str) -> dict[tuple[int, int], bytes]:
    return {(r[1], r[2]): r[4].encode() for r in raw_rows(conninfo)}


def produced(items) -> dict[tuple[int, int], bytes]:
    """(partition, offset) -> value of items produced to a fresh topic, in order."""
    next_offset = [0] * PARTITIONS
    out = {}
    for partition, _, value, *_ in items:
        out[(partition, next_offset[partition])] = value
        next_offset[partition] += 1
    return out


def watermark(conninfo: str, topic: str) -> dict:
    return scalar(
        conninfo,
        "select value from loader.watermarks where source = 'kafka' and stream = %s",
        topic,
    )


def test_streams_name_the_specified_topic() -> None:
    assert STREAMS == ("new_users_events",)


def test_first_load_lands_every_message_as_received(warehouse, topic, send, capsys) -> None:
    ts = int(dt.datetime(2026, 10, 1, 9, 30, tzinfo=dt.UTC).timestamp() * 1000)
    items = [(p, k, v, ts + i) for i, (p, k, v) in enumerate(registrations(600))]
    send(items)
    result = load_topic(batch_size=250, progress=print_progress)
    assert (result.landed, result.rejected) == (600, 0)
    assert result.batches >= 3  # 600 messages in batches of at most 250
    assert result.offsets == {0: 200, 1: 200, 2: 200}
    assert result.lag == {0: 0, 1: 0, 2: 0}
    assert result.notes == []
    rows = raw_rows(warehouse)
    assert {(r[1], r[2]): r[4].encode() for r in rows} == produced(items)
    assert {r[0] for r in rows} == {topic}
    by_offset = {(r[1], r[2]): r for r in rows}
    for i, (p, key, _, stamp) in enumerate(items):
        row = by_offset[(p, i // PARTITIONS)]
        assert row[3] == key.decode()
        assert row[5] == dt.datetime.fromtimestamp(stamp / 1000, dt.UTC)
    assert watermark(warehouse, topic)["offsets"] == {"0": 200, "1": 200, "2": 200}
    assert "kafka." + topic in capsys.readouterr().err  # progress lines, on stderr
    # Staging casts value::jsonb: every landed value must survive it.
    assert (
        scalar(
            warehouse,
            "select count(*) from raw_kafka.new_users_events"
            " where (value::jsonb ->> 'email') <> ''",
        )
        == 600
    )


def test_a_second_run_lands_nothing_and_a_third_only_what_is_new(warehouse, topic, send) -> None:
    send(registrations(90))
    assert load_topic().landed == 90
    again = load_topic()
    assert (again.landed, again.rejected, again.batches) == (0, 0, 0)
    send(registrations(31, start=90))
    more = load_topic(batch_size=10)
    assert (more.landed, more.batches) == (31, 4)
    assert more.offsets == {0: 41, 1: 40, 2: 40}
    rows = raw_rows(warehouse)
    assert len(rows) == 121
    assert len({(r[1], r[2]) for r in rows}) == 121  # nothing landed twice
    assert {json.loads(r[4])["email"] for r in rows} == {f"user{i}@example.com" for i in range(121)}


def test_re_delivered_duplicates_land_as_rows_of_their_own(warehouse, topic, send) -> None:
    """Raw keeps what arrived: the same registration sent twice is two messages."""
    event = registration(7)
    send([(0, b"user7@example.com", event), (0, b"user7@example.com", event), (1, None, event)])
    result = load_topic()
    assert result.landed == 3
    rows = raw_rows(warehouse)
    assert [(r[1], r[2], r[4].encode()) for r in rows] == [
        (0, 0, event),
        (0, 1, event),
        (1, 0, event),
    ]
    assert rows[2][3] is None  # a null key lands as null


MALFORMED = {  # value -> the start of its reason in loader.rejects
    b'{"email": "bad\xff@example.com"}': "value is not valid UTF-8",
    b"{not json": "value is not valid JSON",
    b'[{"email": "a@example.com"}]': "value is a JSON array, not an object",
    b'{"first_name": "No", "last_name": "Email"}': "no email",
    b'{"email": ""}': "email is empty",
    b'{"email": "x@example.com", "note": "\\u0000"}': "value contains \\u0000",
    b'{"email": "\\udfff@example.com"}': "value is not valid JSON",  # a lone surrogate
    None: "tombstone",
}


def test_malformed_messages_are_rejected_with_their_reason_and_the_rest_lands(
    warehouse, topic, send
) -> None:
    items = []
    for i, value in enumerate(MALFORMED):
        items.append((0, b"good%d" % i, registration(i)))  # a good message around each bad one
        items.append((0, b"bad%d" % i, value))
    items.append((0, b"last", registration(99)))
    items.append((1, b"\xff\xfe", registration(100)))  # a key that is not text
    send(items)
    result = load_topic(batch_size=5)
    assert (result.landed, result.rejected) == (len(MALFORMED) + 1, len(MALFORMED) + 1)
    assert result.offsets == {0: len(items) - 1, 1: 1, 2: 0}  # refused offsets still advance
    assert sorted(landed_values(warehouse)) == [(0, 2 * i) for i in range(len(MALFORMED) + 1)]
    reasons = rejects(warehouse)
    for i, (value, reason) in enumerate(MALFORMED.items()):
        assert reasons[f"{topic}/0/{2 * i + 1}"].startswith(reason), value
    assert reasons[f"{topic}/1/0"].startswith("key is not valid UTF-8")
    with psycopg.connect(warehouse) as conn:
        payloads = dict(conn.execute("select record_id, payload from loader.rejects").fetchall())
        batches = conn.execute(
            "select sum(rows_landed), sum(rows_rejected) from loader.batches"
        ).fetchone()
    assert payloads[f"{topic}/0/1"] == '{"email": "bad\\xff@example.com"}'  # kept, escaped
    assert payloads[f"{topic}/0/11"] == '{"email": "x@example.com", "note": "\\u0000"}'
    assert payloads[f"{topic}/0/15"] == "key: bad7"  # the tombstone's key
    assert batches == (result.landed, result.rejected)
    again = load_topic()
    assert (again.landed, again.rejected) == (0, 0)  # nothing re-read, nothing re-rejected
    assert len(rejects(warehouse)) == len(MALFORMED) + 1


def test_max_messages_stops_early_and_reports_the_lag(warehouse, topic, send) -> None:
    send(registrations(300))
    first = load_topic(max_messages=120, batch_size=50)
    assert first.landed == 120
    assert sum(first.lag.values()) == 180
    assert first.lag == {p: 100 - first.offsets.get(p, 0) for p in range(PARTITIONS)}
    rest = load_topic()
    assert (rest.landed, rest.lag) == (180, {0: 0, 1: 0, 2: 0})
    assert len(raw_rows(warehouse)) == 300


def test_a_missing_topic_is_a_note_and_a_clean_return(warehouse, kafka_topic) -> None:
    result = load_topic()
    assert (result.landed, result.batches) == (0, 0)
    assert result.notes == [f"topic {kafka_topic} does not exist yet: nothing to load"]
    # Every raw table exists anyway, so dbt's sources resolve.
    assert scalar(warehouse, "select count(*) from raw_kafka.new_users_events") == 0


def test_an_empty_topic_records_where_each_partition_starts(warehouse, topic, send) -> None:
    first = load_topic()
    assert (first.landed, first.offsets) == (0, {0: 0, 1: 0, 2: 0})
    assert load_topic().batches == 0  # and says nothing more the next time
    send(registrations(3))
    assert load_topic().landed == 3


def test_a_crash_inside_a_batch_rolls_it_back_whole(warehouse, topic, send, monkeypatch) -> None:
    send(registrations(100))
    real_close = landing.close_batch
    calls = {"n": 0}

    def crash_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash after COPY, before commit")
        return real_close(*args, **kwargs)

    monkeypatch.setattr(landing, "close_batch", crash_on_third)
    with pytest.raises(RuntimeError, match="simulated crash"):
        load_topic(batch_size=20)
    assert len(raw_rows(warehouse)) == 40  # two committed batches, not three
    assert sum(watermark(warehouse, topic)["offsets"].values()) == 40
    monkeypatch.setattr(landing, "close_batch", real_close)
    assert load_topic(batch_size=20).landed == 60
    rows = raw_rows(warehouse)
    assert len(rows) == 100 == len({(r[1], r[2]) for r in rows})


def test_a_row_postgres_refuses_is_isolated_and_the_rest_lands(
    warehouse, topic, send, monkeypatch
) -> None:
    """If the checks ever miss something, the streamed COPY falls back to bisecting."""
    from loaders.kafka import checks

    monkeypatch.setattr(checks, "value_problem", lambda value: None)  # checks switched off
    items = registrations(20)
    items[7] = (items[7][0], b"nul", b'{"email": "a\x00@example.com"}')  # text cannot hold NUL
    send(items)
    result = load_topic(batch_size=8)
    assert (result.landed, result.rejected) == (19, 1)
    [(record_id, reason)] = rejects(warehouse).items()
    assert record_id == f"{topic}/{items[7][0]}/2"
    assert reason.startswith("refused by PostgreSQL")
    assert len(raw_rows(warehouse)) == 19


def test_a_concurrent_load_of_the_topic_is_refused(warehouse, topic) -> None:
    with psycopg.connect(warehouse) as holder:
        holder.execute("select pg_advisory_lock(hashtext(%s))", (f"kafka.{topic}",))
        with pytest.raises(LoaderError, match=rf"another load of kafka\.{topic} is running"):
            load_topic()


def test_reset_forgets_rows_rejects_and_offsets(warehouse, topic, send) -> None:
    send([*registrations(10), (0, b"bad", b"[]")])
    first = load_topic()
    assert (first.landed, first.rejected) == (10, 1)
    reset_topic()
    assert raw_rows(warehouse) == [] and rejects(warehouse) == {}
    assert watermark(warehouse, topic) is None
    again = load_topic()
    assert (again.landed, again.rejected) == (10, 1)
