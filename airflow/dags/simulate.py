"""Airflow: one DAG per simulated source system: writes each logical day (local runs and demos).

A real deployment has the real systems and pauses or deletes these DAGs.
"""

from __future__ import annotations

from include.extract_load import simulate_dag
from pipelines import SOURCES

for source in SOURCES:
    if source.simulate is not None:
        globals()[f"simulate_{source.name}"] = simulate_dag(source)
