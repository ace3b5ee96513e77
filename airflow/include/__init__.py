"""The code the DAGs import (Astronomer's ``include/`` beside ``dags/``).

DAG files stay wiring and configuration; what a task does lives in the
project's packages (``pipelines``, ``loaders``), which never import Airflow.
"""
