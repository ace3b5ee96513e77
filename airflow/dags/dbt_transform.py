"""dbt_project rendered by Cosmos as Airflow DAGs, one per dbt tag of ``pipelines.SOURCES``.

Each DAG selects the models tagged for its sources (staging -> marts) and is
scheduled on their sources' ``landed`` asset, so it runs for a day once
every raw table has landed that day (``include/clock.py``), and checks only
their freshness. Sources that share a tag (the order system's database and
its Kafka stream: ``orders``) share one DAG, run once both have landed the
day (the stream lands after the database).
Models that read several transforms' models (``pipelines.COMBINED_TRANSFORMS``:
``user_activity``) have a DAG of their own, run once all of those have built
the day: each transform DAG ends with a ``built`` task emitting
``dbt://.../tag/<tag>``. The day goes to dbt as DBT_LOGICAL_DATE.
Wiring only: the Cosmos factory is ``include/transform.py``.
"""

from __future__ import annotations

from airflow.sdk import CronTriggerTimetable

from include.assets import landed_asset, transform_asset
from include.clock import after, last_in_transform
from include.tasks import events_exist
from include.transform import transform_dag
from pipelines import COMBINED_TRANSFORMS, SOURCES

# What the 15-minute DAG builds on ClickHouse (with the staging views they read).
INTRADAY_MODELS = ("int_events_slice_metrics", "feed_anomalies")

TAGS = {source.dbt_tag: [s for s in SOURCES if s.dbt_tag == source.dbt_tag] for source in SOURCES}

for tag, sources in TAGS.items():
    # Sources sharing a tag land one after the other: the last one completes the day.
    globals()[f"dbt_transform_{tag}"] = transform_dag(
        tag,
        after(landed_asset(last_in_transform(tag))),
        f"dbt models tagged {tag} ({', '.join(s.name for s in sources)}), "
        "built for a day once their raw tables have landed it",
        with_sources=True,
    )

for tag, parents in COMBINED_TRANSFORMS.items():
    globals()[f"dbt_transform_{tag}"] = transform_dag(
        tag,
        after(*map(transform_asset, parents)),
        f"dbt models tagged {tag}, which read {' and '.join(parents)}: built after both",
        with_sources=False,
    )

# Sources whose models are also built on another target (the feed and
# messenger events on ClickHouse, from the events in place): scheduled like
# the warehouse's, on the landed raw tables, which say the day is complete in
# ClickHouse too.
for source in SOURCES:
    for target in source.dbt_targets:
        if target == "warehouse":  # the DAGs above, on the configured target
            continue
        globals()[f"dbt_transform_{source.dbt_tag}_{target}"] = transform_dag(
            source.dbt_tag,
            after(landed_asset(source)),
            f"dbt models tagged {source.dbt_tag} built on {target}, when the day has landed",
            # No freshness tasks: there the only time is the events' own, which
            # the simulator keeps behind the wall clock; the warehouse's DAG
            # checks the same tables' freshness by landing time.
            with_sources=False,
            target=target,
            dag_id=f"dbt_transform_{source.dbt_tag}_{target}",
            # The 15-minute DAG below owns the slices there: two DAGs deleting
            # and inserting the same day at once could double its rows.
            exclude=INTRADAY_MODELS if target == "clickhouse" else (),
        )

# Anomaly alerts during the day: the 15-minute slices and their bounds on
# ClickHouse, where a real app's events arrive as they happen (the warehouse
# gets a day once it is over; the local simulator writes whole days). Every
# 15 minutes; each run rebuilds from the day before the latest day it holds.
dbt_anomalies_clickhouse = transform_dag(
    "events",
    CronTriggerTimetable("*/15 * * * *", timezone="UTC"),
    "the feed's 15-minute slices and their anomaly bounds on ClickHouse, during the day",
    with_sources=False,
    target="clickhouse",
    dag_id="dbt_anomalies_clickhouse",
    select="+feed_anomalies",
    # Until the simulation's first day there are no events to build from: skip the run.
    gate=events_exist,
)
