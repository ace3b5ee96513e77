"""Airflow's local-settings hook: every Airflow process imports this module at start.

In the scheduler it preloads dbt, its adapters, Cosmos and the pipelines'
code. The LocalExecutor forks each task from the scheduler, so every task
starts with them already imported instead of importing them itself (as
long again as importing Airflow, on this project's 2-core machines: see the
README's Airflow figures). Other processes (the CLI, the API server) import
nothing more.
"""

from __future__ import annotations

import sys

if sys.argv[1:2] == ["scheduler"]:
    import cosmos  # noqa: F401
    import dbt.adapters.clickhouse
    import dbt.adapters.postgres  # noqa: F401
    from dbt.cli.main import dbtRunner  # noqa: F401

    import pipelines  # noqa: F401
