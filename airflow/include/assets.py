"""Airflow assets: the data each pipeline step produces, for data-aware scheduling.

A simulator emits its source system; loader tasks emit the raw tables they
landed; a source's dbt transform is scheduled on its raw tables. URIs are
identifiers, not connection strings (no credentials).
"""

from __future__ import annotations

from airflow.sdk import Asset

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
