"""Airflow assets: the data each pipeline step produces, for data-aware scheduling.

Loader tasks emit the raw table they landed; the dbt transform is scheduled on
the raw tables it reads. URIs are identifiers, not connection strings (no
credentials): ``postgres://warehouse:5432/<db>/<schema>/<table>``.
"""

from __future__ import annotations

from airflow.sdk import Asset

from loaders import sales_api
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

RAW_SALES: dict[str, Asset] = {
    spec.table: Asset(
        name=f"{sales_api.RAW_SCHEMA}.{spec.table}",
        uri=f"postgres://warehouse:5432/warehouse/{sales_api.RAW_SCHEMA}/{spec.table}",
    )
    for spec in sales_api.FILES.values()
}
