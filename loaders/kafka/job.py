"""Entry points shared by the CLI, ``make run`` and Airflow: load the topic, reset it.

A load drains what is on the topic now and stops: every partition is read from
the offsets committed with the last batch until it reports EOF (or until
``max_messages``), in batches of ``LOADER_BATCH_SIZE``. Each batch commits its
rows, its rejects and the partitions' next offsets in one warehouse
transaction, so a crash at any point followed by a rerun lands every message
exactly once.

A reader thread consumes and checks the topic in chunks, each with the
partitions' offsets after it, while the main thread streams the chunks into
COPY and commits: librdkafka and libpq release the GIL while they wait, so
reading the next chunks overlaps PostgreSQL parsing and committing the batch.
"""

from __future__ import annotations

import queue
import sys
import threading
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


CHUNK = 5_000  # messages per consume(): small enough that COPY starts early and keeps pace
AHEAD = 12  # chunks read ahead of the COPY at most (bounds memory; ~a batch of 50,000)


@dataclass
class _End:
    """The reader is through: every partition at EOF, or ``max_messages`` read."""

    positions: dict[int, int | None]


class _ReadAhead:
    """A thread that reads the topic in chunks, checked and encoded, into a bounded queue.

    Each chunk comes with every partition's position right after it, taken in
    the reading thread (the consumer is only ever used there while it runs),
    so a batch's offsets are exactly those of the messages it holds however far
    the reader is ahead. Chunks never straddle a batch boundary. A failure is
    queued after the chunks read before it, so they still land.
    """

    def __init__(self, reader: TopicReader, topic: str, stamps: Timestamps,
                 batch_size: int, max_messages: int | None) -> None:  # fmt: skip
        self._reader = reader
        self._topic = topic
        self._stamps = stamps
        self._batch_size = batch_size
        self._max = max_messages
        self._queue: queue.Queue[tuple[Chunk, dict] | _End | BaseException] = queue.Queue(AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kafka-reader", daemon=True)

    def __enter__(self) -> _ReadAhead:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def get(self) -> tuple[Chunk, dict] | _End | BaseException:
        return self._queue.get()

    def _put(self, item: tuple[Chunk, dict] | _End | BaseException) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        reader, consumed, in_batch = self._reader, 0, 0
        try:
            while not reader.done and (self._max is None or consumed < self._max):
                if self._stop.is_set():
                    return
                want = min(CHUNK, self._batch_size - in_batch)
                if self._max is not None:
                    want = min(want, self._max - consumed)
                messages = reader.poll(want)
                if not messages:
                    continue
                consumed += len(messages)
                in_batch = (in_batch + len(messages)) % self._batch_size
                positions = reader.positions()
                chunk = encode(self._topic, messages, self._stamps)
                if not self._put((chunk, positions)):
                    return
            self._put(_End(reader.positions()))
        except BaseException as exc:  # handed to the main thread, which decides
            self._put(exc)


@dataclass
class _Run:
    """One load of the topic: lands the reader's chunks in batches, in commit order."""

    conn: psycopg.Connection
    reader: TopicReader
    info: TopicInfo
    base: Offsets  # the stored offsets that still hold (none if the topic was recreated)
    result: LoadResult
    batch_size: int
    max_messages: int | None
    progress: Callable[[LoadResult], None] | None
    stamps: Timestamps = field(default_factory=Timestamps)
    started: float = field(default_factory=time.monotonic)

    def offsets(self, positions: dict[int, int | None]) -> Offsets:
        """The next offset of every partition, from the reader's positions."""
        return {**self.base, **{p: o for p, o in positions.items() if o is not None}}

    def land(self, first: tuple[Chunk, dict] | None, ahead: _ReadAhead | None,
             offsets: Offsets | None = None) -> _End | BaseException | None:  # fmt: skip
        """Land ``first`` and the chunks after it, up to a batch, in one transaction.

        Returns what ended the batch early (the reader's end or its failure),
        or None when the batch is full. With no chunk, commits ``offsets`` alone.
        """
        stop: _End | BaseException | None = None
        with landing_batch(self.conn, self.result.topic, self.stamps) as batch:
            if first is not None and ahead is not None:
                chunk, positions = first
                batch.add(chunk)
                while len(batch) < self.batch_size:
                    item = ahead.get()
                    if isinstance(item, tuple):
                        chunk, positions = item
                        batch.add(chunk)
                        continue
                    stop = item
                    if isinstance(stop, BaseException) and not isinstance(stop, LoaderError):
                        raise stop  # not a lost broker: this batch rolls back
                    break  # the broker went away: this batch commits first
                offsets = self.offsets(positions)
            assert offsets is not None
            batch.watermark = encode_watermark(self.info.topic_id, offsets)
        self.result.offsets = offsets
        self.result.landed += batch.landed
        self.result.rejected += batch.rejected
        self.result.batches += 1
        self.result.seconds = time.monotonic() - self.started
        if self.progress:
            self.progress(self.result)
        return stop

    def run(self, stored_id: str | None) -> None:
        ahead = _ReadAhead(self.reader, self.result.topic, self.stamps, self.batch_size,
                           self.max_messages)  # fmt: skip
        with ahead:
            item = ahead.get()
            while isinstance(item, tuple):
                item = self.land(item, ahead) or ahead.get()
        if isinstance(item, BaseException):
            raise item
        # Offsets can move with no message to land (the EOF of an empty partition, a
        # partition re-read from its start, a recreated topic): commit them too, so
        # that is not found again.
        final = self.offsets(item.positions)
        if final != self.result.offsets or (
            stored_id != self.info.topic_id and not self.result.batches
        ):
            self.land(None, None, final)


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
