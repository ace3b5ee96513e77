"""The events dbt models: ClickHouse vs PostgreSQL, and an incremental day vs a full refresh.

``python -m tests.bench.events_dbt_bench`` starts a throwaway PostgreSQL and
a throwaway embedded ClickHouse on free ports, writes the events into
ClickHouse and lands them with the real loader. Times are dbt's own
execution times of the models (summed over the nodes built), not dbt's
start-up and parse (about 5 s per invocation, the same on both sides); each
figure is the median of BENCH_REPEATS runs, the two sides interleaved.

1. **feed_dimension_daily for one day at BENCH_EVENTS_SCALE** (default 10:
   about 1M feed actions and 100k messages): ``dbt run --full-refresh
   --select +feed_dimension_daily`` (staging views, the per-user day, the
   users' first sightings, the mart) on each target. Ratio: PostgreSQL time
   / ClickHouse time.
2. **An incremental day vs a full refresh** at BENCH_EVENTS_DAYS days of
   history (default 30) at BENCH_EVENTS_HISTORY_SCALE (default 1): every
   events model built, one new day landed, then ``dbt run --select
   tag:events`` incremental (the new day and the lookback day) vs ``--full-refresh``
   of the same data, on both targets. Ratio: full refresh / incremental;
   the summary (tests.bench.summary) keeps incremental / full refresh per
   target, goal at most 0.5 (an incremental day worth having).

Smoke test: BENCH_EVENTS_SCALE=0.05 BENCH_EVENTS_DAYS=3
BENCH_EVENTS_HISTORY_SCALE=0.05 BENCH_REPEATS=1.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
from pathlib import Path

import psycopg

from config import DBT_PROJECT_DIR, PROFILES_DIR, DbtSettings
from datagen import events_writer
from datagen.population import Population
from loaders.events.job import load_day
from loaders.events.settings import ClickHouseSettings
from stack.embedded_postgres import EmbeddedPostgres
from tests.bench.servers import warehouse_and_clickhouse
from tests.bench.summary import record

SCALE = float(os.environ.get("BENCH_EVENTS_SCALE", "10"))
DAYS = int(os.environ.get("BENCH_EVENTS_DAYS", "30"))
HISTORY_SCALE = float(os.environ.get("BENCH_EVENTS_HISTORY_SCALE", "1"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
START = dt.date(2026, 10, 1)
TARGETS = ("warehouse", "clickhouse")
ENGINES = {"warehouse": "postgres", "clickhouse": "clickhouse"}


def dbt_seconds(args: list[str], target: str, logs: Path, day: dt.date | None = None) -> float:
    """Run dbt in-process for ``day`` (None: the latest in the data); the summed
    execution time of the nodes it ran.

    The day goes by environment, as make run gives it (a ``--vars`` change
    re-parses the whole project), and each target and schema prefix keeps a
    target dir of its own, so partial parsing carries over between runs.
    """
    from dbt.cli.main import dbtRunner

    os.environ["DBT_LOGICAL_DATE"] = day.isoformat() if day else ""
    target_path = logs / f"target-{target}-{os.environ['DBT_SCHEMA_PREFIX']}"
    res = dbtRunner().invoke(
        [*args, "--target", DbtSettings.from_env().target_for(target),
         "--project-dir", str(DBT_PROJECT_DIR),
         "--profiles-dir", str(PROFILES_DIR), "--target-path", str(target_path),
         "--log-path", str(logs), "--quiet"],
    )  # fmt: skip
    if not res.success:
        failed = [r.message for r in getattr(res.result, "results", []) if r.status != "success"]
        raise SystemExit(f"dbt {' '.join(args)} on {target} failed: {failed or res.exception}")
    return sum(r.execution_time for r in res.result.results)


def write_days(settings: ClickHouseSettings, population: Population, days: list[dt.date]) -> int:
    client = events_writer.client(settings)
    try:
        rows = 0
        for day in days:
            rows += sum(events_writer.write_day(client, population, day, incidents=()).values())
            load_day(day)
        return rows
    finally:
        client.close()


def median(values: list[float]) -> float:
    return statistics.median(values)


def run(pg: EmbeddedPostgres, logs: Path) -> int:
    settings = ClickHouseSettings.from_env()

    # 1. One day at SCALE: the same models on both adapters.
    os.environ["DBT_SCHEMA_PREFIX"] = "scale_"
    day = START
    print(f"writing and landing {day} at scale {SCALE:g} ...", flush=True)
    rows = write_days(settings, Population(42, SCALE, START), [day])
    select = ["run", "--full-refresh", "--select", "+feed_dimension_daily"]
    one_day: dict[str, list[float]] = {t: [] for t in TARGETS}
    for rep in range(REPEATS):
        for target in TARGETS:
            one_day[target].append(dbt_seconds(select, target, logs, day))
        print(
            f"  round {rep + 1}: PostgreSQL {one_day['warehouse'][-1]:.2f}s, "
            f"ClickHouse {one_day['clickhouse'][-1]:.2f}s",
            flush=True,
        )

    # 2. History, then one more day: incremental vs full refresh.
    os.environ["DBT_SCHEMA_PREFIX"] = "history_"
    os.environ["CLICKHOUSE_DB"] = "events_history"
    settings = ClickHouseSettings.from_env()
    with psycopg.connect(pg.conninfo("bench"), autocommit=True) as conn:
        # The history's own raw tables and watermarks.
        conn.execute("drop schema if exists raw_events cascade")
        conn.execute("drop schema if exists loader cascade")
    history = [START + dt.timedelta(days=k) for k in range(DAYS)]
    new_day = history[-1] + dt.timedelta(days=1)
    print(f"writing and landing {DAYS} days at scale {HISTORY_SCALE:g} ...", flush=True)
    population = Population(42, HISTORY_SCALE, START)
    history_rows = write_days(settings, population, history)
    for target in TARGETS:
        dbt_seconds(["run", "--full-refresh", "--select", "tag:events"], target, logs)
    new_rows = write_days(settings, population, [new_day])
    build = ["run", "--select", "tag:events"]
    incremental: dict[str, list[float]] = {t: [] for t in TARGETS}
    full: dict[str, list[float]] = {t: [] for t in TARGETS}
    for rep in range(REPEATS):
        for target in TARGETS:
            incremental[target].append(dbt_seconds(build, target, logs, new_day))
            full[target].append(dbt_seconds([*build, "--full-refresh"], target, logs, new_day))
        print(
            f"  round {rep + 1}: "
            + ", ".join(
                f"{t} incremental {incremental[t][-1]:.2f}s full {full[t][-1]:.2f}s"
                for t in TARGETS
            ),
            flush=True,
        )

    pg_s, ch_s = median(one_day["warehouse"]), median(one_day["clickhouse"])
    print()
    print(
        f"== events dbt bench: model execution time (dbt start-up excluded), median of {REPEATS} =="
    )
    print(
        f"feed_dimension_daily, one day at scale {SCALE:g} ({rows:,} events): "
        f"PostgreSQL {pg_s:.2f}s, ClickHouse {ch_s:.2f}s: ratio PostgreSQL/ClickHouse "
        f"{pg_s / ch_s:.2f}"
    )
    record(
        f"feed_dimension_daily, one day at scale {SCALE:g}, PostgreSQL / ClickHouse time",
        pg_s / ch_s,
    )
    for target in TARGETS:
        inc, fr = median(incremental[target]), median(full[target])
        print(
            f"{target:<10} events models, {DAYS} days of history ({history_rows:,} events) "
            f"+ 1 day ({new_rows:,}): incremental {inc:.2f}s, full refresh {fr:.2f}s: "
            f"ratio full/incremental {fr / inc:.1f}"
        )
        # An incremental day is worth having only when it costs well under a
        # full refresh of the same history: the goal is at most half.
        record(
            f"{ENGINES[target]} events models, incremental / full refresh at {DAYS} days",
            inc / fr,
            unit="x",
            goal=0.5,
            direction="lower",
        )
    return 0


def main() -> int:
    with warehouse_and_clickhouse("bench-events-dbt-") as (pg, folder):
        os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
        logs = folder / "dbt"
        logs.mkdir()
        return run(pg, logs)


if __name__ == "__main__":
    sys.exit(main())
