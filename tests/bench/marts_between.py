"""``python -m tests.bench.marts_between OLD NEW``: do two revisions build the same marts?

For a refactor that must not change data: clones the repository at each
revision into a temporary folder, runs ``make run`` there ``--runs`` times
(the first history, then a day each) on free ports, and compares every mart
table row by row (bookkeeping columns left out, ``tests.bench.marts``).
Prints the tables, their rows and any difference; exits 1 when they differ.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from config import PROJECT_ROOT
from tests.bench.marts import marts
from tests.conftest import free_port

PORTS = ("WAREHOUSE_PORT", "MONGO_PORT", "SALES_API_PORT", "KAFKA_PORT", "CLICKHOUSE_PORT")


def stack_env(folder: Path) -> dict[str, str]:
    port = {name: str(free_port()) for name in PORTS}
    return {
        **os.environ,
        "DATA_DIR": str(folder / ".local"),
        "WAREHOUSE_PORT": port["WAREHOUSE_PORT"],
        "OLTP_PORT": port["WAREHOUSE_PORT"],
        "MONGO_URI": f"mongodb://127.0.0.1:{port['MONGO_PORT']}",
        "SALES_API_URL": f"http://127.0.0.1:{port['SALES_API_PORT']}",
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port['KAFKA_PORT']}",
        "CLICKHOUSE_PORT": port["CLICKHOUSE_PORT"],
    }


def build(revision: str, root: Path, runs: int) -> dict[str, list[str]]:
    folder = root / revision.replace("/", "_")
    subprocess.run(["git", "clone", "-q", str(PROJECT_ROOT), str(folder)], check=True)
    subprocess.run(["git", "checkout", "-q", revision], cwd=folder, check=True)
    env = stack_env(folder)
    try:
        for n in range(runs):
            print(f"{revision}: make run {n + 1}/{runs}", file=sys.stderr, flush=True)
            proc = subprocess.run(["make", "run"], cwd=folder, env=env, capture_output=True)
            if proc.returncode != 0:
                sys.exit(f"{revision}: make run failed:\n{proc.stderr.decode()[-2000:]}")
        return marts(env)
    finally:
        subprocess.run(["make", "down"], cwd=folder, env=env, capture_output=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("old")
    parser.add_argument("new", nargs="?", default="HEAD")
    parser.add_argument("--runs", type=int, default=2, help="make runs per revision")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="marts-between-") as tmp:
        old = build(args.old, Path(tmp), args.runs)
        new = build(args.new, Path(tmp), args.runs)
    differ = sorted(t for t in set(old) | set(new) if old.get(t) != new.get(t))
    for table in sorted(set(old) | set(new)):
        mark = "DIFFERS" if table in differ else "same"
        print(
            f"  marts.{table:<32}{len(old.get(table, [])):>8,}{len(new.get(table, [])):>8,}  {mark}"
        )
    total = sum(map(len, new.values()))
    print(f"{len(new)} mart tables, {total:,} rows: " + ("the same" if not differ else "DIFFER"))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
