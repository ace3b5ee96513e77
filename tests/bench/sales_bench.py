"""``make bench`` (part 2): seconds per day of sales API increments, by step.

Runs the project's sales API (scale from BENCH_SALES_SCALE, default 1.0) with
no report delay, and times fetch (HTTP, files to disk), check and land for
BENCH_SALES_DAYS days; then the same days again as a reload (replace).
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from loaders.raw_tables import ensure_all_raw_tables
from loaders.sales_api.checks import check_increment
from loaders.sales_api.job import fetch_day
from loaders.sales_api.landing import land_increment
from stack.embedded_postgres import EmbeddedPostgres
from stack.embedded_sales_api import EmbeddedSalesApi
from tests.bench.summary import record
from tests.conftest import free_port

DAYS = int(os.environ.get("BENCH_SALES_DAYS", "7"))
SCALE = os.environ.get("BENCH_SALES_SCALE", "1.0")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-sales-") as tmp:
        os.chmod(tmp, 0o755)
        pg = EmbeddedPostgres(pgdata=Path(tmp) / "pg" / "data", port=free_port())
        api = EmbeddedSalesApi(Path(tmp) / "api", free_port(), env={
            "SALES_API_KEY": "bench", "SALES_API_REPORT_SECONDS": "0", "DATAGEN_SCALE": SCALE,
        })  # fmt: skip
        pg.start()
        api.start()
        try:
            pg.ensure_database("bench")
            os.environ.update({"SALES_API_URL": api.url, "SALES_API_KEY": "bench",
                               "SALES_API_POLL_SECONDS": "0.05"})  # fmt: skip
            start = dt.date(2026, 10, 1)
            timings: dict[str, list[float]] = {"fetch": [], "check": [], "land": [], "reload": []}
            rows = 0
            with psycopg.connect(pg.conninfo("bench")) as conn:
                ensure_all_raw_tables(conn)
                for k in range(DAYS):
                    day = start + dt.timedelta(days=k)
                    t0 = time.perf_counter()
                    folder = fetch_day(day, Path(tmp) / "files")
                    t1 = time.perf_counter()
                    checked = check_increment(folder)
                    t2 = time.perf_counter()
                    land_increment(conn, day, checked)
                    t3 = time.perf_counter()
                    land_increment(conn, day, checked)  # a reload replaces the day
                    t4 = time.perf_counter()
                    for name, value in zip(
                        timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True
                    ):
                        timings[name].append(value)
                    rows += sum(len(f.rows) for f in checked.values())
        finally:
            api.stop()
            pg.destroy()
    med = {k: statistics.median(v) for k, v in timings.items()}
    per_day = med["fetch"] + med["check"] + med["land"]
    per_file = rows / DAYS
    print(f"== sales API bench: {DAYS} days at scale {SCALE}, {per_file:,.0f} rows/day, median ==")
    steps = " + ".join(f"{name} {med[name]:.3f}s" for name in ("fetch", "check", "land"))
    print(f"per day: {steps} = {per_day:.3f}s (plus the API's report preparation time)")
    print(f"reload of a day (delete + land, one transaction): {med['reload']:.3f}s")
    record("sales API, a day's increments (fetch, check, land)", per_day, "s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
