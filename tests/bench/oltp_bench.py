"""OLTP replication throughput as a ratio to ``psql \\copy`` of the same table.

``python -m tests.bench.oltp_bench``. On a throwaway PostgreSQL (the source and
the warehouse are two databases on it, as in the embedded default), the source
gets BENCH_OLTP_ROWS order lines (default 500,000, about 60 bytes of COPY text
each) plus the orders, users and products they reference. Then, interleaved
and repeated BENCH_REPEATS times (these machines are shared and noisy):

- the loader: ``load_table("order_details")`` from an empty warehouse (session
  setup, contract check, keyset batches of LOADER_BATCH_SIZE rows streamed
  COPY to COPY, each committed with its batch row and watermark, and the
  reject scans);
- the baseline: ``psql -c "\\copy (select <columns>, 1 from order_details) to
  stdout" | psql -c "\\copy <table> from stdin"``, two psql processes piped
  into an identical table (same columns, same indexes) in one transaction.

The figure is the ratio of the medians (psql time / loader time): 1.0 means
as fast as psql.

Then change capture (``OLTP_CAPTURE=cdc``), BENCH_REPEATS rounds of: a fresh
slot on an emptied ``order_details`` (the start's snapshot, not timed), the
same BENCH_OLTP_ROWS lines inserted in transactions of 5,000 (an order system
commits small transactions), then timed:

- the loader: ``load_all()`` streams them from the slot (peek, decode in
  Python, COPY, commit with the position, advance);
- the baseline: the psql pipe above, copying the same rows with the same
  change columns into an identical table.

Smoke test: BENCH_OLTP_ROWS=5000 BENCH_REPEATS=1.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from config import LoaderSettings
from datagen.oltp_schema import create_schema
from loaders.oltp.checks import TABLES
from loaders.oltp.job import load_all, load_table
from loaders.oltp.landing import raw_table
from loaders.raw_tables import ensure_all_raw_tables
from stack.embedded_postgres import EmbeddedPostgres, psql_path
from tests.bench.summary import record
from tests.conftest import free_port

N_ROWS = int(os.environ.get("BENCH_OLTP_ROWS", "500000"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
SMALL_BATCH = 10_000
SPEC = TABLES["order_details"]
BASELINE = sql.Identifier("raw_oltp", "baseline_order_details")

FILL = """
insert into product_categories select g, 'category ' || g, '2026-10-01', '2026-10-01'
    from generate_series(1, 20) g;
insert into products select g, 'product ' || g, 1 + g % 20, (g % 500) + 0.99,
    '2026-10-01', '2026-10-01' from generate_series(1, 500) g;
insert into users select g, 'First' || g, 'Last' || g, 'u' || g || '@example.com',
    '+1-555-' || g, '2026-09-01', 'bronze', '2026-10-01', '2026-10-01'
    from generate_series(1, 5000) g;
insert into orders select g, 1 + g % 5000, '2026-10-01'::timestamptz + g * interval '1 s',
    'paid', 100.50, '2026-10-01'::timestamptz + g * interval '1 s',
    '2026-10-01'::timestamptz + g * interval '1 s' from generate_series(1, {orders}) g;
insert into order_details select g, 1 + (g - 1) / 5, 1 + g % 500, 1 + g % 4, 12.34,
    (1 + g % 4) * 12.34,
    '2026-10-01'::timestamptz + ((g - 1) / 5) * interval '1 s' + (g % 5) * interval '1 ms',
    '2026-10-01'::timestamptz + ((g - 1) / 5) * interval '1 s' + (g % 5) * interval '1 ms'
    from generate_series(1, {rows}) g;
"""


def fill_source(conninfo: str) -> None:
    with psycopg.connect(conninfo) as conn:
        create_schema(conn)
        conn.execute(FILL.format(rows=N_ROWS, orders=(N_ROWS + 4) // 5))
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("vacuum analyze")  # a settled table, as autovacuum leaves it


def reset_warehouse(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("drop schema if exists loader cascade")
        conn.execute(sql.SQL("truncate {}").format(raw_table(SPEC).identifier))
        conn.execute(sql.SQL("truncate {}").format(BASELINE))


def create_baseline_table(conninfo: str) -> None:
    """A table identical to raw_oltp.order_details: same columns, same indexes."""
    with psycopg.connect(conninfo) as conn:
        ensure_all_raw_tables(conn)
        conn.execute(
            sql.SQL("create table {} (like {} including all)").format(
                BASELINE, raw_table(SPEC).identifier
            )
        )


def time_loader(batch_size: int) -> float:
    started = time.perf_counter()
    result = load_table(SPEC.name, batch_size=batch_size)
    elapsed = time.perf_counter() - started
    assert result.landed == N_ROWS, result
    return elapsed


def time_psql(source: str, warehouse: str, change_columns: bool = False) -> float:
    columns = ", ".join(SPEC.columns)
    psql = [str(psql_path()), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    into, values = ("_batch_id", "1")
    if change_columns:
        into, values = "_batch_id, _op, _lsn, _seq", "1, 'c', '0/0'::pg_lsn, 1"
    copy_in = f"\\copy raw_oltp.baseline_order_details ({columns}, {into}) from stdin"
    started = time.perf_counter()
    out = subprocess.Popen(
        [*psql, source, "-c", f"\\copy (select {columns}, {values} from order_details) to stdout"],
        stdout=subprocess.PIPE,
    )
    subprocess.run([*psql, warehouse, "-c", copy_in], stdin=out.stdout, check=True)
    assert out.stdout is not None
    out.stdout.close()
    assert out.wait() == 0
    return time.perf_counter() - started


CDC_TRANSACTION = 5_000
CDC_INSERT = """
insert into order_details select g, 1 + (g - 1) / 5, 1 + g %% 500, 1 + g %% 4, 12.34,
    (1 + g %% 4) * 12.34, now(), now() from generate_series(%s::int, %s::int) g
"""


def cdc_round(source: str, warehouse: str) -> tuple[float, float]:
    """One change capture round: (loader seconds, psql pipe seconds) for the same rows."""
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("select pg_drop_replication_slot(slot_name) from pg_replication_slots")
        conn.execute("truncate order_details")
    with psycopg.connect(warehouse, autocommit=True) as conn:
        conn.execute("drop schema if exists loader cascade")
        for spec in TABLES.values():
            conn.execute(sql.SQL("truncate {}").format(raw_table(spec).identifier))
        conn.execute(sql.SQL("truncate {}").format(BASELINE))
    load_all()  # the start: a slot, and a snapshot of every table
    with psycopg.connect(source, autocommit=True) as conn:
        for first in range(1, N_ROWS + 1, CDC_TRANSACTION):
            conn.execute(CDC_INSERT, (first, min(first + CDC_TRANSACTION - 1, N_ROWS)))
    started = time.perf_counter()
    landed = {r.table: r.landed for r in load_all()}
    t_loader = time.perf_counter() - started
    assert landed["order_details"] == N_ROWS, landed
    return t_loader, time_psql(source, warehouse, change_columns=True)


def run(pg: EmbeddedPostgres) -> int:
    for name in ("source", "bench"):
        pg.ensure_database(name)
    source, warehouse = pg.conninfo("source"), pg.conninfo("bench")
    os.environ.update({
        "OLTP_HOST": pg.host, "OLTP_PORT": str(pg.port), "OLTP_USER": pg.superuser,
        "OLTP_PASSWORD": "", "OLTP_DB": "source",
        "WAREHOUSE_HOST": pg.host, "WAREHOUSE_PORT": str(pg.port),
        "WAREHOUSE_USER": pg.superuser, "WAREHOUSE_PASSWORD": "", "WAREHOUSE_DB": "bench",
        "OLTP_CAPTURE": "keyset",
    })  # fmt: skip
    print(f"filling the source with {N_ROWS:,} order lines ...", flush=True)
    fill_source(source)
    create_baseline_table(warehouse)
    batch_size = LoaderSettings.from_env().batch_size
    sizes = sorted({batch_size, SMALL_BATCH}, reverse=True)
    copy_times: list[float] = []
    loader_times: dict[int, list[float]] = {size: [] for size in sizes}
    for rep in range(REPEATS):
        reset_warehouse(warehouse)
        copy_times.append(time_psql(source, warehouse))
        timings = [f"psql \\copy | psql \\copy {copy_times[-1]:.2f}s"]
        for size in sizes:
            reset_warehouse(warehouse)
            loader_times[size].append(time_loader(size))
            timings.append(f"loader/{size // 1000}k {loader_times[size][-1]:.2f}s")
        print(f"  round {rep + 1}: " + "   ".join(timings), flush=True)
    with psycopg.connect(warehouse) as conn:
        size = conn.execute(
            "select pg_size_pretty(sum(pg_column_size(t))) from raw_oltp.order_details t"
        ).fetchone()[0]
    t_copy, t_loader = statistics.median(copy_times), statistics.median(loader_times[batch_size])
    print()
    print(f"== OLTP loader bench: {N_ROWS:,} order lines ({size}), median of {REPEATS} ==")
    print(
        f"COPY to COPY   psql pipe {t_copy:6.2f}s   loader {t_loader:6.2f}s   "
        f"ratio {t_copy / t_loader:.2f}  ({N_ROWS / t_loader:,.0f} rows/s, batches of "
        f"{batch_size:,}; target >= 0.9)"
    )
    record("oltp replication / psql pipe", t_copy / t_loader, goal=0.9)
    for size in sizes:
        if size != batch_size:
            t = statistics.median(loader_times[size])
            print(
                f"               with batches of {size:,}: loader {t:6.2f}s   ratio "
                f"{t_copy / t:.2f}  (each commit is a durability point)"
            )

    os.environ["OLTP_CAPTURE"] = "cdc"
    cdc_loader: list[float] = []
    cdc_copy: list[float] = []
    for rep in range(REPEATS):
        t_loader, t_copy = cdc_round(source, warehouse)
        cdc_loader.append(t_loader)
        cdc_copy.append(t_copy)
        print(
            f"  change capture round {rep + 1}: psql \\copy | psql \\copy {t_copy:.2f}s   "
            f"loader {t_loader:.2f}s",
            flush=True,
        )
    t_copy, t_loader = statistics.median(cdc_copy), statistics.median(cdc_loader)
    print(
        f"change capture psql pipe {t_copy:6.2f}s   loader {t_loader:6.2f}s   "
        f"ratio {t_copy / t_loader:.2f}  ({N_ROWS / t_loader:,.0f} rows/s from the slot, "
        f"transactions of {CDC_TRANSACTION:,}; target >= 0.8)"
    )
    record("oltp change capture / psql pipe", t_copy / t_loader, goal=0.8)
    return 0


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-oltp-") as tmp:
        os.chmod(tmp, 0o755)
        pg = EmbeddedPostgres(pgdata=Path(tmp) / "pg" / "data", port=free_port())
        pg.start()
        try:
            return run(pg)
        finally:
            pg.destroy()


if __name__ == "__main__":
    sys.exit(main())
