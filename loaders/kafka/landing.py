"""``raw_kafka.new_users_events``: each consumed message as received, exactly once.

One row per (topic, partition, offset): the value and key as text, and the
broker's timestamp. A batch commits its rows, its rejects and the next offset
of every partition it read in one transaction, so a crash at any point and a
restart land each message exactly once.
"""

from __future__ import annotations

from loaders.core.raw_tables import RawTable

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
    indexes=(("_batch_id",),),
)
RAW_TABLES = (RAW_TABLE,)
