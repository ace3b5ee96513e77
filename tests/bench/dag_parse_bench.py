"""Parsing the DAG folder against `dbt ls`: what rendering from the manifest saves.

``python -m tests.bench.dag_parse_bench`` times, in interleaved rounds, two
fresh processes:

- the DAG folder filled into a ``DagBag``, with the settings `make airflow`
  gives its DAG processor, from a manifest `dbt parse` wrote once beforehand;
- ``dbt ls`` of the project: what Cosmos would run for every parse of every
  transform DAG with its ``dbt_ls`` load mode.

The figure (goal: at most 0.5) is the DagBag's fill, timed inside its
process once Airflow is imported, against the whole ``dbt ls`` process:
Airflow's DAG processor forks each file's parse from a process that has
Airflow imported already, so a parse pays the fill, while a Cosmos ``dbt_ls``
render pays a whole dbt process. The DagBag's whole process (Airflow's
import included) is printed beside it. No server is needed: neither opens a
connection.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from config import DBT_PROJECT_DIR, PROFILES_DIR, PROJECT_ROOT
from tests.bench.summary import record

REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
GOAL = 0.5
DAGBAG = """
import sys, time
from airflow.dag_processing.dagbag import DagBag
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
print(len(bag.dags), time.perf_counter() - started)
"""


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return seconds, proc.stdout


def main() -> int:
    dbt = str(Path(sys.executable).parent / "dbt")
    dbt_flags = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(PROFILES_DIR)]
    with tempfile.TemporaryDirectory(prefix="dag-parse-bench-") as tmp:
        folder = Path(tmp)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
            "AIRFLOW_HOME": str(folder / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__COSMOS__CACHE_DIR": str(folder / "cosmos-cache"),
            "AIRFLOW__COSMOS__ENABLE_ORJSON_PARSER": "True",  # as make airflow sets it
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "DBT_MANIFEST_PATH": str(folder / "target" / "manifest.json"),
            "PYTHONPATH": str(PROJECT_ROOT / "airflow"),
        }
        timed([dbt, "parse", *dbt_flags, "--target-path", str(folder / "target"), "--quiet"], env)
        dagbag_cmd = [sys.executable, "-c", DAGBAG, str(PROJECT_ROOT / "airflow" / "dags")]
        ls_cmd = [dbt, "ls", *dbt_flags, "--target-path", str(folder / "ls-target"), "--quiet"]
        timed(dagbag_cmd, env)  # once untimed: Airflow's first start writes its config
        fill: list[float] = []
        process: list[float] = []
        ls: list[float] = []
        for rep in range(REPEATS):
            seconds, out = timed(dagbag_cmd, env)
            dags, filled = out.strip().splitlines()[-1].split()
            process.append(seconds)
            fill.append(float(filled))
            ls.append(timed(ls_cmd, env)[0])
            print(f"  round {rep + 1}: DagBag of {dags} DAGs filled in {fill[-1]:.2f}s "
                  f"({process[-1]:.2f}s with Airflow's import), dbt ls {ls[-1]:.2f}s")  # fmt: skip
    base = statistics.median(ls)
    print()
    print(f"== DAG folder parse vs dbt ls, median of {REPEATS} ==")
    print(f"DagBag fill {statistics.median(fill):.2f}s, its whole process "
          f"{statistics.median(process):.2f}s, dbt ls {base:.2f}s")  # fmt: skip
    record("DAG folder parse / dbt ls", statistics.median(fill) / base, "x",
           goal=GOAL, direction="lower")  # fmt: skip
    record("DAG folder parse with Airflow's import / dbt ls",
           statistics.median(process) / base, "x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
