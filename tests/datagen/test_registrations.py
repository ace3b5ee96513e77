"""The registrations stream (Kafka ``new_users_events``) and the ``datagen oltp`` command."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from datagen.__main__ import main
from datagen.oltp_db import late_users, play_day
from datagen.population import Population
from datagen.registrations import (
    FIELDS,
    MALFORMED_KINDS,
    KafkaUnavailable,
    count,
    day_messages,
    ensure_topic,
    publish_days,
)
from loaders.kafka.settings import KafkaSettings
from tests.conftest import free_port

START = dt.date(2026, 10, 1)


def day(n: int) -> dt.date:
    return START + dt.timedelta(days=n)


def read_topic(settings: KafkaSettings) -> list[tuple[int, bytes | None, bytes]]:
    """Every (partition, key, value) on the topic, from offset 0 of each partition.

    The embedded broker's watermark answers are wrong for partitions > 0, so
    read until every partition reports its end.
    """
    consumer = Consumer(
        {
            **settings.client_config(),
            "group.id": "test-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        meta = consumer.list_topics(settings.topic, timeout=10).topics[settings.topic]
        partitions = sorted(meta.partitions)
        consumer.assign([TopicPartition(settings.topic, p, 0) for p in partitions])
        ended: set[int] = set()
        records = []
        while len(ended) < len(partitions):
            message = consumer.poll(10)
            assert message is not None, "the topic did not report its end"
            if message.error():
                ended.add(message.partition())
                continue
            records.append((message.partition(), message.key(), message.value()))
        return records
    finally:
        consumer.close()


def parse(value: bytes) -> dict | None:
    """The registration in ``value``, or None if it is not one."""
    try:
        obj = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return obj if isinstance(obj, dict) and "email" in obj else None


def noisy_days(population: Population, n: int = 2) -> list[dt.date]:
    """The first ``n`` days whose stream has both a duplicate and a malformed message."""
    found = []
    for k in range(120):
        sent = count(day_messages(population, day(k)))
        if sent["duplicates"] and sent["malformed"]:
            found.append(day(k))
            if len(found) == n:
                return found
    raise AssertionError("no day with both a duplicate and a malformed message")


# -- what a day sends (no broker) ---------------------------------------------------------
def test_a_day_sends_every_registration_with_spec_fields_only() -> None:
    pop = Population(seed=42, scale=1.0, start_date=START)
    messages = day_messages(pop, day(3))
    assert messages == day_messages(pop, day(3))  # deterministic
    registrations = [m for m in messages if m.kind == "registration"]
    assert [m.email for m in registrations] == sorted(
        (u.email for u in pop.new_users(day(3))),
        key=lambda e: pop.registered_at(next(u for u in pop.new_users(day(3)) if u.email == e)),
    )
    by_email = {u.email: u for u in pop.new_users(day(3))}
    for m in registrations:
        value = json.loads(m.value)
        assert tuple(value) == FIELDS  # exactly SPEC's fields: no user id
        user = by_email[value["email"]]
        assert value == {
            "first_name": user.first_name,
            "last_name": user.last_name,
            "email": user.email,
            "phone": user.phone,
            "registration_date": day(3).isoformat(),
            "loyalty_status": user.loyalty_status,
        }
        assert m.key == user.email.encode()
    assert day_messages(pop, day(-1)) == []


def test_duplicates_and_malformed_messages_come_at_the_stated_rates() -> None:
    pop = Population(seed=42, scale=1.0, start_date=START)
    days = [day_messages(pop, day(k)) for k in range(90)]
    totals = Counter()
    kinds = Counter()
    for k, messages in enumerate(days):
        totals.update(count(messages))
        emails = {u.email for u in pop.new_users(day(k))}
        for m in messages:
            if m.kind == "duplicate":  # the same record again, after the original
                original = next(o for o in messages if o.kind == "registration" and o.key == m.key)
                assert m.value == original.value
                assert messages.index(original) < messages.index(m)
            if m.kind.startswith("malformed:"):
                kinds[m.kind.split(":")[1]] += 1
                assert parse(m.value) is None  # really not a registration
                assert m.key is None or m.key.decode() in emails
    assert totals["registrations"] == 90 * 15
    assert 0.01 <= totals["duplicates"] / totals["registrations"] <= 0.06
    malformed_days = sum(1 for messages in days if count(messages)["malformed"])
    assert 0.2 <= malformed_days / 90 <= 0.5
    assert all(count(messages)["malformed"] <= 1 for messages in days)
    assert set(kinds) == set(MALFORMED_KINDS)


# -- the broker ------------------------------------------------------------------------
def test_ensure_topic_creates_the_topic_once(kafka_topic: str) -> None:
    settings = KafkaSettings.from_env()
    ensure_topic(settings)
    ensure_topic(settings)  # already there: nothing to do
    admin = AdminClient(settings.client_config())
    topics = admin.list_topics(timeout=10).topics
    assert len(topics[kafka_topic].partitions) == 3


def test_unreachable_broker_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("KAFKA_TIMEOUT_SECONDS", "1")
    settings = KafkaSettings.from_env()
    with pytest.raises(KafkaUnavailable) as caught:
        ensure_topic(settings)
    message = str(caught.value)
    assert settings.bootstrap_servers in message and "KAFKA_BOOTSTRAP_SERVERS" in message
    assert "\n" not in message


def test_publish_days_sends_each_day_once_with_its_noise(oltp: str, kafka_topic: str) -> None:
    pop = Population(seed=42, scale=1.0, start_date=START)
    settings = KafkaSettings.from_env()
    days = noisy_days(pop)
    expected = [m for d in days for m in day_messages(pop, d)]
    with psycopg.connect(oltp) as conn:
        sent = publish_days(conn, settings, pop, days)
        assert sent == {"days": 2, **count(expected)}
        records = read_topic(settings)
        # A rerun (or the same days again among others already sent) publishes nothing.
        assert publish_days(conn, settings, pop, days) == {}
        assert publish_days(conn, settings, pop, [days[0]]) == {}
        assert len(read_topic(settings)) == len(records)
        with conn.transaction():
            marked = conn.execute(
                "select day, counts from datagen.days where system = 'kafka' order by day"
            ).fetchall()
    assert [d for d, _ in marked] == days
    assert sum(c["duplicates"] for _, c in marked) == sent["duplicates"]

    # Exactly what was recorded: every record, duplicates and malformed included.
    assert Counter((k, v) for _, k, v in records) == Counter((m.key, m.value) for m in expected)
    emails = {u.email for d in days for u in pop.new_users(d)}
    assert {parse(v)["email"] for _, _, v in records if parse(v)} == emails
    malformed = [v for _, _, v in records if parse(v) is None]
    assert len(malformed) == sent["malformed"] == 2
    per_email = Counter(parse(v)["email"] for _, _, v in records if parse(v))
    assert sum(n - 1 for n in per_email.values()) == sent["duplicates"] >= 2
    # Keys are the emails (UTF-8), and one key's records share one partition.
    assert {k.decode() for _, k, _ in records if k is not None} <= emails
    partitions: dict[bytes, set[int]] = {}
    for partition, key, _ in records:
        if key is not None:
            partitions.setdefault(key, set()).add(partition)
    assert all(len(p) == 1 for p in partitions.values())
    assert len({p for p, _, _ in records}) > 1  # spread over the topic's partitions


def test_the_stream_is_ahead_of_the_oltp_row(oltp: str, kafka_topic: str) -> None:
    pop = Population(seed=7, scale=0.05, start_date=START)
    settings = KafkaSettings.from_env()
    late = {u.email for u in late_users(pop, day(0))}
    assert late

    def oltp_emails(conn: psycopg.Connection) -> set[str]:
        with conn.transaction():
            return {r[0] for r in conn.execute("select email from users").fetchall()}

    with psycopg.connect(oltp) as conn:
        play_day(conn, pop, day(0), history_days=1)
        publish_days(conn, settings, pop, [day(0)])
        streamed = {parse(v)["email"] for _, _, v in read_topic(settings) if parse(v)}
        assert late <= streamed
        assert not late & oltp_emails(conn)
        play_day(conn, pop, day(1), history_days=1)
        assert late <= oltp_emails(conn)


# -- the command line ----------------------------------------------------------------------
def test_datagen_oltp_command(
    oltp: str, kafka_topic: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("DATAGEN_SCALE", "0.05")
    monkeypatch.setenv("DATAGEN_SEED", "7")
    monkeypatch.setenv("DATAGEN_START_DATE", START.isoformat())
    monkeypatch.setenv("DATAGEN_HISTORY_DAYS", "2")
    monkeypatch.setenv("EMBEDDED_SERVICES", "none")
    assert main(["oltp"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("datagen oltp initial: ")
    assert [line.split(":")[0] for line in out[1:]] == [
        f"datagen oltp {day(0)}",
        f"datagen oltp {day(1)}",
    ]
    assert all(f"kafka {kafka_topic}: 2 registrations" in line for line in out[1:])

    assert main(["oltp"]) == 0  # the next day
    assert capsys.readouterr().out.startswith(f"datagen oltp {day(2)}: ")
    assert main(["oltp", "--date", day(1).isoformat()]) == 0
    assert "already written" in capsys.readouterr().out

    # Kafka down: the day is written, the error is one line; the next run catches up.
    good = KafkaSettings.from_env().bootstrap_servers
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("KAFKA_TIMEOUT_SECONDS", "1")
    assert main(["oltp"]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert "KAFKA_BOOTSTRAP_SERVERS" in captured.err
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", good)
    assert main(["oltp"]) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"datagen oltp {day(4)}: ") and "4 registrations" in line

    # PostgreSQL down: one line naming the database.
    monkeypatch.setenv("OLTP_PORT", str(free_port()))
    assert main(["oltp"]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert "OLTP database" in captured.err and "OLTP_HOST" in captured.err
