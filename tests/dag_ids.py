"""The DAG ids Airflow should have, from the source registry by the DAG files' naming rule.

A source brings ``extract_load_<source>`` and ``dbt_transform_<tag>`` (one per
dbt tag: sources sharing a tag share it), plus ``dbt_transform_<tag>_<target>``
for each extra dbt target; a combined transform brings ``dbt_transform_<tag>``.
The rest are the platform's own. Written out here, not read from the DAG
factories, so a factory that drops or renames a source's DAG fails the tests.
"""

from __future__ import annotations

from pipelines import COMBINED_TRANSFORMS, SOURCES

# One run per logical day each (keyed by the day): every source's DAGs, and the report.
DAY_DAGS: tuple[str, ...] = tuple(
    dict.fromkeys(
        [f"extract_load_{s.name}" for s in SOURCES]
        + [f"dbt_transform_{s.dbt_tag}" for s in SOURCES]
        + [f"dbt_transform_{tag}" for tag in COMBINED_TRANSFORMS]
        + [
            f"dbt_transform_{s.dbt_tag}_{target}"
            for s in SOURCES
            for target in s.dbt_targets
            if target != "warehouse"
        ]
        + ["daily_report"]
    )
)
# Not per day: the simulation's clock, the 15-minute ClickHouse slices, the alerts
# after them, the hourly freshness check, the reconciliation of sources with raw and
# the hourly platform health models and alerts.
OTHER_DAGS = (
    "simulate_day",
    "dbt_anomalies_clickhouse",
    "anomaly_alerts",
    "dbt_source_freshness",
    "reconcile",
    "platform_health",
)
EXPECTED_DAGS = frozenset(DAY_DAGS + OTHER_DAGS)
