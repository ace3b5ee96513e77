"""Entry points shared by the CLI, ``make run`` and Airflow: load the topic, reset it.

A load drains what is on the topic now and stops: every partition is read from
the offsets committed with the last batch until it reports EOF (or until
``max_messages``), in batches of ``LOADER_BATCH_SIZE``. Each batch commits its
rows, its rejects and the partitions' next offsets in one warehouse
transaction, so a crash at any point followed by a rerun lands every message
exactly once.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from config import LoaderSettings, WarehouseSettings
from loaders.core.control import read_watermark, record_lag, stream_lock
from loaders.core.warehouse import LoaderError, connect
from loaders.kafka.checks import Timestamps
from loaders.kafka.client import TopicInfo, TopicReader
from loaders.kafka.landing import (
    RAW_TABLE,
    SOURCE,
    Chunk,
    LoadResult,
    Offsets,
    decode_watermark,
    encode,
    encode_watermark,
    landing_batch,
)
from loaders.kafka.settings import KafkaSettings
from loaders.raw_tables import ensure_all_raw_tables

STREAMS = ("new_users_events",)  # the specified topic; KAFKA_NEW_USERS_TOPIC can rename it


def print_progress(result: LoadResult) -> None:
    """One stderr line per committed batch, so long loads show they are moving."""
    rate = (result.landed + result.rejected) / result.seconds if result.seconds else 0.0
    print(
        f"  kafka.{result.topic}: batch {result.batches}, {result.landed:,} landed, "
        f"{result.rejected:,} rejected ({rate:,.0f} msgs/s)",
        file=sys.stderr,
        flush=True,
    )


def start_offsets(
    topic: str, info: TopicInfo, stored_id: str | None, stored: Offsets
) -> tuple[dict[int, int | None], list[str]]:
    """Where each partition starts (None: its beginning), and what to tell the user."""
    if stored and stored_id and info.topic_id and stored_id != info.topic_id:
        note = (
            f"topic {topic} was deleted and created again since the last load (its id changed; "
            "the embedded broker keeps topics in memory, so a restart empties them): every "
            "partition is read from its start; messages produced after the last load and "
            "before that could not be read and may be lost"
        )
        return dict.fromkeys(info.partitions), [note]
    return {p: stored.get(p) for p in info.partitions}, []


@dataclass
class _Run:
    """One load of the topic: reads chunks, and lands them in batches, in commit order."""

    conn: psycopg.Connection
    reader: TopicReader
    info: TopicInfo
    base: Offsets  # the stored offsets that still hold (none if the topic was recreated)
    result: LoadResult
    batch_size: int
    max_messages: int | None
    progress: Callable[[LoadResult], None] | None
    stamps: Timestamps = field(default_factory=Timestamps)
    consumed: int = 0
    started: float = field(default_factory=time.monotonic)

    def more(self) -> bool:
        """Not every partition has reported EOF yet, and ``max_messages`` is not reached."""
        return not self.reader.done and (
            self.max_messages is None or self.consumed < self.max_messages
        )

    def read(self, in_batch: int = 0) -> Chunk:
        want = self.batch_size - in_batch
        if self.max_messages is not None:
            want = min(want, self.max_messages - self.consumed)
        messages = self.reader.poll(want)
        self.consumed += len(messages)
        return encode(self.result.topic, messages, self.stamps)

    def offsets(self) -> Offsets:
        """The next offset of every partition after all messages read so far."""
        known = {p: o for p, o in self.reader.positions().items() if o is not None}
        return {**self.base, **known}

    def land(self, chunk: Chunk | None) -> Chunk:
        """Land ``chunk`` and what follows it, up to a batch; returns the chunk read ahead.

        Once the batch is complete (and its offsets taken), the next chunk is
        read and encoded before the COPY ends: PostgreSQL finishes parsing the
        batch meanwhile, instead of the loader waiting for it.
        """
        ahead = Chunk([], [], [])
        lost: LoaderError | None = None
        offsets = self.offsets() if chunk is None else None
        with landing_batch(self.conn, self.result.topic, self.stamps) as batch:
            if chunk is not None:
                batch.add(chunk)
                while len(batch) < self.batch_size and self.more():
                    batch.add(self.read(len(batch)))
                offsets = self.offsets()
                if self.more():
                    try:
                        ahead = self.read()
                    except LoaderError as exc:  # the broker went away: commit this batch first
                        lost = exc
            batch.watermark = encode_watermark(self.info.topic_id, offsets)
        self.result.offsets = offsets
        self.result.landed += batch.landed
        self.result.rejected += batch.rejected
        self.result.batches += 1
        self.result.seconds = time.monotonic() - self.started
        if self.progress:
            self.progress(self.result)
        if lost is not None:
            raise lost
        return ahead

    def run(self, stored_id: str | None) -> None:
        chunk = Chunk([], [], [])
        while chunk.messages or self.more():
            chunk = self.land(chunk) if chunk.messages else self.read()
        # Offsets can move with no message to land (the EOF of an empty partition, a
        # partition re-read from its start, a recreated topic): commit them too, so
        # that is not found again.
        moved = self.offsets() != self.result.offsets
        if moved or (stored_id != self.info.topic_id and not self.result.batches):
            self.land(None)


def load_stream(
    conn: psycopg.Connection,
    settings: KafkaSettings,
    *,
    batch_size: int,
    max_messages: int | None = None,
    progress: Callable[[LoadResult], None] | None = None,
    consumer_overrides: dict[str, object] | None = None,
) -> LoadResult:
    """Land what the topic holds beyond the committed offsets; returns what was landed.

    ``consumer_overrides`` are extra librdkafka settings (tests throttle the
    prefetch with them). The raw and control tables must exist.
    """
    started = time.monotonic()
    topic = settings.topic
    result = LoadResult(topic=topic)
    with stream_lock(conn, SOURCE, topic), TopicReader(settings, consumer_overrides) as reader:
        stored_id, stored = decode_watermark(read_watermark(conn, SOURCE, topic))
        result.offsets = dict(stored)
        info = reader.describe()
        if info is None:
            result.notes.append(f"topic {topic} does not exist yet: nothing to load")
            result.seconds = time.monotonic() - started
            return result
        starts, notes = start_offsets(topic, info, stored_id, stored)
        result.notes += notes
        reader.assign(starts)
        # Offsets of the old topic mean nothing in a recreated one: they are not kept.
        base = {} if notes else dict(stored)
        _Run(conn, reader, info, base, result, batch_size, max_messages, progress).run(stored_id)
        result.lag = reader.lag(dict(result.offsets))
        if result.lag:  # partitions it could measure
            record_lag(conn, SOURCE, topic, sum(result.lag.values()), "messages")
        result.notes += [reset.note(topic) for reset in reader.resets]
    result.seconds = time.monotonic() - started
    return result


def load_topic(
    max_messages: int | None = None,
    batch_size: int | None = None,
    progress: Callable[[LoadResult], None] | None = None,
) -> LoadResult:
    """Land the configured topic's new messages from the configured servers.

    ``max_messages`` stops after that many messages (the rest stays for the
    next run, and ``lag`` says how many are left per partition).
    """
    settings = KafkaSettings.from_env()
    size = batch_size or LoaderSettings.from_env().batch_size
    with connect(WarehouseSettings.from_env()) as conn:
        ensure_all_raw_tables(conn)
        return load_stream(
            conn, settings, batch_size=size, max_messages=max_messages, progress=progress
        )


def reset_topic() -> None:
    """Forget the topic's raw rows, rejects and offsets, so the next load reads it from the start.

    Holds the stream's lock (a load running now is not cut off). The staging
    models built on it then need a ``--full-refresh``.
    """
    topic = KafkaSettings.from_env().topic
    with connect(WarehouseSettings.from_env()) as conn:
        ensure_all_raw_tables(conn)
        with stream_lock(conn, SOURCE, topic), conn.transaction():
            conn.execute(
                sql.SQL("delete from {} where topic = %s").format(RAW_TABLE.identifier), (topic,)
            )
            for table in ("watermarks", "rejects"):
                conn.execute(
                    sql.SQL("delete from loader.{} where source = %s and stream = %s").format(
                        sql.Identifier(table)
                    ),
                    (SOURCE, topic),
                )
