"""``python -m loaders.ops``: keep the last dbt invocation's artifacts in ``raw_ops``.

``make dbt`` and ``make dbt-build`` run it after dbt (``make run`` and Airflow
land their own). Landing the same folder twice adds nothing.

python -m loaders.ops                       # DBT_TARGET_PATH, on DBT_TARGET
python -m loaders.ops --target-dir D --target clickhouse
python -m loaders.ops --dbt-args "build --target ci"   # where those dbt args wrote
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from config import ConfigError, DbtSettings, HealthSettings, redact
from loaders.ops.artifacts import keep

DBT_FLAGS = ("--target", "-t", "--target-path")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loaders.ops", description=__doc__)
    parser.add_argument("--target-dir", type=Path, help="a dbt target folder")
    parser.add_argument("--target", help="the profile target it ran on")
    parser.add_argument("--dbt-args", default="", help="the dbt command line it ran (make dbt)")
    args = parser.parse_args(argv)
    ran = shlex.split(args.dbt_args)
    given = {flag: ran[i + 1] for i, flag in enumerate(ran[:-1]) if flag in DBT_FLAGS}
    try:
        if not HealthSettings.from_env().enabled:
            return 0
        dbt = DbtSettings.from_env()
        said = keep(
            args.target_dir or Path(given.get("--target-path") or dbt.target_path),
            args.target or given.get("--target") or given.get("-t") or dbt.target,
            os.environ.get("DBT_LOGICAL_DATE"),
        )
    except ConfigError as exc:
        print(f"loaders.ops: {redact(str(exc))}", file=sys.stderr)
        return 1
    print(redact(said), file=sys.stderr if said.startswith("warning:") else sys.stdout)
    return 1 if said.startswith("warning:") else 0


if __name__ == "__main__":
    sys.exit(main())
