"""Kafka loader throughput as a ratio to a bare consume loop, and to consume-then-``psql \\copy``.

``python -m tests.bench.kafka_bench`` starts its own throwaway PostgreSQL and
Kafka broker (tansu) on free ports, produces BENCH_KAFKA_MESSAGES registrations
(about 190 bytes each, keyed by email) over 3 partitions, then times, in
interleaved rounds (each round in a different order):

- the read floor: an assign-only consumer with the loader's own consumer
  settings reads every partition from offset 0 to EOF and only counts the
  messages;
- consume then ``psql \\copy``: the same loop collects each message as a COPY
  line (topic, partition, offset, key, value as received, timestamp), then
  ``psql`` copies those lines into a table made ``like`` the raw table (same
  columns, defaults and indexes); both steps timed together, one after the
  other. This is what landing costs with no checks, no rejects and no offsets;
- the loader: ``load_topic()`` into the existing, emptied raw table (connect,
  checks, COPY, one commit per batch with rejects and offsets), as every run
  after a warehouse's first finds it;
- for context, the bare loop with librdkafka's default fetch settings (the
  loader shortens ``fetch.wait.max.ms`` and ``fetch.queue.backoff.ms``, which
  makes reading this broker about twice as fast).

Each figure is a ratio of the medians (these machines are shared and noisy),
baseline time / loader time, kept with ``tests.bench.summary.record``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import psycopg
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from psycopg import sql

from config import LoaderSettings
from loaders.kafka.checks import Timestamps
from loaders.kafka.client import CONSUMER_CONFIG, LIBRDKAFKA_LOG, POLL_SECONDS
from loaders.kafka.job import load_topic
from loaders.kafka.landing import RAW_COLUMNS, RAW_TABLE
from loaders.kafka.settings import KafkaSettings
from loaders.raw_tables import ensure_all_raw_tables
from stack.embedded_kafka import EmbeddedKafka
from stack.embedded_postgres import EmbeddedPostgres, psql_path
from tests.bench.summary import record
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


BASELINE = f"{RAW_TABLE.schema}.baseline_{RAW_TABLE.name}"


def consume_then_copy(
    settings: KafkaSettings, batch_size: int, conninfo: str
) -> tuple[float, float]:
    """The same consume loop collecting COPY lines, then ``psql \\copy`` of them, timed together.

    No checks and no escaping (the bench's values need none); the batch id is
    a constant, the timestamp formatted as the loader does (once per second).
    Returns the whole time and the copy's share.
    """
    consumer = Consumer({**settings.client_config(), **CONSUMER_CONFIG, "logger": LIBRDKAFKA_LOG})
    stamps = Timestamps()
    prefix = TOPIC.encode() + b"\t"
    started = time.perf_counter()
    consumer.list_topics(TOPIC, timeout=10)
    consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    eof: set[int] = set()
    lines: list[bytes] = []
    while len(eof) < PARTITIONS:
        for m in consumer.consume(batch_size, POLL_SECONDS):
            if m.error() is None:
                lines.append(
                    b"%b%d\t%d\t%b\t%b\t%b\t0\n"
                    % (prefix, m.partition(), m.offset(), m.key(), m.value(),
                       stamps(m.timestamp()))
                )  # fmt: skip
            elif m.error().code() == KafkaError._PARTITION_EOF:
                eof.add(m.partition())
    columns = ", ".join(f'"{c}"' for c in RAW_COLUMNS)
    copy_started = time.perf_counter()
    subprocess.run(
        [str(psql_path()), "-X", "-q", "-v", "ON_ERROR_STOP=1", conninfo, "-c",
         f"\\copy {BASELINE} ({columns}) from pstdin"],
        input=b"".join(lines), check=True,
    )  # fmt: skip
    ended = time.perf_counter()
    consumer.close()
    assert len(lines) == N_MESSAGES, len(lines)
    return ended - started, ended - copy_started


def prepare_tables(conninfo: str) -> None:
    """The raw and control tables, and the baseline's table: the raw table's twin."""
    with psycopg.connect(conninfo) as conn:
        ensure_all_raw_tables(conn)
        conn.execute(
            sql.SQL("create table if not exists {} (like {} including all)").format(
                sql.SQL(BASELINE), RAW_TABLE.identifier
            )
        )


def reset_landing(conninfo: str) -> None:
    """Empty the raw tables and the loader's bookkeeping; the tables themselves stay."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        loader_tables = [
            sql.Identifier("loader", name)
            for (name,) in conn.execute(
                "select tablename from pg_tables where schemaname = 'loader'"
            ).fetchall()
        ]
        tables = [RAW_TABLE.identifier, sql.SQL(BASELINE), *loader_tables]
        conn.execute(sql.SQL("truncate {}").format(sql.SQL(", ").join(tables)))
        conn.execute("checkpoint")  # the previous round's WAL is not this round's cost


def time_loader(conninfo: str, batch_size: int) -> float:
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
    prepare_tables(conninfo)
    print(f"producing {N_MESSAGES:,} messages over {PARTITIONS} partitions ...", flush=True)
    size = produce(kafka.bootstrap_servers, N_MESSAGES)
    print(f"{size / 1e6:.1f} MB of values ({size / N_MESSAGES:.0f} B/message)")

    times: dict[str, list[float]] = {name: [] for name in ("bare", "copy", "loader", "plain")}
    copy_only: list[float] = []  # the psql \\copy alone: what PostgreSQL needs for the rows

    def copy_run() -> float:
        both, alone = consume_then_copy(settings, batch_size, conninfo)
        copy_only.append(alone)
        return both

    runs = {
        "bare": lambda: time_bare_consume(settings, batch_size),
        "copy": copy_run,
        "loader": lambda: time_loader(conninfo, batch_size),
    }
    names = list(runs)
    for rep in range(REPEATS):
        # A different order each round, so none always gets the warm broker or a fresh WAL.
        for name in names[rep % 3 :] + names[: rep % 3]:
            reset_landing(conninfo)
            times[name].append(runs[name]())
        times["plain"].append(time_bare_consume(settings, batch_size, tuned=False))
        print(
            f"  round {rep + 1}: bare consume {times['bare'][-1]:.2f}s   consume then "
            f"psql \\copy {times['copy'][-1]:.2f}s (copy {copy_only[-1]:.2f}s)   "
            f"loader {times['loader'][-1]:.2f}s   "
            f"bare, default fetch settings {times['plain'][-1]:.2f}s",
            flush=True,
        )
    t = {name: statistics.median(values) for name, values in times.items()}
    print()
    print(f"== kafka bench: {N_MESSAGES:,} messages, median of {REPEATS} ==")
    print(
        f"kafka landing   bare consume {t['bare']:6.2f}s   loader {t['loader']:6.2f}s   "
        f"ratio {t['bare'] / t['loader']:.2f}  ({N_MESSAGES / t['loader']:,.0f} msgs/s, "
        f"batches of {batch_size:,}; target >= 0.7)"
    )
    print(
        f"kafka landing   consume then psql \\copy {t['copy']:6.2f}s   loader "
        f"{t['loader']:6.2f}s   ratio {t['copy'] / t['loader']:.2f}  (target >= 0.9)"
    )
    t_copy = statistics.median(copy_only)
    print(
        f"          the psql \\copy alone takes {t_copy:.2f}s: landing is no faster than "
        f"that or the read floor, whichever is slower (read floor ratio at best "
        f"{t['bare'] / max(t['bare'], t_copy):.2f})"
    )
    print(
        f"          vs a bare loop with librdkafka's default fetch settings "
        f"({t['plain']:.2f}s): ratio {t['plain'] / t['loader']:.2f}"
    )
    record("kafka landing / read floor", t["bare"] / t["loader"], goal=0.7)
    record("kafka landing / consume then psql \\copy", t["copy"] / t["loader"], goal=0.9)
    record("kafka landing throughput", N_MESSAGES / t["loader"], unit="msgs/s")
    # No goal: what bounds the first figure. One COPY of the rows takes the
    # warehouse this long however they are read, so landing / read floor is at
    # most this figure (or 1, if it is above 1).
    record("kafka read floor / psql \\copy alone", t["bare"] / t_copy)
    return 0


if __name__ == "__main__":
    sys.exit(main())
