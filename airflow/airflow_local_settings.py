"""Airflow's local-settings hook: every Airflow process imports this module at start.

In the scheduler it preloads dbt, its adapters, Cosmos and the pipelines'
code. The LocalExecutor forks each task from the scheduler, so every task
starts with them already imported instead of importing them itself (as
long again as importing Airflow, on this project's 2-core machines: see the
README's Airflow figures). The DAG processor forks a process per file it
parses, and Airflow 3.3 asks it to parse a task's file again whenever a
task ends in the triggerer (to run callbacks the task may have): it
preloads Cosmos and the pipelines' code, 45 % of a parse of
dbt_transform.py (2.5 s of a core). Other processes (the CLI, the API server) import nothing
more.
"""

from __future__ import annotations

import sys

if sys.argv[1:2] == ["scheduler"]:
    import cosmos
    import dbt.adapters.clickhouse
    import dbt.adapters.postgres  # noqa: F401
    from dbt.cli.main import dbtRunner  # noqa: F401

    import pipelines
elif sys.argv[1:2] == ["dag-processor"]:
    import cosmos.converter
    import cosmos.operators.watcher  # noqa: F401

    import pipelines  # noqa: F401
