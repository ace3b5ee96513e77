"""Airflow assets: the data each pipeline step produces, for data-aware scheduling.

The simulation emits its clock and each source system; loader tasks emit the
raw tables they landed; a source's dbt transform is scheduled on its raw
tables. Every event carries the day it is about as its partition key
(``include/clock.py``). URIs are identifiers, not connection strings (no
credentials).
"""

from __future__ import annotations

from airflow.sdk import Asset

from loaders.core.raw_tables import RawTable
from pipelines import Source


def clock_asset() -> Asset:
    """The simulated app's clock: a day is over in the simulation (emitted per day)."""
    return Asset(name="simulated_day", uri="simulation://store/day")


def source_system_asset(source: Source) -> Asset:
    """The operational system itself (written by the simulator in local runs)."""
    return Asset(name=f"{source.name}_source_system", uri=f"source-system://{source.name}")


def raw_table_asset(table: RawTable) -> Asset:
    return Asset(
        name=table.qualified_name,
        uri=f"postgres://warehouse:5432/warehouse/{table.schema}/{table.name}",
    )


def landed_asset(source: Source) -> Asset:
    """Every raw table of ``source`` has landed the run's day (emitted once per run).

    Consumers wait on this one asset rather than on each raw table: Airflow
    3.3 can queue two half-runs for one day when different assets of its
    condition arrive at the same instant (its lock is per asset), and such a
    day never runs.
    """
    return Asset(name=f"{source.name}_landed", uri=f"landed://warehouse/{source.name}")


def transform_asset(tag: str) -> Asset:
    """Every model of a dbt tag built and tested (emitted by the end of its transform DAG)."""
    return Asset(name=f"dbt_{tag}_built", uri=f"dbt://store_analytics/tag/{tag}")
