"""Airflow: ``simulate_day``, the simulated source systems' clock (local runs and demos).

Each run writes the app's next day into every simulated system and starts that
day's loads. A deployment on real systems sets AIRFLOW_SIMULATE=false: this
DAG is gone and the loaders run on the wall clock's days.
"""

from __future__ import annotations

from include.clock import simulating
from include.extract_load import simulate_dag

if simulating():
    simulate_day = simulate_dag()
