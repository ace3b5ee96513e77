"""Two simulated days under Airflow's real scheduler, against `make run` for the same days.

``python -m tests.bench.airflow_days`` builds two throwaway stacks from the
same seed, start date and scale. In one, ``make airflow`` runs on free ports:
``simulate_day`` plays the history's first day when Airflow starts and the
next day when triggered, and data-aware scheduling runs every loader,
transform and the report for each. In the other, ``make run`` runs twice.
It prints each DAG's runs per day and their times, and fails unless:

- every day-processing DAG ran exactly once per day, its partition key
  naming the day, and succeeded;
- no task needed a retry or failed;
- the marts hold the same rows as `make run`'s (bookkeeping columns aside:
  load and build times, snapshot validity, loader batch ids); with
  ``--reference-marts FILE``, `make run`'s marts are read from the file
  another process saved for the same days, seed and size (the bench tier's
  scaling bench runs exactly those), not built again here;
- then, with one model broken on purpose (its raw table loses the column it
  reads), a run of its transform fails loudly: the model's own task and the
  dbt build fail, both logs name the model, and the unrelated models still
  build.

The test ``tests/bench/test_airflow_scheduler.py`` runs it at a tiny size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import psycopg

from tests.bench.airflow_stack import AirflowStack, Run
from tests.bench.marts import marts, wait_for, warehouse_conninfo
from tests.bench.scaling_bench import Stack
from tests.dag_ids import DAY_DAGS


def day_runs(runs: list[Run], day: str) -> dict[str, list[Run]]:
    found: dict[str, list[Run]] = {d: [] for d in DAY_DAGS}
    for run in runs:
        if run.dag_id in found and run.day == day:
            found[run.dag_id].append(run)
    return found


def day_done(airflow: AirflowStack, day: str):
    """Every day DAG has a finished run for ``day``; a failed run ends the wait at once,
    naming its failed tasks with the end of their logs (the stack is removed after)."""

    def done(runs: list[Run]) -> bool:
        failed = [r for r in runs if r.state == "failed"]
        if failed:
            raise AssertionError("\n".join(airflow.failure(r) for r in failed))
        return all(any(r.state == "success" for r in rs) for rs in day_runs(runs, day).values())

    return done


# The model broken on purpose after the two days, and how: its raw table loses
# the column it reads (its source's own tests still pass).
BROKEN_MODEL = "stg_mongo__moderation_queue"
BREAK = "alter table raw_mongo.moderation_queue rename column doc to doc_gone"


def broken_model_run(airflow: AirflowStack) -> dict:
    """``dbt_transform_mongo`` run once with BROKEN_MODEL failing: what failed, and said so."""
    with psycopg.connect(warehouse_conninfo(airflow.stack.env), autocommit=True) as conn:
        conn.execute(BREAK)
    dag_id = "dbt_transform_mongo"
    run = airflow.trigger(dag_id, timeout=600)
    states = airflow.task_states(dag_id, run.run_id)
    logs = airflow.stack.folder / "data" / "airflow" / "logs" / f"dag_id={dag_id}"
    said = {
        task: " ".join(p.read_text(errors="replace") for p in logs.glob(f"*/task_id={task}/*.log"))
        for task in ("dbt_producer_watcher", f"{BROKEN_MODEL}.run")
    }
    with psycopg.connect(warehouse_conninfo(airflow.stack.env)) as conn:
        alerted = conn.execute(
            "select alert_key from reporting.health_alerts where kind = 'task_failed' order by 1"
        ).fetchall()
        # Every Cosmos task's dbt invocation kept its artifacts (the build just failed too).
        kept = conn.execute(
            "select count(*), count(*) filter (where not success) from raw_ops.dbt_invocations"
        ).fetchone()
    # Then the hourly platform health DAG, triggered: the ops views and their alerts.
    health = airflow.trigger("platform_health", timeout=600)
    return {
        "state": run.state,
        "failed": sorted(t for t, s in states.items() if s == "failed"),
        "succeeded": sorted(t for t, s in states.items() if s == "success"),
        "named": sorted(t for t, text in said.items() if BROKEN_MODEL in text),
        "alerted": [key for (key,) in alerted],
        "kept": kept,
        "health": health.state,
    }


def make_run_marts(airflow_stack: Stack, reference_marts: Path | None, keep: bool) -> dict:
    """`make run`'s marts for the same two days: read from ``reference_marts``
    (another process's stack, e.g. the scaling bench's) when it holds them, or
    built here in a second stack."""
    if reference_marts is not None:
        saved = wait_for(reference_marts, airflow_stack.env, timeout=1800)
        if saved is not None:
            print(f"make run's marts for the same days: {reference_marts}", flush=True)
            return saved
    print("make run, twice, in the reference stack ...", flush=True)
    reference = Stack.create(1, float(airflow_stack.env["DATAGEN_SCALE"]))
    reference.env["DATAGEN_START_DATE"] = airflow_stack.env["DATAGEN_START_DATE"]
    try:
        reference.make_run()
        reference.make_run()
        return marts(reference.env)
    finally:
        reference.down(keep)


def run_two_days(
    datagen_scale: float,
    execution_mode: str,
    keep: bool = False,
    reference_marts: Path | None = None,
    start: dt.date | None = None,
) -> dict:
    """Both stacks, both days; returns what the checks need (see the module docstring)."""
    # One day of history, then one more: from ``start``, else yesterday and the day before.
    airflow_stack = Stack.create(1, datagen_scale, start=start)
    airflow = AirflowStack(
        airflow_stack,
        # One tick when Airflow starts; the second day is triggered by hand.
        AIRFLOW_SIMULATE_CRON="0 0 1 1 *",
        # Platform health is triggered once, at the end (broken_model_run).
        AIRFLOW_HEALTH_CRON="0 0 1 1 *",
        AIRFLOW_DBT_EXECUTION_MODE=execution_mode,
        # The DAG files do not change during the run: parsed when Airflow
        # starts, not again every 30 s (a core's tenth, beside the runs).
        AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="3600",
    )
    result: dict = {"days": []}
    try:
        started = time.monotonic()
        result["start_seconds"] = airflow.start()
        print(f"Airflow up in {result['start_seconds']:.0f}s; first day ...", flush=True)
        airflow.wait_until(lambda runs: any(r.day for r in runs), 300, "the first day's runs")
        day1 = next(r.day for r in airflow.runs() if r.day)
        airflow.wait_until(day_done(airflow, day1), 1800, f"day {day1}")
        result["days"].append(day1)
        result[day1] = time.monotonic() - started
        print(f"{day1} done after {result[day1]:.0f}s; the next day ...", flush=True)
        airflow.airflow("dags", "trigger", "simulate_day")
        started = time.monotonic()
        keys = lambda runs: sorted({r.day for r in runs if r.day})  # noqa: E731
        airflow.wait_until(lambda runs: len(keys(runs)) > 1, 600, "the second day's runs")
        day2 = keys(airflow.runs())[-1]
        airflow.wait_until(day_done(airflow, day2), 1800, f"day {day2}")
        result["days"].append(day2)
        result[day2] = time.monotonic() - started
        print(f"{day2} done after {result[day2]:.0f}s", flush=True)
        result["runs"] = airflow.runs()
        result["retried_or_failed"] = airflow.retried_or_failed()
        result["airflow_marts"] = marts(airflow_stack.env)
        if execution_mode == "watcher":  # the default; its task ids are checked
            print("a transform with a broken model ...", flush=True)
            result["broken"] = broken_model_run(airflow)
        airflow.stop()
        result["make_run_marts"] = make_run_marts(airflow_stack, reference_marts, keep)
    finally:
        airflow.stop()
        airflow_stack.down(keep)
    return result


def broken_model_problems(broken: dict | None) -> list[str]:
    """Print the broken model's run (watcher mode); return what is wrong."""
    if broken is None:
        return []
    problems: list[str] = []
    print(f"== a broken {BROKEN_MODEL}: the run {broken['state']} ==")
    print(f"  failed: {', '.join(broken['failed'])}")
    print(f"  named in the log of: {', '.join(broken['named'])}")
    print(f"  succeeded beside it: {len(broken['succeeded'])} tasks")
    print(f"  failure alerts: {len(broken['alerted'])} ({'; '.join(broken['alerted'])})")
    print(f"  platform_health then: {broken['health']}")
    print(f"  dbt invocations kept in raw_ops: {broken['kept'][0]}, failed: {broken['kept'][1]}")
    loud = {"dbt_producer_watcher", f"{BROKEN_MODEL}.run"}
    if broken["state"] != "failed" or not loud <= set(broken["failed"]):
        problems.append(f"the broken model did not fail its task and the build: {broken}")
    if set(broken["named"]) != loud:
        problems.append(f"the broken model is not named in both logs: {broken['named']}")
    # One bad model does not stop the others: the unrelated staging models built.
    # One alert per failed task, each sent once (reporting.health_alerts).
    alerted_tasks = sorted(key.split("/")[1] for key in broken["alerted"])
    if alerted_tasks != broken["failed"]:
        problems.append(f"failed tasks {broken['failed']} alerted as {broken['alerted']}")
    if broken["kept"][0] < 2 or broken["kept"][1] < 1:
        problems.append(f"the dbt invocations were not kept (kept, failed): {broken['kept']}")
    if broken["health"] != "success":
        problems.append(f"platform_health ended {broken['health']}")
    if "stg_mongo__support_tickets.run" not in broken["succeeded"]:
        problems.append(f"a broken model stopped the unrelated ones: {broken}")
    return problems


def report(result: dict) -> list[str]:
    """Print the runs per day; return what is wrong (empty: all checks passed)."""
    problems: list[str] = []
    for day in result["days"]:
        print(f"== {day}: {result[day]:.0f}s from the clock's tick to the last run ==")
        for dag_id, runs in day_runs(result["runs"], day).items():
            times = ", ".join(f"{r.state} {r.seconds or 0:.0f}s" for r in runs)
            print(f"  {dag_id:<34}{times}")
            if [r.state for r in runs] != ["success"]:
                problems.append(f"{dag_id} for {day}: {[r.state for r in runs]}")
    unkeyed = {r.dag_id for r in result["runs"] if r.dag_id in DAY_DAGS and r.day is None}
    if unkeyed:
        problems.append(f"runs without a day: {sorted(unkeyed)}")
    if result["retried_or_failed"]:
        problems.append(f"retried or failed tasks: {result['retried_or_failed']}")
    problems += broken_model_problems(result.get("broken"))
    ours, theirs = result["airflow_marts"], result["make_run_marts"]
    if set(ours) != set(theirs):
        problems.append(f"marts differ in tables: {sorted(set(ours) ^ set(theirs))}")
    for table in sorted(set(ours) & set(theirs)):
        same = ours[table] == theirs[table]
        print(
            f"  marts.{table:<32}{len(ours[table]):>7} rows  {'= make run' if same else 'DIFFER'}"
        )
        if not same:
            problems.append(f"marts.{table} differs from make run's")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="airflow_days", description=__doc__.splitlines()[0])
    parser.add_argument("--datagen-scale", type=float, default=0.05, help="DATAGEN_SCALE (0.05)")
    parser.add_argument("--mode", default="watcher", choices=("watcher", "local"))
    parser.add_argument("--keep", action="store_true", help="leave the stacks and servers up")
    parser.add_argument(
        "--reference-marts", type=Path, metavar="FILE",
        help="make run's marts for the same days, saved by another run (scaling_bench --marts-out)",
    )  # fmt: skip
    parser.add_argument(
        "--first-day", type=dt.date.fromisoformat, metavar="YYYY-MM-DD",
        help="the first simulated day (default: the day before yesterday)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    result = run_two_days(
        args.datagen_scale, args.mode, args.keep, args.reference_marts, args.first_day
    )
    problems = report(result)
    for problem in problems:
        print(f"FAILED {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
