"""Airflow assets: the data each pipeline step produces, for data-aware scheduling.

Loader tasks emit the raw table they landed; the dbt transform is scheduled on
the raw tables it reads. URIs are identifiers, not connection strings (no
credentials): ``postgres://warehouse:5432/<db>/<schema>/<table>``.
"""

from __future__ import annotations

from airflow.sdk import Asset

from loaders.mongo import COLLECTIONS, RAW_SCHEMA

# The app database the simulator (or the real app) writes.
MONGO_APP_DB = Asset(name="mongo_app_db", uri="mongodb://app-db:27017/app")

RAW_MONGO: dict[str, Asset] = {
    name: Asset(
        name=f"{RAW_SCHEMA}.{name}",
        uri=f"postgres://warehouse:5432/warehouse/{RAW_SCHEMA}/{name}",
    )
    for name in COLLECTIONS
}
