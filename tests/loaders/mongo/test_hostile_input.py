"""Hostile documents against the real loader: each lands or is rejected with its reason,
one bad document never blocks the others, and no clock can freeze the watermark."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import bson
import psycopg
import pytest
from bson import Decimal128, ObjectId
from bson.raw_bson import RawBSONDocument

from config import PROJECT_ROOT
from loaders.core.warehouse import LoaderError
from loaders.mongo.checks import COLLECTIONS, decode_document
from loaders.mongo.job import load_all, load_collection
from loaders.mongo.landing import land_documents

SPEC = COLLECTIONS["search_queries"]
NOW = dt.datetime(2026, 10, 2, 12, 0, tzinfo=dt.UTC)  # the loader's clock in these tests
T0 = dt.datetime(2026, 10, 2, 9, 0)  # naive UTC, as pymongo returns


def doc(i: int, written: object, **extra) -> dict:
    return {"_id": ObjectId(), "query_id": f"Q{i}", "user_id": 1, "query_text": "lamp",
            "timestamp": T0, "filters": [], "results_count": 1, "updated_at": written,
            **extra}  # fmt: skip


def load(mongo_db, conninfo: str, now: dt.datetime = NOW, collection: str = "search_queries"):
    with psycopg.connect(conninfo) as conn:
        return load_collection(mongo_db, conn, COLLECTIONS[collection], batch_size=100, now=now)


def landed_ids(conninfo: str, table: str = "search_queries") -> set[str]:
    with psycopg.connect(conninfo) as conn:
        return {r[0] for r in conn.execute(f"select _id from raw_mongo.{table}").fetchall()}


def rejects(conninfo: str) -> dict[str, str]:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute("select record_id, reason from loader.rejects").fetchall()
    return dict(rows)


def watermark_ts(conninfo: str) -> str:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(
            "select value ->> 'ts' from loader.watermarks where stream = 'search_queries'"
        ).fetchone()[0]


def test_a_far_future_write_time_is_rejected_and_never_freezes_the_watermark(
    mongo_db, warehouse
) -> None:
    good, future = doc(1, T0), doc(2, dt.datetime(9999, 12, 31))
    mongo_db.search_queries.insert_many([good, future])
    result = load(mongo_db, warehouse)
    assert (result.landed, result.rejected) == (1, 1)
    assert "ahead of the loader's clock" in rejects(warehouse)[str(future["_id"])]
    assert watermark_ts(warehouse).startswith("2026-10-02T09:00")
    # A write after the good one (before the bad clock's date) is still read.
    later = doc(3, T0 + dt.timedelta(hours=1))
    mongo_db.search_queries.insert_one(later)
    again = load(mongo_db, warehouse)
    assert (again.landed, again.rejected) == (1, 0)  # the future one is not rejected twice
    assert landed_ids(warehouse) == {str(good["_id"]), str(later["_id"])}


def test_a_write_time_slightly_ahead_is_within_tolerance(mongo_db, warehouse) -> None:
    ahead = doc(1, (NOW + dt.timedelta(seconds=60)).replace(tzinfo=None))
    mongo_db.search_queries.insert_one(ahead)
    assert load(mongo_db, warehouse).landed == 1


def test_a_late_write_behind_the_watermark_is_read_within_the_lookback(
    mongo_db, warehouse, monkeypatch
) -> None:
    mongo_db.search_queries.insert_many([doc(1, T0), doc(2, T0 + dt.timedelta(minutes=30))])
    assert load(mongo_db, warehouse).landed == 2
    late = doc(3, T0 + dt.timedelta(minutes=10))  # committed now, stamped 20 min back
    mongo_db.search_queries.insert_one(late)
    result = load(mongo_db, warehouse)
    assert result.landed == 1 and result.skipped == 2  # re-read, not re-landed
    assert str(late["_id"]) in landed_ids(warehouse)
    assert load(mongo_db, warehouse).landed == 0  # and a rerun lands nothing
    # Beyond the window a late write is out of reach; a wider window reaches it.
    older = doc(4, T0 - dt.timedelta(hours=3))
    mongo_db.search_queries.insert_one(older)
    assert load(mongo_db, warehouse).landed == 0
    monkeypatch.setenv("LOADER_LOOKBACK_SECONDS", str(6 * 3600))
    assert load(mongo_db, warehouse).landed == 1
    with psycopg.connect(warehouse) as conn:
        dupes = conn.execute(
            "select count(*) - count(distinct (_id, _source_updated_at))"
            " from raw_mongo.search_queries"
        ).fetchone()[0]
    assert dupes == 0


def test_documents_no_watermark_reaches_are_rejected_by_every_full_check(
    mongo_db, warehouse, monkeypatch
) -> None:
    monkeypatch.setenv("LOADER_FULL_CHECK_HOURS", "0")  # the scan on every load
    mongo_db.search_queries.insert_one(doc(1, T0))
    load(mongo_db, warehouse)  # the watermark exists: later loads are incremental
    bad = [doc(2, "yesterday"), doc(3, None), doc(4, 1696150000), {"_id": ObjectId()}]
    del bad[1]["updated_at"]  # missing entirely
    bad[1]["updated_at"] = None
    mongo_db.search_queries.insert_many(bad)
    result = load(mongo_db, warehouse)
    assert result.rejected == 4 and result.unreachable == 4
    assert any("no usable updated_at" in n for n in result.notes)
    reasons = rejects(warehouse)
    for d in bad:
        assert "missing or not a date" in reasons[str(d["_id"])], d
    again = load(mongo_db, warehouse)
    assert again.rejected == 0 and again.unreachable == 4  # recorded once, still reported


def test_the_scan_for_unreachable_documents_runs_on_its_schedule_not_every_load(
    mongo_db, warehouse
) -> None:
    """Its cost grows with the collection: weekly by default (LOADER_FULL_CHECK_HOURS)."""
    mongo_db.search_queries.insert_one(doc(1, T0))
    first = load(mongo_db, warehouse)
    assert first.full_check  # never checked before: due
    no_time = doc(2, None)
    mongo_db.search_queries.insert_one(no_time)
    mongo_db.search_queries.insert_one(doc(3, T0 + dt.timedelta(minutes=1)))
    daily = load(mongo_db, warehouse)
    assert (daily.landed, daily.full_check, daily.unreachable) == (1, False, 0)
    assert rejects(warehouse) == {}
    # A week later (the last check's time moved back), the next load scans again.
    with psycopg.connect(warehouse) as conn:
        conn.execute("update loader.full_checks set checked_at = now() - interval '169 hours'")
    weekly = load(mongo_db, warehouse)
    assert (weekly.full_check, weekly.unreachable, weekly.rejected) == (True, 1, 1)
    assert "missing or not a date" in rejects(warehouse)[str(no_time["_id"])]
    assert load(mongo_db, warehouse).full_check is False  # and not again until next week


def test_a_nul_in_a_string_id_is_rejected_and_blocks_nothing(mongo_db, warehouse) -> None:
    mongo_db.search_queries.insert_many([doc(1, T0), {**doc(2, T0), "_id": "bad\x00id"}])
    mongo_db.event_logs.insert_one(
        {"_id": ObjectId(), "event_id": "E1", "timestamp": T0, "event_type": "login",
         "details": {}, "updated_at": T0}
    )  # fmt: skip
    results = {r.collection: r for r in load_all()}
    assert (results["search_queries"].landed, results["search_queries"].rejected) == (1, 1)
    assert results["event_logs"].landed == 1  # the next collection in the run still loads
    assert "NUL" in rejects(warehouse)["bad\\u0000id"]  # the reject itself is storable


def test_undecodable_bson_becomes_one_reject_and_the_rest_land(warehouse) -> None:
    # nx-27017, the embedded MongoDB stand-in, refuses to store invalid UTF-8 or
    # dates past year 9999 (a real MongoDB written by an old driver can hold
    # them), so the raw BSON a cursor would return is built here and landed
    # through the same decode + land path the loader uses.
    good = bson.encode(doc(1, T0))
    bad_utf8 = bson.encode(doc(2, T0, query_text="abc")).replace(b"abc", b"a\xffc")
    far_date = bson.encode(doc(3, bson.DatetimeMS(2**62)))
    items = [decode_document(RawBSONDocument(b)) for b in (good, bad_utf8, far_date)]
    with psycopg.connect(warehouse) as conn:
        from loaders.raw_tables import ensure_all_raw_tables

        ensure_all_raw_tables(conn)
        result = land_documents(conn, SPEC, items, batch_size=10)
    assert (result.landed, result.rejected) == (1, 2)
    with psycopg.connect(warehouse) as conn:
        rows = conn.execute("select reason, payload from loader.rejects order by 1").fetchall()
    assert "not decodable BSON" in rows[0][0] and rows[0][1].startswith("base64:")
    assert "missing or not a date (DatetimeMS)" in rows[1][0]


def test_nan_and_infinity_are_rejected_never_stored_as_null(warehouse) -> None:
    # The embedded MongoDB stand-in stores JSON and cannot hold NaN; MongoDB can.
    docs = [doc(1, T0), doc(2, T0, score=float("nan")),
            doc(3, T0, nested={"x": [1.0, float("inf")]}),
            doc(4, T0, price=Decimal128("NaN"))]  # fmt: skip
    with psycopg.connect(warehouse) as conn:
        from loaders.raw_tables import ensure_all_raw_tables

        ensure_all_raw_tables(conn)
        result = land_documents(conn, SPEC, docs, batch_size=10)
        reasons = dict(conn.execute("select record_id, reason from loader.rejects").fetchall())
    assert (result.landed, result.rejected) == (1, 3)
    assert reasons[str(docs[1]["_id"])].startswith("score is NaN or Infinity")
    assert reasons[str(docs[2]["_id"])].startswith("nested.x[1] is NaN or Infinity")
    assert reasons[str(docs[3]["_id"])].startswith("price is NaN or Infinity")


def _kill_other_backends(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where datname = current_database() and pid <> pg_backend_pid()"
        )


def test_losing_the_warehouse_mid_load_is_one_line_and_committed_batches_stay(
    mongo_db, warehouse
) -> None:
    mongo_db.search_queries.insert_many([doc(i, T0 + dt.timedelta(seconds=i)) for i in range(30)])
    calls = {"n": 0}

    def kill_after_first_batch(_result) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            _kill_other_backends(warehouse)

    with pytest.raises(LoaderError) as caught:
        load_all(["search_queries"], batch_size=10, progress=kill_after_first_batch)
    message = str(caught.value)
    assert "lost the connection to the warehouse" in message and "\n" not in message
    assert len(landed_ids(warehouse)) == 10  # the committed batch is kept
    assert sum(r.landed for r in load_all(["search_queries"], batch_size=10)) == 20


def test_the_cli_reports_a_lost_connection_in_one_line(mongo_db, warehouse, tmp_path) -> None:
    mongo_db.search_queries.insert_many([doc(i, T0 + dt.timedelta(seconds=i)) for i in range(50)])
    # The CLI runs in its own process: kill its backend from here once it has started loading.
    script = tmp_path / "killer.py"
    script.write_text(
        "import sys, time, psycopg\n"
        # Up to about 30 s: on a busy machine the CLI can take seconds to start.
        "for _ in range(3000):\n"
        "    with psycopg.connect(sys.argv[1], autocommit=True) as c:\n"
        '        n = c.execute("select count(*) from pg_stat_activity where datname ='
        " current_database() and pid <> pg_backend_pid() and state <> 'idle'\").fetchone()[0]\n"
        "        if n:\n"
        '            c.execute("select pg_terminate_backend(pid) from pg_stat_activity where'
        ' datname = current_database() and pid <> pg_backend_pid()")\n'
        "            break\n"
        "    time.sleep(0.01)\n"
    )
    killer = subprocess.Popen([sys.executable, str(script), warehouse])
    proc = subprocess.run(
        [sys.executable, "-m", "loaders", "mongo", "-c", "search_queries", "--batch-size", "1"],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )  # fmt: skip
    killer.wait(timeout=30)
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("  mongo.")]
    assert len(errors) == 1, proc.stderr
    assert "warehouse" in errors[0] and "Traceback" not in proc.stderr


def test_a_login_the_embedded_server_cannot_do_is_one_line(mongo_db, warehouse) -> None:
    """A user and password in MONGO_URI against the embedded stand-in (it has no users):
    pymongo's handshake breaks with a KeyError inside the driver, and the CLI says so in
    one line, the password masked."""
    import os

    uri = os.environ["MONGO_URI"].replace("mongodb://", "mongodb://app:s3cret-pw@")
    proc = subprocess.run(
        [sys.executable, "-m", "loaders", "mongo"], cwd=PROJECT_ROOT, capture_output=True,
        text=True, env={**os.environ, "MONGO_URI": uri},
    )  # fmt: skip
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert "failed the login handshake" in proc.stderr and "MONGO_URI" in proc.stderr
    assert "s3cret-pw" not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr


def test_a_reply_the_driver_cannot_decode_mid_read_is_one_line_and_keeps_the_batches(
    mongo_db, warehouse, monkeypatch
) -> None:
    """The driver raising InvalidBSON from the cursor half-way (a reply it cannot decode).
    Mocked: neither the embedded server nor a test can corrupt a reply on the wire; the
    reads before it are the real cursor's."""
    from loaders.mongo import job

    mongo_db.search_queries.insert_many([doc(i, T0 + dt.timedelta(seconds=i)) for i in range(2500)])
    real = job.read_since

    def breaks_after_2100(*args, **kwargs):
        for n, document in enumerate(real(*args, **kwargs)):
            if n == 2100:
                raise bson.errors.InvalidBSON("invalid object size")
            yield document

    monkeypatch.setattr(job, "read_since", breaks_after_2100)
    with pytest.raises(LoaderError) as caught:
        load_all(["search_queries"], batch_size=500)
    message = str(caught.value)
    assert "MongoDB failed while reading search_queries: invalid object size" in message
    assert "\n" not in message and "batches landed before it are kept" in message
    # The documents read ahead before the failure (whole chunks of the prefetch) landed.
    assert len(landed_ids(warehouse)) == 2000
    monkeypatch.setattr(job, "read_since", real)
    assert sum(r.landed for r in load_all(["search_queries"], batch_size=500)) == 500
