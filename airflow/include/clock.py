"""When the DAGs run: on the simulated app's days, or on the wall clock's days.

Every run that processes a day carries that day as its partition key
(``YYYY-MM-DD``, Airflow 3's partitioned assets), and every asset it emits
carries the key on: a loader runs for day D once its source system holds D,
a transform once its sources have landed D, the combined transform once
both transforms have built D. Airflow queues one run per day
and key, so nothing runs twice for a day, nothing waits on a retry, and no
day is skipped.

Where the days come from (AIRFLOW_SIMULATE):

- simulated (the default: the local stack): the ``simulate_day`` DAG is the
  clock. Each run writes the app's next day, the same ``pipelines.clock``
  ``make run`` advances, and emits it; run ``make run`` and Airflow in turn
  and they share one sequence of days.
- real systems: each loader runs at 01:00 UTC for the day that just ended.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, AssetAll, CronPartitionTimetable, PartitionedAssetTimetable

from config import AirflowSettings
from include.assets import clock_asset, landed_asset, source_system_asset
from pipelines import SOURCES, Source

DAY_FORMAT = "%Y-%m-%d"


def simulating() -> bool:
    return AirflowSettings.from_env().simulate


def after(*assets: Asset | AssetAll) -> PartitionedAssetTimetable:
    """Run for day D once every one of ``assets`` has an event for D."""
    return PartitionedAssetTimetable(assets=assets[0] if len(assets) == 1 else AssetAll(*assets))


def source_schedule(source: Source):
    """A loader's runs: one per day its source system holds.

    Sources that share a transform land one after the other (in landing
    order), so their transform waits on one asset, the last one's.
    """
    if (before := previous_in_transform(source)) is not None:
        return after(landed_asset(before))
    if not simulating():
        # The run at 01:00 on D+1 has partition date D (one cron interval back).
        return CronPartitionTimetable(
            "0 1 * * *", timezone="UTC", run_offset=-1, key_format=DAY_FORMAT
        )
    return after(simulated_by(source))


def simulated_by(source: Source) -> Asset:
    """What writes ``source``'s day in the simulation: its simulator, else the clock
    itself (the partner's API answers for any day that is over)."""
    return source_system_asset(source) if source.simulate is not None else clock_asset()


def previous_in_transform(source: Source) -> Source | None:
    """The source landed just before ``source`` among those sharing its dbt tag."""
    same = [s for s in SOURCES if s.dbt_tag == source.dbt_tag]
    i = same.index(source)
    return same[i - 1] if i else None


def last_in_transform(tag: str) -> Source:
    """The source whose landing completes ``tag``'s day."""
    return [s for s in SOURCES if s.dbt_tag == tag][-1]


def partition_day(key: str | None) -> dt.date | None:
    return dt.date.fromisoformat(key) if key else None
