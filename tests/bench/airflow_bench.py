"""A Cosmos transform DAG under Airflow's real scheduler against `dbt build` of the same models.

``python -m tests.bench.airflow_bench`` builds a throwaway stack, writes and
builds ``--days`` days of history with ``make run``, then, for each Cosmos
execution mode (``local``: a dbt process per model task; ``watcher``: one
`dbt build` watched by a task per model and per model's tests), starts
`make airflow` with every DAG paused, unpauses and triggers only
``dbt_transform_<tag>``, and times the run from its start to its end. The
baseline is ``dbt build --select tag:<tag>`` on the same data, timed before
and after (the mean), in a process of its own as a user would run it.

Prints each mode's DAG time and its ratio to the baseline (issue 11's
target: 1.5 or less).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from config import DBT_PROJECT_DIR, PROFILES_DIR
from tests.bench.airflow_stack import AirflowStack
from tests.bench.scaling_bench import Stack


def dbt_build_seconds(stack: Stack, tag: str) -> float:
    dbt = str(Path(sys.executable).parent / "dbt")
    seconds, _ = stack.run_command(
        [dbt, "build", "--select", f"tag:{tag}", "--exclude-resource-type", "unit_test",
         "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(PROFILES_DIR),
         "--target-path", str(stack.folder / "target"), "--quiet"]
    )  # fmt: skip
    return seconds


def dag_seconds(stack: Stack, mode: str, tag: str, timeline: bool = False) -> float:
    """One manual run of ``dbt_transform_<tag>`` alone under the scheduler, in ``mode``."""
    airflow = AirflowStack(
        stack,
        AIRFLOW_DBT_EXECUTION_MODE=mode,
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
    )
    dag_id = f"dbt_transform_{tag}"
    try:
        airflow.start()
        # Every DAG paused (a fresh one is created so; a known one may not be).
        airflow.airflow("dags", "pause", "--treat-dag-id-as-regex", "-y", ".*")
        airflow.airflow("dags", "unpause", dag_id)
        before = {r.run_id for r in airflow.runs() if r.dag_id == dag_id}
        airflow.airflow("dags", "trigger", dag_id)
        ours = lambda runs: [r for r in runs if r.dag_id == dag_id and r.run_id not in before]  # noqa: E731
        airflow.wait_until(
            lambda runs: any(r.state in ("success", "failed") for r in ours(runs)),
            1800,
            f"{dag_id} in {mode} mode",
        )
        [run] = ours(airflow.runs())
        if run.state != "success":
            raise SystemExit(f"{dag_id} failed in {mode} mode: {airflow.retried_or_failed()}")
        assert run.seconds is not None
        if timeline:
            for task, state, start, end in airflow.timeline(dag_id, run.run_id):
                print(f"    {start:6.1f}s {end:6.1f}s  {state:8} {task}")
        return run.seconds
    finally:
        airflow.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="airflow_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7, help="days of history (7)")
    parser.add_argument("--datagen-scale", type=float, default=1.0, help="DATAGEN_SCALE (1.0)")
    parser.add_argument("--tag", default="mongo", help="the transform measured (mongo)")
    parser.add_argument("--modes", default="local,watcher", help="Cosmos execution modes")
    parser.add_argument("--timeline", action="store_true", help="print each task's start and end")
    parser.add_argument("--keep", action="store_true", help="leave the stack and servers up")
    args = parser.parse_args(argv)
    stack = Stack.create(args.days, args.datagen_scale)
    try:
        print(f"writing and building {args.days} days of history ...", flush=True)
        stack.make_run()
        baseline = [dbt_build_seconds(stack, args.tag)]
        dags = {}
        for mode in args.modes.split(","):
            print(f"dbt_transform_{args.tag} under the scheduler, {mode} mode ...", flush=True)
            started = time.monotonic()
            dags[mode] = dag_seconds(stack, mode, args.tag, args.timeline)
            print(f"  {dags[mode]:.1f}s ({time.monotonic() - started:.0f}s with start and stop)")
        baseline.append(dbt_build_seconds(stack, args.tag))
    finally:
        stack.down(args.keep)
    base = sum(baseline) / len(baseline)
    print()
    print(f"== Airflow bench: dbt_transform_{args.tag}, {args.days} days of history ==")
    print(f"dbt build --select tag:{args.tag}: {base:.1f}s "
          f"(runs {', '.join(f'{b:.1f}s' for b in baseline)})")  # fmt: skip
    for mode, seconds in dags.items():
        print(f"dbt_transform_{args.tag} ({mode}): {seconds:.1f}s   "
              f"ratio DAG/dbt build {seconds / base:.1f} (target <= 1.5)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
