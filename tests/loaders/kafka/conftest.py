"""Helpers for the Kafka loader's tests: a created topic, a producer, what landed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

import psycopg
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from loaders.kafka.client import LIBRDKAFKA_LOG

PARTITIONS = 3
# (partition, key, value[, timestamp ms]); None key or value is a null on the wire
Item = tuple


def create_topic(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": LIBRDKAFKA_LOG})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result(timeout=10)


def produce(bootstrap: str, topic: str, items: Iterable[Item]) -> None:
    """Write ``items`` with confluent-kafka's Producer, each to its given partition."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "logger": LIBRDKAFKA_LOG})
    for item in items:
        partition, key, value, *ts = item
        kwargs = {"timestamp": ts[0]} if ts else {}
        while True:
            try:
                producer.produce(topic, value=value, key=key, partition=partition, **kwargs)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(15) == 0, "the broker did not take every message"


def registration(i: int, **fields) -> bytes:
    """A new-user event with the specified fields, as JSON bytes."""
    body = {
        "first_name": f"Name{i}",
        "last_name": f"Surname{i}",
        "email": f"user{i}@example.com",
        "phone": f"+7 900 000 {i:04d}",
        "registration_date": "2026-10-01",
        "loyalty_status": "bronze",
        **fields,
    }
    return json.dumps(body).encode()


def registrations(n: int, start: int = 0) -> list[Item]:
    """``n`` good events spread over the partitions, keyed by email."""
    return [
        (i % PARTITIONS, f"user{i}@example.com".encode(), registration(i))
        for i in range(start, start + n)
    ]


def raw_rows(conninfo: str) -> list[tuple]:
    """What landed, without per-run metadata: (topic, partition, offset, key, value, ts)."""
    with psycopg.connect(conninfo) as conn:
        return conn.execute(
            'select topic, partition, "offset", key, value, message_timestamp'
            ' from raw_kafka.new_users_events order by topic, partition, "offset", _batch_id'
        ).fetchall()


def rejects(conninfo: str) -> dict[str, str]:
    with psycopg.connect(conninfo) as conn:
        return dict(conn.execute("select record_id, reason from loader.rejects").fetchall())


def scalar(conninfo: str, query: str, *params):
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(query, params).fetchone()
    return row[0] if row else None


@pytest.fixture
def topic(kafka_server, kafka_topic: str) -> str:
    """A fresh topic with 3 partitions on the session's broker; KAFKA_* point at it."""
    create_topic(kafka_server.bootstrap_servers, kafka_topic)
    return kafka_topic


@pytest.fixture
def send(kafka_server, topic: str) -> Callable[[Iterable[Item]], None]:
    """Produce items to the test's topic."""
    return lambda items: produce(kafka_server.bootstrap_servers, topic, items)
