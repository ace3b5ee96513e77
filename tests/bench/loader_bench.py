"""``make bench``: MongoDB loader throughput as a ratio to ``psql \\copy``.

Both sides run in the same process run, on the same throwaway PostgreSQL,
interleaved and repeated (these machines are shared and noisy); the figure is
the ratio of medians, not an absolute time.

1. Landing: ``land_documents`` (encode to JSON, checks and rejects, COPY, batch row
   and watermark committed per batch; batches of LOADER_BATCH_SIZE and of 10k) on
   BENCH_DOCS documents already in memory, vs ``psql \\copy`` of the same rows' bytes
   from a file into an identical table (same columns and indexes) in one transaction.
2. End to end from the embedded MongoDB server (nx-27017): ``load_collection``
   (read + land, a daily load: without the weekly scan for documents no watermark
   reaches, which is timed on its own) vs reading the same cursor alone (each document
   decoded, as the loader must), in interleaved rounds; the figure is the median of
   the rounds' ratios: 1.0 would be a load costing no more than its read.

Every figure goes to the bench summary (``tests.bench.summary.record``).
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from bson import ObjectId
from pymongo import MongoClient

from config import LoaderSettings
from datagen.app_db import AppDay
from datagen.mongo_writer import ensure_indexes
from datagen.population import Population
from loaders.core.control import ensure_control_tables
from loaders.core.copy import CopyRow
from loaders.mongo.checks import COLLECTIONS, decode_document, to_copy_row
from loaders.mongo.client import read_since, unreachable
from loaders.mongo.job import load_collection
from loaders.mongo.landing import land_documents
from stack.embedded_mongo import EmbeddedMongo
from stack.embedded_postgres import EmbeddedPostgres, psql_path
from tests.bench.summary import record
from tests.conftest import free_port

N_DOCS = int(os.environ.get("BENCH_DOCS", "200000"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
SMALL_BATCH = 10_000
SPEC = COLLECTIONS["event_logs"]
RAW_DDL = """
drop table if exists {t};
create table {t} (
    _id text not null, doc jsonb not null, _source_updated_at timestamptz not null,
    _batch_id bigint not null, _loaded_at timestamptz not null default now()
);
create index on {t} (_id);
create index on {t} (_loaded_at);
create index on {t} (_source_updated_at);
"""


def make_documents(n: int) -> list[dict]:
    """``n`` documents shaped like the app's (every collection's shapes, cycled)."""
    day = dt.date(2026, 10, 2)
    templates = [
        d
        for docs in AppDay(Population(1, 1.0, dt.date(2026, 10, 1)), day).documents().values()
        for d in docs
    ]
    base = dt.datetime(2026, 10, 2)
    out = []
    for i in range(n):
        doc = dict(templates[i % len(templates)])
        doc["_id"] = ObjectId(i.to_bytes(12, "big"))
        doc["updated_at"] = base + dt.timedelta(milliseconds=i)
        out.append(doc)
    return out


def reset_landing(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("drop schema if exists loader cascade")
        conn.execute("create schema if not exists raw_mongo")
        conn.execute(RAW_DDL.format(t="raw_mongo.event_logs"))
        conn.execute(RAW_DDL.format(t="raw_mongo.baseline"))
    with psycopg.connect(conninfo) as conn:
        ensure_control_tables(conn)


def time_loader(conninfo: str, docs: list[dict], batch_size: int) -> float:
    with psycopg.connect(conninfo) as conn:
        started = time.perf_counter()
        result = land_documents(conn, SPEC, docs, batch_size=batch_size)
        elapsed = time.perf_counter() - started
    assert result.landed + result.rejected == len(docs), result
    return elapsed


def time_psql_copy(pg: EmbeddedPostgres, dbname: str, data_file: Path) -> float:
    cmd = [
        str(psql_path()),
        pg.conninfo(dbname),
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        f"\\copy raw_mongo.baseline (_id, doc, _source_updated_at, _batch_id) from '{data_file}'",
    ]
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - started


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        pg = EmbeddedPostgres(pgdata=Path(tmp) / "pg" / "data", port=free_port())
        mongo = EmbeddedMongo(data_dir=Path(tmp) / "mongo" / "data", port=free_port())
        os.chmod(tmp, 0o755)
        pg.start()
        mongo.start()
        try:
            return run(pg, mongo, Path(tmp))
        finally:
            mongo.stop()
            pg.destroy()


def run(pg: EmbeddedPostgres, mongo: EmbeddedMongo, tmp: Path) -> int:
    pg.ensure_database("bench")
    conninfo = pg.conninfo("bench")
    print(f"building {N_DOCS:,} documents ...", flush=True)
    docs = make_documents(N_DOCS)
    rows = [to_copy_row(d, SPEC, 1) for d in docs]
    lines = [r.line for r in rows if isinstance(r, CopyRow)]
    data_file = tmp / "copy.tsv"
    data_file.write_bytes(b"".join(lines))
    os.chmod(data_file, 0o644)
    size_mb = data_file.stat().st_size / 1e6
    per_row = size_mb * 1e6 / len(lines)
    print(f"{len(lines):,} rows, {size_mb:.1f} MB of COPY text ({per_row:.0f} B/row)")

    batch_size = LoaderSettings.from_env().batch_size
    sizes = sorted({batch_size, SMALL_BATCH})
    copy_times: list[float] = []
    loader_times: dict[int, list[float]] = {size: [] for size in sizes}
    for rep in range(REPEATS):
        reset_landing(conninfo)
        copy_times.append(time_psql_copy(pg, "bench", data_file))
        timings = [f"psql \\copy {copy_times[-1]:.2f}s"]
        for size in sizes:
            reset_landing(conninfo)
            loader_times[size].append(time_loader(conninfo, docs, size))
            timings.append(f"loader/{size // 1000}k {loader_times[size][-1]:.2f}s")
        print(f"  round {rep + 1}: " + "   ".join(timings), flush=True)
    t_copy = statistics.median(copy_times)
    t_loader = statistics.median(loader_times[batch_size])
    landing_ratio = t_copy / t_loader

    print(f"inserting {N_DOCS:,} documents into the embedded MongoDB (not timed) ...", flush=True)
    client: MongoClient = MongoClient(mongo.uri)
    db = client.bench
    coll = db[SPEC.name]
    for start in range(0, len(docs), 10_000):
        coll.insert_many(docs[start : start + 10_000])
    ensure_indexes(db)

    def read_alone() -> float:
        started = time.perf_counter()
        n = 0
        for raw in read_since(db, SPEC, None, batch_size):
            decode_document(raw)
            n += 1
        assert n == len(docs)
        return time.perf_counter() - started

    def read_and_land() -> float:
        reset_landing(conninfo)
        with psycopg.connect(conninfo) as conn:
            started = time.perf_counter()
            result = load_collection(db, conn, SPEC, batch_size=batch_size, full_check=False)
            elapsed = time.perf_counter() - started
        assert result.landed + result.rejected == len(docs), result
        return elapsed

    read_times: list[float] = []
    e2e_times: list[float] = []
    for rep in range(REPEATS):
        read_times.append(read_alone())
        e2e_times.append(read_and_land())
        print(
            f"  round {rep + 1}: read alone {read_times[-1]:.2f}s   "
            f"read + land {e2e_times[-1]:.2f}s",
            flush=True,
        )
    t_read = statistics.median(read_times)
    t_e2e = statistics.median(e2e_times)
    # Each round's load against the read just before it: the machine's load drifts
    # between rounds by more than the difference measured.
    e2e_ratio = statistics.median(e / r for e, r in zip(e2e_times, read_times, strict=True))
    started = time.perf_counter()
    sum(1 for _ in unreachable(db, SPEC))
    t_scan = time.perf_counter() - started
    client.close()

    print()
    print(f"== loader bench: {N_DOCS:,} documents, median of {REPEATS} ==")
    print(
        f"landing   psql \\copy {t_copy:6.2f}s   loader {t_loader:6.2f}s   "
        f"ratio {landing_ratio:.2f}  ({len(docs) / t_loader:,.0f} docs/s, batches of "
        f"{batch_size:,}; target >= 0.9)"
    )
    record("mongo landing / psql \\copy", landing_ratio, goal=0.9)
    for size in sizes:
        if size != batch_size:
            t = statistics.median(loader_times[size])
            print(
                f"          with batches of {size:,}: loader {t:6.2f}s   ratio {t_copy / t:.2f}"
                "  (each commit is a durability point; smaller batches pay more per row)"
            )
            record(
                f"mongo landing / psql \\copy, batches of {size:,}",
                t_copy / t,
                note="each commit is a durability point",
            )
    print(
        f"from embedded MongoDB: read alone {t_read:6.2f}s   read + land {t_e2e:6.2f}s   "
        f"ratio {e2e_ratio:.2f}x the read (median of the rounds' ratios; target <= 1.15; "
        f"source-bound: nx-27017 serves {len(docs) / t_read:,.0f} docs/s); ratio to "
        f"psql \\copy {t_copy / t_e2e:.2f}"
    )
    record("mongo end to end / read alone", e2e_ratio, unit="x", goal=1.15, direction="lower")
    print(
        f"weekly full check (documents no watermark reaches, LOADER_FULL_CHECK_HOURS): "
        f"{t_scan:.2f}s on top of a load that runs it"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
