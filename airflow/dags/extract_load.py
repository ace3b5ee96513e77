"""Airflow: one extract-load DAG per source in ``pipelines.SOURCES``: its steps as tasks.

``extract_load_mongo``: one task per collection, each landing what is new
since its watermark and emitting its raw table. ``extract_load_sales_api``:
the partner API's report steps, generate_report -> get_report (a sensor) -> get_increment
-> check_files -> load. Each run is for one day, once the source holds it
(``include/clock.py``).
"""

from __future__ import annotations

from include.extract_load import extract_load_dag
from pipelines import SOURCES

for source in SOURCES:
    globals()[f"extract_load_{source.name}"] = extract_load_dag(source)
