"""Kafka loader throughput as a ratio to a bare confluent-kafka consume loop.

``python -m tests.bench.kafka_bench`` starts its own throwaway PostgreSQL and
Kafka broker (tansu) on free ports, produces BENCH_KAFKA_MESSAGES registrations
(about 190 bytes each, keyed by email) over 3 partitions, then times, in
interleaved rounds:

- a bare loop: an assign-only consumer with the loader's own consumer settings
  reads every partition from offset 0 to EOF and only counts the messages;
- the loader: ``load_topic()`` from a clean warehouse (connect, checks, COPY,
  one commit per batch with rejects and offsets);
- for context, the same bare loop with librdkafka's default fetch settings
  (the loader shortens ``fetch.wait.max.ms`` and ``fetch.queue.backoff.ms``,
  which makes reading this broker about twice as fast).

The figure is the ratio of the medians (these machines are shared and noisy).
The broker serves the same messages to each, so the headline ratio is the
cost of landing them on top of reading them the same way.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
import psycopg
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from config import LoaderSettings
from loaders.kafka.client import CONSUMER_CONFIG, LIBRDKAFKA_LOG, POLL_SECONDS
from loaders.kafka.job import load_topic
from loaders.kafka.settings import KafkaSettings
from stack.embedded_kafka import EmbeddedKafka
from stack.embedded_postgres import EmbeddedPostgres
from tests.conftest import free_port

N_MESSAGES = int(os.environ.get("BENCH_KAFKA_MESSAGES", "200000"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
TOPIC = "new_users_events"
PARTITIONS = 3
LOYALTY = ("bronze", "silver", "gold", "platinum")


def registration(i: int) -> tuple[bytes, bytes]:
    email = f"user{i}@example.com"
    value = orjson.dumps(
        {
            "first_name": "Anna",
            "last_name": f"Ivanova-{i}",
            "email": email,
            "phone": f"+7 900 {i % 1000:03d} {i % 100:02d} {i % 97:02d}",
            "registration_date": f"2026-10-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:07Z",
            "loyalty_status": LOYALTY[i % 4],
        }
    )
    return email.encode(), value


def produce(bootstrap: str, n: int) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": LIBRDKAFKA_LOG})
    for future in admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)]).values():
        future.result()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "logger": LIBRDKAFKA_LOG})
    size = 0
    for i in range(n):
        key, value = registration(i)
        size += len(value)
        while True:
            try:
                producer.produce(TOPIC, key=key, value=value, partition=i % PARTITIONS)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(60):
        raise RuntimeError("the broker did not take every message")
    return size


# What a consume loop cannot do without; the rest of CONSUMER_CONFIG is tuning.
DEFAULTS = {key: CONSUMER_CONFIG[key] for key in ("group.id", "enable.partition.eof")}


def time_bare_consume(settings: KafkaSettings, batch_size: int, tuned: bool = True) -> float:
    """Assign every partition at 0 and count messages until each has reported EOF."""
    config = CONSUMER_CONFIG if tuned else DEFAULTS
    consumer = Consumer({**settings.client_config(), **config, "logger": LIBRDKAFKA_LOG})
    started = time.perf_counter()
    consumer.list_topics(TOPIC, timeout=10)
    consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    eof: set[int] = set()
    count = 0
    while len(eof) < PARTITIONS:
        for m in consumer.consume(batch_size, POLL_SECONDS):
            if m.error() is None:
                count += 1
            elif m.error().code() == KafkaError._PARTITION_EOF:
                eof.add(m.partition())
    elapsed = time.perf_counter() - started
    consumer.close()
    assert count == N_MESSAGES, count
    return elapsed


def reset_landing(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("drop schema if exists loader cascade")
        conn.execute("drop schema if exists raw_kafka cascade")


def time_loader(conninfo: str, batch_size: int) -> float:
    reset_landing(conninfo)
    started = time.perf_counter()
    result = load_topic(batch_size=batch_size)
    elapsed = time.perf_counter() - started
    assert (result.landed, result.rejected) == (N_MESSAGES, 0), result
    return elapsed


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as tmp:
        os.chmod(tmp, 0o755)
        pg = EmbeddedPostgres(pgdata=Path(tmp) / "pg" / "data", port=free_port())
        kafka = EmbeddedKafka(state_dir=Path(tmp) / "kafka", port=free_port())
        pg.start()
        kafka.start()
        try:
            return run(pg, kafka)
        finally:
            kafka.stop()
            pg.destroy()


def run(pg: EmbeddedPostgres, kafka: EmbeddedKafka) -> int:
    pg.ensure_database("bench")
    os.environ.update(
        WAREHOUSE_HOST=pg.host, WAREHOUSE_PORT=str(pg.port), WAREHOUSE_USER=pg.superuser,
        WAREHOUSE_PASSWORD="", WAREHOUSE_DB="bench",
        KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap_servers, KAFKA_NEW_USERS_TOPIC=TOPIC,
    )  # fmt: skip
    conninfo = pg.conninfo("bench")
    settings = KafkaSettings.from_env()
    batch_size = LoaderSettings.from_env().batch_size
    print(f"producing {N_MESSAGES:,} messages over {PARTITIONS} partitions ...", flush=True)
    size = produce(kafka.bootstrap_servers, N_MESSAGES)
    print(f"{size / 1e6:.1f} MB of values ({size / N_MESSAGES:.0f} B/message)")

    bare: list[float] = []
    loader: list[float] = []
    plain: list[float] = []
    for rep in range(REPEATS):
        # Alternate which goes first, so neither always gets the warm broker.
        if rep % 2:
            loader.append(time_loader(conninfo, batch_size))
            bare.append(time_bare_consume(settings, batch_size))
        else:
            bare.append(time_bare_consume(settings, batch_size))
            loader.append(time_loader(conninfo, batch_size))
        plain.append(time_bare_consume(settings, batch_size, tuned=False))
        print(
            f"  round {rep + 1}: bare consume {bare[-1]:.2f}s   loader {loader[-1]:.2f}s   "
            f"bare, default fetch settings {plain[-1]:.2f}s",
            flush=True,
        )
    t_bare, t_loader = statistics.median(bare), statistics.median(loader)
    t_plain = statistics.median(plain)
    print()
    print(f"== kafka bench: {N_MESSAGES:,} messages, median of {REPEATS} ==")
    print(
        f"kafka landing   bare consume {t_bare:6.2f}s   loader {t_loader:6.2f}s   "
        f"ratio {t_bare / t_loader:.2f}  ({N_MESSAGES / t_loader:,.0f} msgs/s, batches of "
        f"{batch_size:,}; target >= 0.7)"
    )
    print(
        f"          vs a bare loop with librdkafka's default fetch settings ({t_plain:.2f}s): "
        f"ratio {t_plain / t_loader:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
