"""The MongoDB loader against the embedded MongoDB and PostgreSQL servers."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import psycopg
import pytest
from bson import ObjectId
from psycopg import sql

from config import PROJECT_ROOT
from datagen.mongo_writer import write_day
from datagen.population import Population
from loaders.core import control
from loaders.core.copy import CopyRow, copy_rows
from loaders.core.warehouse import LoaderError
from loaders.mongo.checks import COLLECTIONS
from loaders.mongo.job import load_all, load_collection
from loaders.mongo.landing import raw_table

START = dt.date(2026, 10, 1)
POP = Population(seed=11, scale=0.1, start_date=START)
SPEC = COLLECTIONS["search_queries"]


def raw_rows(conninfo: str, collection: str) -> list[tuple]:
    """The landed data of a raw table, without per-run metadata (batch ids, load times)."""
    with psycopg.connect(conninfo) as conn:
        query = sql.SQL("select _id, doc::text, _source_updated_at from {} order by 1, 3, 2")
        return conn.execute(query.format(raw_table(COLLECTIONS[collection]).identifier)).fetchall()


def scalar(conninfo: str, query: str, *params):
    with psycopg.connect(conninfo) as conn:
        return conn.execute(query, params).fetchone()[0]


def query_doc(i: int, ts: dt.datetime, text: str = "lamp") -> dict:
    return {
        "_id": ObjectId(),
        "query_id": f"Q{i}",
        "user_id": 1,
        "query_text": text,
        "timestamp": ts,
        "filters": [],
        "results_count": 3,
        "updated_at": ts,
    }


def load(mongo_db, conninfo: str, collection: str = "search_queries", **kwargs):
    with psycopg.connect(conninfo) as conn:
        return load_collection(
            mongo_db,
            conn,
            COLLECTIONS[collection],
            batch_size=kwargs.pop("batch_size", 1000),
            **kwargs,
        )


def test_first_load_lands_every_document_with_metadata(mongo_db, warehouse) -> None:
    write_day(mongo_db, POP, START)
    results = load_all(batch_size=500)
    for r in results:
        in_mongo = mongo_db[r.collection].count_documents({})
        assert r.landed + r.rejected == in_mongo, r.collection
        assert len(raw_rows(warehouse, r.collection)) == r.landed
    row = scalar(warehouse, "select count(*) from loader.watermarks where source = 'mongo'")
    assert row == len(COLLECTIONS)
    doc = scalar(warehouse, "select doc from raw_mongo.support_tickets limit 1")
    assert doc["messages"][0]["sent_at"].endswith("Z")  # datetimes as ISO-8601 UTC


def test_rerun_with_nothing_new_lands_zero_rows(mongo_db, warehouse) -> None:
    write_day(mongo_db, POP, START)
    load_all()
    again = load_all()
    assert [r.landed for r in again] == [0] * len(COLLECTIONS)
    assert all(r.batches == 0 for r in again)


def test_incremental_load_lands_only_new_and_changed_documents(mongo_db, warehouse) -> None:
    write_day(mongo_db, POP, START)
    load_all()
    before = {name: len(raw_rows(warehouse, name)) for name in COLLECTIONS}
    day2 = START + dt.timedelta(days=1)
    counts = write_day(mongo_db, POP, day2)
    results = {r.collection: r for r in load_all()}
    for name, written in counts.items():
        assert results[name].landed + results[name].rejected == written, name
        assert len(raw_rows(warehouse, name)) == before[name] + results[name].landed
    # A changed ticket now has two versions in raw, sharing one _id.
    versions = scalar(
        warehouse,
        "select max(n) from (select count(*) n from raw_mongo.support_tickets group by _id) v",
    )
    assert versions >= 2


def test_equal_timestamps_across_a_batch_boundary_are_not_skipped(mongo_db, warehouse) -> None:
    ts = dt.datetime(2026, 10, 1, 12, 0, 0)
    mongo_db.search_queries.insert_many([query_doc(i, ts) for i in range(7)])
    first = load(mongo_db, warehouse, batch_size=3, max_batches=1)
    assert first.landed == 3
    rest = load(mongo_db, warehouse, batch_size=3)
    assert rest.landed == 4
    assert len({r[0] for r in raw_rows(warehouse, "search_queries")}) == 7


def test_interrupted_load_then_rerun_equals_uninterrupted_load(
    mongo_db, warehouse, pg_server
) -> None:
    for d in range(2):
        write_day(mongo_db, POP, START + dt.timedelta(days=d))
    # Uninterrupted load into a second warehouse, for reference.
    pg_server.ensure_database(reference := "reference_" + mongo_db.name)
    reference_conninfo = pg_server.conninfo(reference)
    load(mongo_db, reference_conninfo, "event_logs", batch_size=100)
    total = mongo_db.event_logs.count_documents({})
    assert total > 300

    stopped = load(mongo_db, warehouse, "event_logs", batch_size=100, max_batches=2)
    assert stopped.landed == 200
    resumed = load(mongo_db, warehouse, "event_logs", batch_size=100)
    assert resumed.landed == total - 200
    assert raw_rows(warehouse, "event_logs") == raw_rows(reference_conninfo, "event_logs")


def test_crash_inside_a_batch_rolls_it_back_whole(mongo_db, warehouse, monkeypatch) -> None:
    write_day(mongo_db, POP, START)
    expected_total = mongo_db.event_logs.count_documents({})
    calls = {"n": 0}
    from loaders.mongo import landing as mongo_module

    real_close = mongo_module.close_batch

    def crash_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash after COPY, before commit")
        return real_close(*args, **kwargs)

    monkeypatch.setattr(mongo_module, "close_batch", crash_on_third)
    with pytest.raises(RuntimeError, match="simulated crash"):
        load(mongo_db, warehouse, "event_logs", batch_size=100)
    assert len(raw_rows(warehouse, "event_logs")) == 200  # two committed batches, not 300
    monkeypatch.setattr(mongo_module, "close_batch", real_close)
    load(mongo_db, warehouse, "event_logs", batch_size=100)
    rows = raw_rows(warehouse, "event_logs")
    assert len(rows) == expected_total
    assert len({r[0] for r in rows}) == expected_total  # nothing doubled


def test_documents_jsonb_cannot_store_are_rejected_and_counted(mongo_db, warehouse) -> None:
    ts = dt.datetime(2026, 10, 1, 9, 0, 0)
    docs = [
        query_doc(1, ts),
        query_doc(2, ts, "bad\x00byte"),
        query_doc(3, ts, r"a literal \u0000 is fine"),
    ]
    docs.append({**query_doc(4, ts), "updated_at": "yesterday"})  # no usable write time
    mongo_db.search_queries.insert_many(docs)
    result = load(mongo_db, warehouse)
    assert (result.landed, result.rejected) == (2, 2)
    landed = {r[0] for r in raw_rows(warehouse, "search_queries")}
    assert landed == {str(docs[0]["_id"]), str(docs[2]["_id"])}
    with psycopg.connect(warehouse) as conn:
        rejects = dict(conn.execute("select record_id, reason from loader.rejects").fetchall())
        batch = conn.execute("select rows_landed, rows_rejected from loader.batches").fetchone()
    assert "NUL" in rejects[str(docs[1]["_id"])]
    assert "updated_at" in rejects[str(docs[3]["_id"])]
    assert batch == (2, 2)
    # The NUL document's payload is kept, escaped, so nothing is lost.
    payload = scalar(
        warehouse, "select payload from loader.rejects where record_id = %s", str(docs[1]["_id"])
    )
    assert "bad\\u0000byte" in payload
    assert load(mongo_db, warehouse).rejected == 0  # not rejected twice


def test_rows_postgres_refuses_are_isolated_and_the_rest_land(warehouse) -> None:
    with psycopg.connect(warehouse) as conn:
        conn.execute("create table t (_id text, doc jsonb)")
        good = [
            CopyRow(f'{i}\t{{"n": {i}}}\n'.encode(), str(i).encode(), b"v", b"{}")
            for i in range(10)
        ]
        bad = CopyRow(b"bad\t{not json\n", b"bad", b"v", b"{not json")
        with conn.transaction():
            refused = copy_rows(
                conn, sql.Identifier("t"), ["_id", "doc"], [*good[:4], bad, *good[4:]]
            )
        assert [r.record_id for r in refused] == ["bad"]
        assert "refused by PostgreSQL" in refused[0].reason
        assert conn.execute("select count(*) from t").fetchone()[0] == 10


def test_concurrent_load_of_the_same_collection_is_refused(mongo_db, warehouse) -> None:
    with psycopg.connect(warehouse) as holder:
        holder.execute("select pg_advisory_lock(hashtext('mongo.search_queries'))")
        with pytest.raises(LoaderError, match=r"another load of mongo\.search_queries is running"):
            load(mongo_db, warehouse)


def test_unreachable_mongo_is_one_clear_line(warehouse, monkeypatch) -> None:
    monkeypatch.setenv("MONGO_URI", "mongodb://127.0.0.1:1")
    with pytest.raises(LoaderError, match=r"cannot reach MongoDB at mongodb://127.0.0.1:1"):
        load_all()


def run_loaders_cli() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loaders", "mongo"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )


def test_unreachable_warehouse_is_one_clear_line_from_the_cli(mongo_db, monkeypatch) -> None:
    monkeypatch.setenv("WAREHOUSE_PORT", "1")
    proc = run_loaders_cli()
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "cannot connect to the warehouse at postgresql://postgres@127.0.0.1:1/" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_config_is_one_clear_line(monkeypatch) -> None:
    monkeypatch.setenv("LOADER_BATCH_SIZE", "lots")
    proc = run_loaders_cli()
    assert proc.returncode == 1
    assert "LOADER_BATCH_SIZE='lots' is not an integer" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_reset_forgets_raw_rows_and_watermark(mongo_db, warehouse) -> None:
    from loaders.mongo.job import reset_collection

    write_day(mongo_db, POP, START)
    first = load(mongo_db, warehouse)
    reset_collection("search_queries")
    assert load(mongo_db, warehouse).landed == first.landed


def test_warehouse_module_exports_are_used() -> None:
    # Guard against the control-table DDL silently losing the rejects uniqueness
    # that makes re-rejection idempotent.
    assert "unique (source, stream, record_id, record_version, reason)" in control.CONTROL_DDL
