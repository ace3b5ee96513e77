"""``raw_kafka.new_users_events``: each consumed message as received, exactly once.

One row per (topic, partition, offset): the value and key as text, and the
broker's timestamp. A batch commits its rows, its rejects and the next offset
of every partition it read in one transaction, so a crash at any point and a
restart land each message exactly once.

The offsets are the stream's watermark in ``loader.watermarks`` (source
``kafka``, stream = the topic): ``{"topic_id": ..., "offsets": {"0": next, ...}}``.
The topic id tells a topic deleted and created again (offsets restart at 0)
from the one the offsets belong to.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from confluent_kafka import Message
from psycopg import Copy
from psycopg.copy import QueuedLibpqWriter

from loaders.core import result as core
from loaders.core.control import Reject, close_batch, open_batch, write_rejects
from loaders.core.copy import CopyRow, copy_rows, copy_statement, copy_text
from loaders.core.raw_tables import RawTable
from loaders.kafka.checks import Timestamps, copy_line, copy_lines, to_copy_row

SOURCE = "kafka"
RAW_SCHEMA = "raw_kafka"

RAW_TABLE = RawTable(
    RAW_SCHEMA,
    "new_users_events",
    (
        ("topic", "text not null"),
        ("partition", "integer not null"),
        ("offset", "bigint not null"),
        ("key", "text"),
        ("value", "text not null"),  # a JSON object (checked), exactly as produced
        ("message_timestamp", "timestamptz"),
    ),
    # _batch_id: the incremental staging model; _loaded_at: the daily tests that
    # read raw rows landed since (json_key_castable).
    indexes=(("_batch_id",), ("_loaded_at",)),
)
RAW_TABLES = (RAW_TABLE,)
RAW_COLUMNS = (*(name for name, _ in RAW_TABLE.columns), "_batch_id")


@dataclass(kw_only=True)
class LoadResult(core.LoadResult):
    topic: str
    batches: int = 0
    lag: dict[int, int] = field(default_factory=dict)  # messages left per partition after the run
    offsets: dict[int, int] = field(default_factory=dict)  # next offset per partition, committed

    @property
    def raw_table(self) -> str:
        return RAW_TABLE.qualified_name


Offsets = dict[int, int]


def encode_watermark(topic_id: str | None, offsets: Offsets) -> dict:
    return {"topic_id": topic_id, "offsets": {str(p): o for p, o in sorted(offsets.items())}}


def decode_watermark(value: dict | None) -> tuple[str | None, Offsets]:
    if not value:
        return None, {}
    return value.get("topic_id"), {int(p): int(o) for p, o in value.get("offsets", {}).items()}


@dataclass
class Chunk:
    """Messages read in one poll, checked and encoded (their lines lack the batch id)."""

    messages: list[Message]
    lines: list[bytes]
    rejects: list[Reject]


def encode(topic: str, messages: list[Message], stamps: Timestamps) -> Chunk:
    return Chunk(messages, *copy_lines(messages, copy_text(topic) + b"\t", stamps))


class Batch:
    """A batch in flight: each chunk is streamed into COPY as it comes.

    PostgreSQL parses one chunk while the consumer reads the next, so the COPY
    costs little on top of reading the topic.
    """

    def __init__(self, topic: str, batch_id: int, stamps: Timestamps, copy: Copy) -> None:
        self.topic = topic
        self.batch_id = batch_id
        self.messages: list[Message] = []
        self.rejects: list[Reject] = []  # refused by the checks
        self.lines = 0  # COPY lines written
        self.watermark: dict | None = None  # the offsets after this batch: set before it closes
        self.landed = 0
        self.rejected = 0
        self.failed: psycopg.errors.DataError | None = None
        self._suffix = b"\t%d\n" % batch_id  # ends every line: the batch id
        self._stamps = stamps
        self._copy = copy

    def __len__(self) -> int:
        return len(self.messages)

    def add(self, chunk: Chunk) -> None:
        self.messages += chunk.messages
        self.rejects += chunk.rejects
        self.lines += len(chunk.lines)
        if chunk.lines and self.failed is None:
            try:
                self._copy.write(self._suffix.join(chunk.lines) + self._suffix)
            except psycopg.errors.DataError as exc:  # raised again when the COPY ends
                self.failed = exc

    def rows(self) -> list[CopyRow]:
        """The batch's lines with what to reject if PostgreSQL refuses one (the slow path)."""
        prefix = copy_text(self.topic) + b"\t"
        rows = []
        for m in self.messages:
            item = copy_line(m, prefix, self._stamps)
            if type(item) is bytes:
                rows.append(to_copy_row(m, item + self._suffix, self._stamps))
        return rows


@contextmanager
def landing_batch(conn: psycopg.Connection, topic: str, stamps: Timestamps) -> Iterator[Batch]:
    """One batch, one transaction: its rows, its rejects and the offsets after it.

    The caller adds messages and sets ``watermark`` (the next offset of every
    partition) before the block ends; the transaction commits when it does.
    If PostgreSQL refuses a line (something the checks did not foresee), the
    savepoint rolls the COPY back and ``copy_rows`` isolates the bad lines, so
    the rest still lands. Any other error rolls the whole batch back. The
    caller holds the stream lock.
    """
    statement = copy_statement(RAW_TABLE.identifier, RAW_COLUMNS)
    with conn.transaction():
        batch_id = open_batch(conn, SOURCE, topic)
        refused: list[Reject] = []
        try:
            with (
                conn.transaction(),
                conn.cursor() as cur,
                # A writer thread sends while this thread reads and encodes the next chunk.
                cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy,
            ):
                batch = Batch(topic, batch_id, stamps, copy)
                yield batch
                if batch.failed is not None:
                    raise batch.failed
        except psycopg.errors.DataError:
            refused = copy_rows(conn, RAW_TABLE.identifier, RAW_COLUMNS, batch.rows())
        if batch.watermark is None:
            raise RuntimeError("a Kafka batch must not commit without its offsets")
        batch.landed = batch.lines - len(refused)
        batch.rejected = write_rejects(conn, batch_id, SOURCE, topic, batch.rejects + refused)
        close_batch(conn, batch_id, SOURCE, topic, batch.landed, batch.rejected, batch.watermark)
