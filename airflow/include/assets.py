"""Airflow assets: the data each pipeline step produces, for data-aware scheduling.

A simulator emits its source system; loader tasks emit the raw tables they
landed; a source's dbt transform is scheduled on its raw tables. URIs are
identifiers, not connection strings (no credentials).
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetWatcher

from loaders.core.raw_tables import RawTable
from pipelines import Source


def source_system_asset(source: Source) -> Asset:
    """The operational system itself (written by the simulator in local runs)."""
    return Asset(name=f"{source.name}_source_system", uri=f"source-system://{source.name}")


def raw_table_asset(table: RawTable) -> Asset:
    return Asset(
        name=table.qualified_name,
        uri=f"postgres://warehouse:5432/warehouse/{table.schema}/{table.name}",
    )


def transform_asset(tag: str) -> Asset:
    """Every model of a dbt tag built and tested (emitted by the end of its transform DAG)."""
    return Asset(name=f"dbt_{tag}_built", uri=f"dbt://store_analytics/tag/{tag}")


def queue_asset(source: Source) -> Asset:
    """New messages on the source's queue, watched by the triggerer (event-driven runs).

    The Kafka trigger's consumer reads the ``kafka_default`` connection, which
    `make airflow` builds from KAFKA_* (AIRFLOW_CONN_KAFKA_DEFAULT).
    """
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    from config import KafkaSettings

    assert source.queue == "kafka", f"no watcher for queue {source.queue!r}"
    topic = KafkaSettings.from_env().topic
    trigger = MessageQueueTrigger(
        scheme="kafka", topics=[topic], apply_function="include.queue_events.any_message"
    )
    return Asset(
        name=f"{source.name}_queue",
        uri=f"kafka://broker/{topic}",
        watchers=[AssetWatcher(name=f"{source.name}_{topic}_watcher", trigger=trigger)],
    )
