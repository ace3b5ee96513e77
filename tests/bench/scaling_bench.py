"""Does an incremental day stay incremental as history grows?

``python -m tests.bench.scaling_bench [--days 7] [--scale 10]`` builds one
throwaway copy of the whole local stack (every embedded server on free
ports, in a temporary DATA_DIR) and times one incremental day twice as its
history grows: the first ``python -m stack.run`` writes and builds
``--days`` days of simulated history, the next one is the day measured at
1x; then the history grows to ``--days * --scale`` days (the days between
written at once and landed and built by one ``stack.run``), and the next
``stack.run`` is the day measured at 10x. Both measured days are the same
kind of one new day, so their cost should not depend on how much history
lies behind them. Before each, the warehouse is vacuumed and analysed, as
autovacuum would have done for a history grown a day at a time. (One stack
rather than one per size: the 1x history is the first part of the 10x one,
and building it twice was a third of the bench's time.)

Printed figures (both sizes measured in this run, so the ratios hold on a
busy machine):

- **make run, one new day at 10x / at 1x**, end to end (target <= 1.3);
- **the load step alone** (every loader, one day), 10x / 1x (target <= 1.3);
- the warehouse's **dbt build**, 10x / 1x;
- the rows the warehouse read during the day (full scans, index reads) at
  both sizes: work that grows with history shows there first, while dbt's
  fixed cost per node still hides it in the seconds;
- **the daily report** (``python -m reports daily``) after the 1x day, a
  process of its own: drawn and written again, then already delivered;
- **the reconciliation of every source** (``python -m loaders reconcile``) at
  both sizes: its cost grows with the partitions (days, key ranges), and the
  servers' work with the rows they count and hash;
- at 10x: **a full refresh / the incremental day** of ``dbt build`` on the
  warehouse (target >= 5), and the same for the ClickHouse target; with the
  full refresh after the 1x day too, the history size where that ratio
  would reach 5 and 10 (a straight line through both full refreshes, the
  day's cost taken as constant).

``--marts-out FILE`` saves the marts after the 1x day: ``--days`` + 1 days
of `make run`, the reference ``tests.bench.airflow_days`` compares Airflow's
marts with (``--reference-marts``) when its days are the same
(``first_day``).

Each ``stack.run`` prints its steps' times (``steps    datagen ...``); the
bench reads that line. ``--datagen-scale`` shrinks the simulated volume
(``DATAGEN_SCALE``) for a quick run; ``--keep`` leaves the folder and
servers up for a look (``DATA_DIR=... make status``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from config import PROJECT_ROOT
from tests.bench.marts import save as save_marts
from tests.bench.marts import save_failure
from tests.bench.summary import record
from tests.conftest import free_port

STEP = re.compile(r"([a-z][a-z ]*?) ([\d.]+)s")
WARM_DAY_GOAL = 20.0  # seconds, a quiet machine
REPORT_GOAL = 1.0  # seconds, the daily report's process


def first_day(history_days: int) -> dt.date:
    """The first simulated day of a stack whose last measured day comes after
    ``history_days`` days of history: that day is yesterday (the loaders hold
    back write times beyond LOADER_FUTURE_TOLERANCE_SECONDS of the clock)."""
    return dt.date.today() - dt.timedelta(days=history_days + 1)


@dataclass
class Stack:
    """One throwaway local stack: its environment, and how many days it holds."""

    days: int  # days of history written so far
    folder: Path
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, days: int, datagen_scale: float, start: dt.date | None = None) -> Stack:
        """A stack whose first `make run` writes ``days`` days from ``start`` (by
        default, so that one more day is yesterday)."""
        folder = Path(tempfile.mkdtemp(prefix=f"bench-scaling-{days}d-"))
        os.chmod(folder, 0o755)  # the embedded PostgreSQL runs as its own user
        env = {
            "DATA_DIR": str(folder / "data"),
            "DATAGEN_START_DATE": (start or first_day(days)).isoformat(),
            "DBT_TARGET_PATH": str(folder / "target"),
            "DATAGEN_HISTORY_DAYS": str(days),
            "DATAGEN_SCALE": str(datagen_scale),
            "WAREHOUSE_PORT": str(free_port()),
            "MONGO_URI": f"mongodb://127.0.0.1:{free_port()}",
            "SALES_API_URL": f"http://127.0.0.1:{free_port()}",
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
            "CLICKHOUSE_PORT": str(free_port()),
            # No Telegram from a bench; the report goes to the throwaway folder.
            "TELEGRAM_BOT_TOKEN": "",
            "TELEGRAM_CHAT_ID": "",
            "REPORT_DIR": str(folder / "reports"),
            # The measured days are daily builds (the first run is the full check).
            "DBT_FULL_CHECK_HOURS": "168",
        }
        names = ("WAREHOUSE_HOST", "OLTP_HOST", "OLTP_PORT", "EMBEDDED_SERVICES",
                 "WAREHOUSE_PASSWORD", "OLTP_PASSWORD")  # fmt: skip
        for name in names:
            # The embedded defaults (a password of its own, generated), whatever the
            # caller's .env says.
            env[name] = ""
        return cls(days=days, folder=folder, env=env)

    def python(self, *args: str) -> tuple[float, str]:
        return self.run_command([sys.executable, *args])

    def run_command(self, argv: list[str]) -> tuple[float, str]:
        """Run ``argv`` in this stack's environment: (seconds, its output); exit if it fails."""
        env = {k: v for k, v in {**os.environ, **self.env}.items() if v != ""}
        started = time.monotonic()
        proc = subprocess.run(argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - started
        if proc.returncode != 0:
            tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-5:]
            what = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(argv[:4]))
            raise SystemExit(f"{what} failed at {self.days} days:\n" + "\n".join(tail))
        return seconds, proc.stdout

    def make_run(self) -> tuple[float, dict[str, float], str]:
        seconds, out = self.python("-m", "stack.run")
        line = next((ln for ln in out.splitlines() if ln.startswith("steps    ")), None)
        if line is None:
            raise SystemExit("stack.run printed no 'steps' line")
        steps = {name: float(s) for name, s in STEP.findall(line.removeprefix("steps    "))}
        return seconds, steps, out

    def target_path(self, target: str) -> Path:
        """Where stack.run keeps this target's dbt state: partial parsing carries over."""
        base = self.folder / "target"
        return base if target == "warehouse" else base / target

    def full_refresh_seconds(self, target: str, logical_day: str) -> float:
        """``dbt build --full-refresh``, invoked and timed as stack.run's daily build is.

        The same logical day (DBT_LOGICAL_DATE) and no unit tests, like the daily
        build; a full refresh tests every row. Then, untimed, the views again:
        replacing a table on PostgreSQL drops the views that read it, and the
        next day's `make run` would rebuild every view instead of keeping the
        unchanged ones, as a day after a day does.
        """
        code = (  # target: where it builds ("warehouse": the configured dbt target)
            "import sys; from pathlib import Path; from stack.dbt_build import run_dbt; "
            "from config import DbtSettings; "
            f"t = DbtSettings.from_env().target_for({target!r}); "
            # As stack.run invokes it: --target only for another target (dbt re-parses
            # the whole project when the command line's --target changes, even to
            # the default's name).
            f"at = [] if {target!r} == 'warehouse' else "
            f"['--target', t, '--target-path', {str(self.target_path(target))!r}]; "
            f"logs = Path({str(self.folder / 'logs')!r}); "
            "s = run_dbt(['build', '--full-refresh', '--exclude-resource-type', 'unit_test', *at],"
            " logs); "
            "s.success or sys.exit('; '.join(s.failures[:3])); "
            "v = run_dbt(['run', '--select', 'config.materialized:view', *at], logs); "
            "print(f'{s.seconds:.3f}') if v.success else sys.exit('; '.join(v.failures[:3]))"
        )
        self.env["DBT_LOGICAL_DATE"] = logical_day
        try:
            _, out = self.python("-c", code)
        finally:
            del self.env["DBT_LOGICAL_DATE"]
        return float(out.strip().splitlines()[-1])

    def settle(self) -> None:
        """VACUUM ANALYZE the warehouse: the history was written in one go, and
        the measured day should not pay for autovacuum catching up with it (a
        warehouse grown a day at a time has caught up long before)."""
        code = (
            "import psycopg; from config import WarehouseSettings; "
            "c = psycopg.connect(WarehouseSettings.from_env().conninfo(), autocommit=True); "
            "c.execute('vacuum analyze'); c.execute('checkpoint')"
        )
        self.python("-c", code)

    def rows_read(self) -> tuple[int, int]:
        """Rows the warehouse database has read so far: (by full scans, by index)."""
        code = (
            "import psycopg; from config import WarehouseSettings; "
            "c = psycopg.connect(WarehouseSettings.from_env().conninfo()); "
            "print(*c.execute('select sum(seq_tup_read), sum(coalesce(idx_tup_fetch, 0))"
            " from pg_stat_user_tables').fetchone())"
        )
        _, out = self.python("-c", code)
        seq, idx = out.split()
        return int(seq), int(idx)

    def down(self, keep: bool) -> None:
        if keep:
            print(f"kept: DATA_DIR={self.env['DATA_DIR']} (servers still up)")
            return
        self.python("-m", "stack", "down")
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Day:
    """One incremental day measured after ``history`` days of history."""

    history: int
    seconds: float
    steps: dict[str, float]
    rows_read: tuple[int, ...]  # (by full scans, by index) during the day
    full_refresh: dict[str, float] = field(default_factory=dict)  # target -> seconds
    reconcile: float = 0.0  # `python -m loaders reconcile`: every source, the whole history
    report: dict[str, float] = field(default_factory=dict)  # `python -m reports daily`, timed


def measure_day(stack: Stack, marts_out: Path | None = None) -> Day:
    """The next `make run` on ``stack``, timed, then a full refresh of each target."""
    history = stack.days
    stack.settle()
    before = stack.rows_read()
    seconds, steps, out = stack.make_run()
    stack.days += 1
    time.sleep(1)  # PostgreSQL publishes a session's table statistics within a second
    rows_read = tuple(b - a for a, b in zip(before, stack.rows_read(), strict=True))
    if "tests checked what is new since the last build that passed" not in out:
        raise SystemExit(f"{history} days: the measured day was not a daily build")
    print(f"{history} days: {next(ln for ln in out.splitlines() if ln.startswith('steps'))}")
    if marts_out is not None:  # before the full refreshes: make run's own build
        save_marts(marts_out, stack.env)
    day = re.search(r"for logical day (\d{4}-\d\d-\d\d)", out)
    assert day, "stack.run printed no logical day"
    measured = Day(history, seconds, steps, rows_read)
    for target in ("warehouse", "clickhouse"):
        measured.full_refresh[target] = stack.full_refresh_seconds(target, day.group(1))
        print(f"{history} days: dbt full refresh on {target} "
              f"{measured.full_refresh[target]:.1f}s", flush=True)  # fmt: skip
    # The day's report by hand, a process of its own as a user runs it: delivered
    # again (drawn and written), and then already delivered (nothing drawn).
    measured.report["drawn"], _ = stack.python("-m", "reports", "daily", "--latest", "--force")
    measured.report["already delivered"], _ = stack.python("-m", "reports", "daily", "--latest")
    drawn, again = measured.report["drawn"], measured.report["already delivered"]
    print(f"{history} days: python -m reports daily {drawn:.1f}s (drawn and written), "
          f"{again:.1f}s (already delivered)", flush=True)  # fmt: skip
    measured.reconcile, out = stack.python("-m", "loaders", "reconcile")
    print(f"{history} days: reconciliation of every source {measured.reconcile:.1f}s", flush=True)
    for line in out.splitlines():
        print(f"  {line}")
    return measured


def grow(stack: Stack, days: int) -> None:
    """Write the days up to ``days`` of history at once; one `make run` lands and builds them."""
    more = days - stack.days
    start = dt.date.fromisoformat(stack.env["DATAGEN_START_DATE"])
    if more > 1:  # all but the last: `make run` writes that one itself
        first = start + dt.timedelta(days=stack.days)
        stack.python("-m", "pipelines", "simulate", "--date", first.isoformat(),
                     "--days", str(more - 1))  # fmt: skip
    if more > 0:
        seconds, _, _ = stack.make_run()
        stack.days = days
        print(f"{days} days: history grown in {seconds:.0f}s", flush=True)


def measure(days: int, scale: float, datagen_scale: float, keep: bool,
            marts_out: Path | None = None) -> tuple[Day, Day]:  # fmt: skip
    """The day at ``days`` and at ``days * scale`` days of history, in one stack."""
    large = round(days * scale)
    stack = Stack.create(days, datagen_scale, start=first_day(large))
    try:
        print(f"{days} days: writing and building the history ...", flush=True)
        seconds, _, _ = stack.make_run()
        print(f"{days} days: history in {seconds:.0f}s; one more day ...", flush=True)
        try:
            small = measure_day(stack, marts_out)
        finally:
            if marts_out is not None:  # a no-op once saved; else its reader stops waiting
                save_failure(marts_out, "the scaling bench stopped before its 1x day's marts")
        grow(stack, large)
        return small, measure_day(stack)
    finally:
        stack.down(keep)


def report(small: Day, large: Day) -> None:
    ratio = lambda a, b: a / b if b else float("nan")  # noqa: E731
    scale = large.history / small.history
    print()
    print(f"== scaling bench: one incremental day at {large.history} days of history "
          f"({scale:g}x) vs {small.history} days (1x) ==")  # fmt: skip
    rows = [("make run (end to end)", large.seconds, small.seconds)]
    rows += [(f"  {name}", large.steps.get(name, 0.0), small.steps.get(name, 0.0))
             for name in small.steps]  # fmt: skip
    for name, big, base in rows:
        print(f"{name:<26}{base:>8.1f}s at 1x {big:>8.1f}s at {scale:g}x   "
              f"ratio {ratio(big, base):.2f}")  # fmt: skip
    print(f"ratio make run {scale:g}x/1x {ratio(large.seconds, small.seconds):.2f} "
          f"(target <= 1.3); load step {ratio(large.steps['load'], small.steps['load']):.2f} "
          "(target <= 1.3)")  # fmt: skip
    # The 1x day is `make run`'s warm day as a user runs it (a week of history).
    record(f"make run warm day ({small.history} days of history)", small.seconds, "s",
           goal=WARM_DAY_GOAL, direction="lower")  # fmt: skip
    for name, secs in small.steps.items():
        record(f"make run warm day: {name}", secs, "s")
    record("daily report (python -m reports daily --force), whole process",
           small.report["drawn"], "s", goal=REPORT_GOAL, direction="lower")  # fmt: skip
    record("daily report already delivered (nothing drawn), whole process",
           small.report["already delivered"], "s", goal=REPORT_GOAL, direction="lower")  # fmt: skip
    record(f"make run day at {scale:g}x history / 1x", ratio(large.seconds, small.seconds), "x",
           goal=1.3, direction="lower")  # fmt: skip
    load = ratio(large.steps["load"], small.steps["load"])
    record(f"load step at {scale:g}x history / 1x", load, "x", goal=1.3, direction="lower")
    # What the wall clock hides while dbt's fixed cost per node dominates: how
    # much the day made the warehouse read (loads, dbt, report).
    (seq_1x, idx_1x), (seq_10x, idx_10x) = small.rows_read, large.rows_read
    print(f"rows the warehouse read during the day: {seq_1x:,} by full scans and {idx_1x:,} "
          f"by index at 1x, {seq_10x:,} and {idx_10x:,} at {scale:g}x: full-scan ratio "
          f"{ratio(seq_10x, seq_1x):.2f}")  # fmt: skip
    print(f"reconciliation of every source: {small.reconcile:.1f}s at {small.history} days, "
          f"{large.reconcile:.1f}s at {large.history} days: ratio "
          f"{ratio(large.reconcile, small.reconcile):.2f} for {scale:g}x the history")  # fmt: skip
    for target, key in (("warehouse", "dbt"), ("clickhouse", "dbt clickhouse")):
        full, day = large.full_refresh[target], large.steps[key]
        print(f"{target} dbt build at {large.history} days: full refresh {full:.1f}s, "
              f"incremental day {day:.1f}s: ratio full/incremental {full / day:.1f}"
              + (" (target >= 5)" if target == "warehouse" else ""))  # fmt: skip
        record(f"{target} dbt at {large.history} days: full refresh / incremental day",
               full / day, goal=5 if target == "warehouse" else None)  # fmt: skip
        # A full refresh grows with history, an incremental day does not: where
        # the line through both sizes' full refreshes reaches 5x and 10x the day.
        slope = (full - small.full_refresh[target]) / (large.history - small.history)
        if slope > 0:
            crossing = {k: large.history + (k * day - full) / slope for k in (5, 10)}
            print(f"  full refresh {small.full_refresh[target]:.1f}s at {small.history} days, "
                  f"{slope:.2f}s per day of history: ratio 5 at about "
                  f"{max(crossing[5], large.history):.0f} days, 10 at about "
                  f"{max(crossing[10], large.history):.0f} days")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scaling_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7, help="days of history at 1x (7)")
    parser.add_argument("--scale", type=float, default=10, help="history multiple measured (10)")
    parser.add_argument("--datagen-scale", type=float, default=1.0, help="DATAGEN_SCALE (1.0)")
    parser.add_argument("--keep", action="store_true", help="leave the stack and its servers up")
    parser.add_argument(
        "--marts-out", type=Path, metavar="FILE",
        help="save the marts after the 1x day (airflow_days --reference-marts)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.days < 1 or round(args.days * args.scale) <= args.days:
        parser.error("--days must be at least 1 and --days * --scale more than --days")
    small, large = measure(args.days, args.scale, args.datagen_scale, args.keep, args.marts_out)
    report(small, large)
    return 0


if __name__ == "__main__":
    sys.exit(main())
