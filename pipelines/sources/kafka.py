"""The order system's Kafka stream of registrations, offsets kept in the warehouse."""

from __future__ import annotations

from loaders.kafka import job as kafka_job
from loaders.kafka.landing import RAW_TABLES
from pipelines.definition import Landed, Source, Step, StepContext


def load_kafka_topic(ctx: StepContext) -> dict:
    r = kafka_job.load_topic(progress=kafka_job.print_progress)
    lag = sum(r.lag.values())
    return Landed.of(r, notes=(f"consumer lag after the load: {lag:,} message(s)",) if lag else ())


SOURCE = Source(
    name="kafka",
    description="Kafka new_users_events -> raw_kafka.new_users_events (offsets in the warehouse)",
    raw_tables=RAW_TABLES,
    steps=(Step("load", load_kafka_topic),),
    daily=False,
    # The order system's simulator publishes the registrations; the order
    # system's transform runs once both have landed.
    after=("oltp",),
    transform="orders",
    servers=("kafka",),
)
