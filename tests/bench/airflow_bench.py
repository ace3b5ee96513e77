"""A Cosmos transform DAG under Airflow's real scheduler against `dbt build` of the same models.

``python -m tests.bench.airflow_bench`` builds a throwaway stack, writes and
builds ``--days`` days of history with ``make run``, then, for each Cosmos
execution mode (``watcher``: one `dbt build` watched by a task per model
and per model's tests; ``local``: a dbt process per model task), starts
`make airflow` with every DAG paused, unpauses and triggers only
``dbt_transform_<tag>``, and times each run from its start to its end: a
first run, then ``--runs`` more. The baseline is ``dbt build --select
tag:<tag>`` on the same data (no unit tests, as the DAG and `make run`'s
daily build), in a process of its own as a user would run it, timed after
each measured run.

Prints each mode's median DAG time and its ratio to the baseline's median
(goal: at most 1.3), and the first run's time against the same baseline
(goal: at most 1.5; `make airflow` seeds Cosmos's cache with its dbt parse).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from config import DBT_PROJECT_DIR, PROFILES_DIR
from tests.bench.airflow_stack import AirflowStack
from tests.bench.scaling_bench import Stack
from tests.bench.summary import record

GOAL = 1.3  # a day's run under the scheduler against dbt build of the same models
FIRST_RUN_GOAL = 1.5  # the first run after `make airflow` starts (Cosmos's cache seeded)


def dbt_build_seconds(stack: Stack, tag: str) -> float:
    dbt = str(Path(sys.executable).parent / "dbt")
    # Through config.env_file, as `make dbt` runs it: dbt's profile reads an empty
    # WAREHOUSE_PASSWORD, and the embedded server's own is filled in there.
    seconds, _ = stack.run_command(
        [sys.executable, "-m", "config.env_file", "--", dbt, "build", "--select", f"tag:{tag}",
         "--exclude-resource-type", "unit_test",
         "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(PROFILES_DIR),
         "--target-path", str(stack.folder / "target"), "--quiet"]
    )  # fmt: skip
    return seconds


def dag_runs(
    stack: Stack, mode: str, tag: str, runs: int, timeline: bool
) -> tuple[float, list[float], list[float]]:
    """``dbt_transform_<tag>`` alone under the scheduler, in ``mode``, run ``runs`` + 1 times.

    Returns (the first run's seconds, the next runs' seconds, the baseline's
    seconds timed between them). The first run pays what only a first run
    does (Cosmos caches dbt's parse for the next ones); the next ones are a
    day's run. Each baseline runs while Airflow idles between two runs.
    """
    airflow = AirflowStack(
        stack,
        AIRFLOW_DBT_EXECUTION_MODE=mode,
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
    )
    dag_id = f"dbt_transform_{tag}"
    seconds: list[float] = []
    baseline: list[float] = []
    try:
        airflow.start()
        # Every DAG paused (a fresh one is created so; a known one may not be).
        airflow.airflow("dags", "pause", "--treat-dag-id-as-regex", "-y", ".*")
        airflow.airflow("dags", "unpause", dag_id)
        for n in range(runs + 1):
            run = airflow.trigger(dag_id)
            if run.state != "success" or run.seconds is None:
                raise SystemExit(f"{dag_id} failed in {mode} mode: {airflow.retried_or_failed()}")
            seconds.append(run.seconds or 0.0)
            print(f"  run {n}: {seconds[-1]:.1f}s", flush=True)
            if timeline and n in (0, runs):  # the first run after a start, and the last
                for task, state, start, end in airflow.timeline(dag_id, run.run_id):
                    print(f"    {start:6.1f}s {end:6.1f}s  {state:8} {task}")
            if n:
                baseline.append(dbt_build_seconds(stack, tag))
    finally:
        airflow.stop()
    return seconds[0], seconds[1:], baseline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="airflow_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7, help="days of history (7)")
    parser.add_argument("--datagen-scale", type=float, default=1.0, help="DATAGEN_SCALE (1.0)")
    parser.add_argument("--tag", default="mongo", help="the transform measured (mongo)")
    parser.add_argument("--modes", default="watcher,local", help="Cosmos execution modes")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per mode (3)")
    parser.add_argument("--timeline", action="store_true", help="print each task's start and end")
    parser.add_argument("--keep", action="store_true", help="leave the stack and servers up")
    args = parser.parse_args(argv)
    stack = Stack.create(args.days, args.datagen_scale)
    results = {}
    try:
        print(f"writing and building {args.days} days of history ...", flush=True)
        stack.make_run()
        for mode in args.modes.split(","):
            print(f"dbt_transform_{args.tag} under the scheduler, {mode} mode ...", flush=True)
            results[mode] = dag_runs(stack, mode, args.tag, args.runs, args.timeline)
    finally:
        stack.down(args.keep)
    print()
    print(f"== Airflow bench: dbt_transform_{args.tag}, {args.days} days of history, "
          f"median of {args.runs} runs ==")  # fmt: skip
    for mode, (first, runs, baseline) in results.items():
        dag, base = statistics.median(runs), statistics.median(baseline)
        print(f"dbt build --select tag:{args.tag}: {base:.1f}s "
              f"(runs {', '.join(f'{b:.1f}s' for b in baseline)})")  # fmt: skip
        print(f"dbt_transform_{args.tag} ({mode}): {dag:.1f}s "
              f"(runs {', '.join(f'{r:.1f}s' for r in runs)}; first after start {first:.1f}s)   "
              f"ratio DAG/dbt build {dag / base:.2f}")  # fmt: skip
        # The goals are the default mode's; the other is printed for comparison.
        default = mode == "watcher"
        record(f"Cosmos DAG ({mode}) / dbt build", dag / base, "x",
               goal=GOAL if default else None, direction="lower")  # fmt: skip
        record(f"Cosmos DAG ({mode}), first run after a start / dbt build", first / base, "x",
               goal=FIRST_RUN_GOAL if default else None, direction="lower")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
