"""Events landing throughput (ClickHouse -> warehouse) as a ratio to ``psql \\copy``.

``python -m tests.bench.events_bench`` starts a throwaway PostgreSQL and a
throwaway embedded ClickHouse on free ports and writes one day of events at
BENCH_EVENTS_SCALE (default 10: about 1M feed actions and 100k messages).
The day's rows are exported once, beforehand, as the TSV the loader streams
(the contract's columns, ``_event_date``, a batch id), one file per table.
Then, interleaved and repeated BENCH_REPEATS times (these machines are shared
and noisy), from an empty warehouse each time:

- the loader, feed_actions alone: ``load_table_day("feed_actions", day)``
  (connect, contract check, the lookback's counts, the ClickHouse query
  streamed into COPY, batch and watermark, commit);
- the loader, both tables: ``load_day(day)`` (the two tables in parallel);
- the baseline: ``psql -c "\\copy <table> from '<file>'"`` into an identical
  table (same columns, same index), one transaction; for both tables, the
  two psql processes run at once, like the loader's two threads.

The figure is the ratio of the medians (psql time / loader time): 1.0 means as
fast as loading a ready file with psql; the loader also has the ClickHouse
query and the HTTP transfer to do. Smoke test: BENCH_EVENTS_SCALE=0.05
BENCH_REPEATS=1. Both figures go to the bench summary (``tests.bench.summary.record``).
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

from datagen import events_writer
from datagen.population import Population
from loaders.events.client import READ_SETTINGS, day_query
from loaders.events.job import load_day, load_table_day
from loaders.events.landing import STREAMS, TABLES, copy_columns, raw_table
from loaders.events.settings import ClickHouseSettings
from loaders.raw_tables import ensure_all_raw_tables
from stack.embedded_postgres import EmbeddedPostgres, psql_path
from tests.bench.servers import warehouse_and_clickhouse
from tests.bench.summary import record

SCALE = float(os.environ.get("BENCH_EVENTS_SCALE", "10"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
DAY = dt.date(2026, 10, 3)
START = dt.date(2026, 10, 1)


def baseline(table: str) -> sql.Composed:
    return sql.Identifier("raw_events", f"baseline_{table}")


def create_baseline_tables(conninfo: str) -> None:
    """Tables identical to raw_events.*: same columns, same index."""
    with psycopg.connect(conninfo) as conn:
        ensure_all_raw_tables(conn)
        for table in STREAMS:
            conn.execute(
                sql.SQL("create table {} (like {} including all)").format(
                    baseline(table), raw_table(TABLES[table]).identifier
                )
            )


def reset_warehouse(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("drop schema if exists loader cascade")
        for table in STREAMS:
            conn.execute(sql.SQL("truncate {}").format(raw_table(TABLES[table]).identifier))
            conn.execute(sql.SQL("truncate {}").format(baseline(table)))


def export_day(settings: ClickHouseSettings, folder: Path) -> dict[str, tuple[Path, int]]:
    """The day's TSV per table, as the loader streams it: (file, rows)."""
    client = events_writer.client(settings)
    files = {}
    try:
        for table in STREAMS:
            path = folder / f"{table}.tsv"
            response = client.raw_stream(
                day_query(TABLES[table], DAY, 1), fmt="TabSeparated", settings=READ_SETTINGS
            )
            rows = 0
            with path.open("wb") as out:
                for chunk in response.stream(1 << 20):
                    out.write(chunk)
                    rows += chunk.count(b"\n")
            response.close()
            files[table] = (path, rows)
    finally:
        client.close()
    return files


def psql_copy(conninfo: str, table: str, path: Path) -> subprocess.Popen:
    columns = ", ".join(copy_columns(TABLES[table]))
    return subprocess.Popen(
        [str(psql_path()), "-X", "-q", "-v", "ON_ERROR_STOP=1", conninfo, "-c",
         f"\\copy raw_events.baseline_{table} ({columns}) from '{path}'"],
    )  # fmt: skip


def time_psql(conninfo: str, files: dict[str, tuple[Path, int]], tables: tuple[str, ...]) -> float:
    started = time.perf_counter()
    procs = [psql_copy(conninfo, table, files[table][0]) for table in tables]
    assert all(p.wait() == 0 for p in procs)
    return time.perf_counter() - started


def time_loader(files: dict[str, tuple[Path, int]], both: bool) -> float:
    started = time.perf_counter()
    results = load_day(DAY) if both else [load_table_day("feed_actions", DAY)]
    elapsed = time.perf_counter() - started
    for r in results:
        assert r.landed == files[r.table][1], r
    return elapsed


def run(pg: EmbeddedPostgres, folder: Path) -> int:
    warehouse = pg.conninfo("bench")
    settings = ClickHouseSettings.from_env()
    print(f"writing {DAY} at scale {SCALE:g} into ClickHouse ...", flush=True)
    client = events_writer.client(settings)
    try:
        counts = events_writer.write_day(client, Population(42, SCALE, START), DAY, incidents=())
    finally:
        client.close()
    files = export_day(settings, folder)
    assert {t: n for t, (_, n) in files.items()} == counts
    create_baseline_tables(warehouse)
    times: dict[str, list[float]] = {k: [] for k in ("psql", "loader", "psql2", "loader2")}
    for rep in range(REPEATS):
        for key, timer in (
            ("psql", lambda: time_psql(warehouse, files, ("feed_actions",))),
            ("loader", lambda: time_loader(files, both=False)),
            ("psql2", lambda: time_psql(warehouse, files, STREAMS)),
            ("loader2", lambda: time_loader(files, both=True)),
        ):
            reset_warehouse(warehouse)
            times[key].append(timer())
        print(
            f"  round {rep + 1}: feed_actions psql \\copy {times['psql'][-1]:.2f}s, loader "
            f"{times['loader'][-1]:.2f}s; both tables psql {times['psql2'][-1]:.2f}s, loader "
            f"{times['loader2'][-1]:.2f}s",
            flush=True,
        )
    median = {k: statistics.median(v) for k, v in times.items()}
    feed = counts["feed_actions"]
    total = sum(counts.values())
    size = sum(path.stat().st_size for path, _ in files.values())
    print()
    print(
        f"== events loader bench: {DAY} at scale {SCALE:g}, {total:,} rows "
        f"({size / 2**20:.0f} MiB of TSV), median of {REPEATS} =="
    )
    print(
        f"feed_actions   {feed:,} rows   psql \\copy {median['psql']:6.2f}s   loader "
        f"{median['loader']:6.2f}s   ratio {median['psql'] / median['loader']:.2f}  "
        f"({feed / median['loader']:,.0f} rows/s)"
    )
    print(
        f"both tables    {total:,} rows   psql \\copy x2 {median['psql2']:6.2f}s   loader "
        f"{median['loader2']:6.2f}s   ratio {median['psql2'] / median['loader2']:.2f}  "
        f"({total / median['loader2']:,.0f} rows/s, the tables in parallel)"
    )
    record("events landing / psql \\copy", median["psql"] / median["loader"], goal=0.9)
    record(
        "events landing, both tables / psql \\copy x2",
        median["psql2"] / median["loader2"],
        goal=0.9,
    )
    return 0


def main() -> int:
    with warehouse_and_clickhouse("bench-events-") as (pg, folder):
        return run(pg, folder)


if __name__ == "__main__":
    sys.exit(main())
