"""``python -m loaders.ops``: keep the last dbt invocation's artifacts in ``raw_ops``.

``make dbt`` and ``make dbt-build`` run it after dbt (``make run`` and Airflow
land their own). Landing the same folder twice adds nothing.

python -m loaders.ops                       # DBT_TARGET_PATH, on DBT_TARGET
python -m loaders.ops --target-dir D --target clickhouse
python -m loaders.ops --dbt-args "build --target ci"   # where those dbt args wrote
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from config import ConfigError, redact
from loaders.ops.artifacts import keep_invocation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loaders.ops", description=__doc__)
    parser.add_argument("--target-dir", type=Path, help="a dbt target folder")
    parser.add_argument("--target", help="the profile target it ran on")
    parser.add_argument("--dbt-args", default="", help="the dbt command line it ran (make dbt)")
    args = parser.parse_args(argv)
    try:
        said = keep_invocation(shlex.split(args.dbt_args), args.target_dir, args.target)
    except ConfigError as exc:
        print(f"loaders.ops: {redact(str(exc))}", file=sys.stderr)
        return 1
    if said is None:  # HEALTH_ENABLED=false
        return 0
    print(redact(said), file=sys.stderr if said.startswith("warning:") else sys.stdout)
    return 1 if said.startswith("warning:") else 0


if __name__ == "__main__":
    sys.exit(main())
