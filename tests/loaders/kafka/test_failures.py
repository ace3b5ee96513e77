"""Crashes and lost servers: each message still lands exactly once, errors are one line.

Tests that stop a broker start their own (on a free port): the session's broker
is shared with every other test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from config import PROJECT_ROOT, WarehouseSettings
from loaders.core.warehouse import LoaderError, connect
from loaders.kafka.job import load_stream, load_topic
from loaders.kafka.settings import KafkaSettings
from loaders.raw_tables import ensure_all_raw_tables
from stack.embedded_kafka import EmbeddedKafka
from tests.conftest import free_port
from tests.loaders.kafka.conftest import (
    create_topic,
    produce,
    raw_rows,
    registrations,
    scalar,
)

# A consumer that fetches a few messages at a time, so a broker stopped
# mid-run leaves most of the topic unread (librdkafka would otherwise have
# prefetched all of it in milliseconds).
TRICKLE = {
    "message.max.bytes": 1000,
    "fetch.max.bytes": 1000,
    "max.partition.fetch.bytes": 1000,
    "queued.max.messages.kbytes": 1,
    "queued.min.messages": 1,
}

CHILD = """
import sys
from loaders.core.warehouse import LoaderError
from loaders.kafka.job import load_topic

def progress(result):
    print(f"batch {result.batches}", flush=True)

try:
    load_topic(batch_size=int(sys.argv[1]), progress=progress)
except LoaderError as exc:
    print(f"loaders kafka: {exc}", file=sys.stderr)
    sys.exit(1)
"""


def run_child(batch_size: int = 50, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(batch_size)],
        cwd=PROJECT_ROOT,
        text=True,
        **popen,
    )


def landed(conninfo: str) -> list[tuple]:
    return [r[1:] for r in raw_rows(conninfo)]  # without the topic name (differs per test)


def kill_after(lines: int, delay: float) -> int:
    """Start a loader process, SIGKILL it ``delay`` s after its ``lines``-th committed batch."""
    child = run_child(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None
    for _ in range(lines):
        assert child.stdout.readline().startswith("batch"), child.stderr.read()  # type: ignore[union-attr]
    time.sleep(delay)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    child.stderr.close()  # type: ignore[union-attr]
    return child.returncode


def test_sigkill_mid_load_then_rerun_equals_an_uninterrupted_load(
    warehouse, pg_server, topic, send, monkeypatch
) -> None:
    send(registrations(6000))
    # The reference: one uninterrupted load into a second warehouse.
    reference = f"{os.environ['WAREHOUSE_DB']}_ref"
    pg_server.ensure_database(reference)
    monkeypatch.setenv("WAREHOUSE_DB", reference)
    assert load_topic(batch_size=50).landed == 6000
    monkeypatch.setenv("WAREHOUSE_DB", os.environ["WAREHOUSE_DB"].removesuffix("_ref"))
    expected = landed(pg_server.conninfo(reference))

    # Killed twice at different points (after a commit, and inside the next batch).
    for batches, delay in ((3, 0.0), (2, 0.003)):
        assert kill_after(batches, delay) == -signal.SIGKILL
        so_far = landed(warehouse)
        assert 0 < len(so_far) < 6000
        assert len(set(so_far)) == len(so_far)
    committed = scalar(warehouse, "select sum(rows_landed) from loader.batches")
    assert committed == len(landed(warehouse))  # no rows outside committed batches

    result = load_topic(batch_size=50)
    assert result.landed == 6000 - committed
    assert landed(warehouse) == expected  # no gap, no duplicate, same values and times
    assert scalar(warehouse, "select sum(rows_landed) from loader.batches") == 6000


@pytest.fixture
def own_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A broker of this test's own, which it may stop and start; KAFKA_* point at it."""
    broker = EmbeddedKafka(state_dir=tmp_path / "kafka", port=free_port())
    broker.start()
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap_servers)
    monkeypatch.setenv("KAFKA_NEW_USERS_TOPIC", "new_users_events")
    monkeypatch.setenv("KAFKA_TIMEOUT_SECONDS", "2")
    yield broker
    broker.stop()


def test_broker_restart_while_consuming(warehouse, own_broker) -> None:
    topic = "new_users_events"
    create_topic(own_broker.bootstrap_servers, topic)
    first = registrations(3000)
    produce(own_broker.bootstrap_servers, topic, first)
    stopped_at: list[float] = []

    def stop_broker_after_second_batch(result) -> None:
        if result.batches == 2:
            own_broker.stop()
            stopped_at.append(time.monotonic())

    with connect(WarehouseSettings.from_env()) as conn:
        ensure_all_raw_tables(conn)
        with pytest.raises(LoaderError) as caught:
            load_stream(
                conn,
                KafkaSettings.from_env(),
                batch_size=100,
                progress=stop_broker_after_second_batch,
                consumer_overrides=TRICKLE,
            )
    assert time.monotonic() - stopped_at[0] < 2 + 3  # the timeout, plus a margin
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"lost Kafka at {own_broker.bootstrap_servers} while reading")
    assert "committed batches are kept" in message and "KAFKA_BOOTSTRAP_SERVERS" in message
    # The committed batches are kept, and they are exactly the messages they say.
    kept = landed(warehouse)
    assert 200 <= len(kept) < 3000
    assert len(kept) == scalar(warehouse, "select sum(rows_landed) from loader.batches")
    values = {(p, i // 3): v for i, (p, _, v) in enumerate(first)}
    assert all(values[(r[0], r[1])] == r[3].encode() for r in kept)

    # Memory storage: the restarted broker is empty. The producer creates the topic
    # again and writes more per partition than the stored offsets, so only the
    # changed topic id can tell that these offsets are not the old ones.
    own_broker.start()
    create_topic(own_broker.bootstrap_servers, topic)
    second = registrations(1500, start=10_000)
    produce(own_broker.bootstrap_servers, topic, second)
    result = load_topic()
    assert result.landed == 1500
    assert any("deleted and created again" in note for note in result.notes), result.notes
    assert result.offsets == {0: 500, 1: 500, 2: 500}
    rows = landed(warehouse)
    assert len(rows) == len(kept) + 1500
    assert set(kept) <= set(rows)  # the rows landed before the restart stay
    new_emails = {json.loads(r[3])["email"] for r in rows} - {
        json.loads(r[3])["email"] for r in kept
    }
    assert new_emails == {f"user{i}@example.com" for i in range(10_000, 11_500)}
    again = load_topic()
    assert (again.landed, again.notes) == (0, [])  # the reset is noted once


def test_a_stored_offset_beyond_the_log_end_is_noted_and_the_partition_reread(
    warehouse, topic, send
) -> None:
    """tansu answers a fetch past its log end with nothing (Kafka: OFFSET_OUT_OF_RANGE)."""
    send(registrations(30))
    assert load_topic().landed == 30
    with psycopg.connect(warehouse) as conn:  # as if the partition had been emptied
        conn.execute(
            "update loader.watermarks set value = jsonb_set(value, '{offsets,0}', '500')"
            " where source = 'kafka' and stream = %s",
            (topic,),
        )
    send(registrations(3, start=30))  # offset 10 of each partition
    result = load_topic()
    assert result.landed == 11 + 1 + 1  # partition 0 again from its start, 1 and 2 go on
    [note] = result.notes
    assert f"topic {topic} partition 0: the stored offset 500 is beyond the end of the log" in (
        note
    )
    assert "read again from offset 0" in note
    assert result.offsets == {0: 11, 1: 11, 2: 11}
    assert load_topic().notes == []


def test_an_unreachable_broker_is_one_clear_line_within_the_timeout(
    warehouse, monkeypatch, capfd
) -> None:
    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", address)
    monkeypatch.setenv("KAFKA_TIMEOUT_SECONDS", "2")
    started = time.monotonic()
    with pytest.raises(LoaderError) as caught:
        load_topic()
    assert time.monotonic() - started < 2 + 3
    message = str(caught.value)
    assert message.startswith(f"cannot reach Kafka at {address}: ")
    assert "Connection refused" in message and "KAFKA_BOOTSTRAP_SERVERS" in message
    assert "\n" not in message
    assert "%3|" not in capfd.readouterr().err  # librdkafka's own lines stay off the console


@pytest.mark.parametrize("reachable", [True, False], ids=["broker-up", "broker-down"])
def test_a_process_prints_one_line_and_never_the_sasl_password(
    warehouse, kafka_server, monkeypatch, reachable
) -> None:
    address = kafka_server.bootstrap_servers if reachable else f"127.0.0.1:{free_port()}"
    secret = "pw-S3cret'\"\\x"
    for key, value in {
        "KAFKA_BOOTSTRAP_SERVERS": address, "KAFKA_TIMEOUT_SECONDS": "2",
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_SASL_USERNAME": "loader", "KAFKA_SASL_PASSWORD": secret,
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    child = run_child(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 1, err
    assert err.count("\n") == 1, err
    assert err.startswith("loaders kafka: ") and address in err
    assert "Traceback" not in err and "%3|" not in err and "%6|" not in err
    assert secret not in err + out and "S3cret" not in err + out
    if reachable:  # the embedded broker speaks no SASL: the handshake is refused
        assert "refused the credentials" in err and "KAFKA_SASL_" in err


def test_losing_the_warehouse_mid_load_is_one_line_and_committed_batches_stay(
    warehouse, topic, send
) -> None:
    send(registrations(300))

    def kill_backends_after_first_batch(result) -> None:
        if result.batches == 1:
            with psycopg.connect(warehouse, autocommit=True) as admin:
                admin.execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity"
                    " where datname = current_database() and pid <> pg_backend_pid()"
                )

    with pytest.raises(LoaderError) as caught:
        load_topic(batch_size=100, progress=kill_backends_after_first_batch)
    assert "lost the connection to the warehouse" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert len(raw_rows(warehouse)) == 100
    assert load_topic(batch_size=100).landed == 200
    assert len({(r[1], r[2]) for r in raw_rows(warehouse)}) == 300
