"""The overlapped path: a reader thread reads ahead while each batch is encoded and COPYed
as its documents arrive. The rules stay those of one batch at a time: every bad document
rejected with its reason inside its batch, a failure keeps only committed batches, a rerun
leaves what an uninterrupted load leaves, and no reader thread outlives its load."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from functools import partial

import psycopg
import pytest
from bson import ObjectId
from psycopg import sql
from pymongo import MongoClient

from loaders.core.warehouse import LoaderError
from loaders.mongo import client as mongo_client
from loaders.mongo import job, landing
from loaders.mongo.checks import COLLECTIONS, to_copy_row
from loaders.mongo.job import load_collection
from stack.embedded_mongo import EmbeddedMongo
from tests.conftest import free_port

SPEC = COLLECTIONS["search_queries"]
NOW = dt.datetime(2026, 10, 2, 12, 0, tzinfo=dt.UTC)
T0 = dt.datetime(2026, 10, 2, 9, 0)


def doc(i: int, **extra) -> dict:
    written = T0 + dt.timedelta(milliseconds=i)
    return {"_id": ObjectId(), "query_id": f"Q{i}", "user_id": 1, "query_text": "lamp",
            "timestamp": written, "filters": [], "results_count": 1, "updated_at": written,
            **extra}  # fmt: skip


@pytest.fixture
def small_reads(monkeypatch):
    """A reader a few hundred documents ahead (chunks of 100, 3 queued), so a batch of
    500 is encoded while the reader is still reading it."""
    monkeypatch.setattr(job, "prefetch", partial(mongo_client.prefetch, chunk=100, depth=3))


def load(db, conninfo: str, **kwargs):
    with psycopg.connect(conninfo) as conn:
        return load_collection(db, conn, SPEC, batch_size=500, now=NOW, **kwargs)


def raw_rows(conninfo: str) -> list[tuple]:
    with psycopg.connect(conninfo) as conn:
        query = sql.SQL("select _id, doc::text, _source_updated_at from {} order by 1, 3, 2")
        return conn.execute(query.format(landing.raw_table(SPEC).identifier)).fetchall()


def batches(conninfo: str) -> list[tuple[int, int]]:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(
            "select rows_landed, rows_rejected from loader.batches order by batch_id"
        ).fetchall()


def readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "mongo-prefetch"]


def test_hostile_documents_mid_batch_are_rejected_in_their_batch(
    mongo_db, warehouse, small_reads
) -> None:
    docs = [doc(i) for i in range(1200)]
    docs[250]["query_text"] = "bad\x00byte"  # jsonb cannot store it
    docs[700]["_id"] = "bad\x00id"
    docs[1100]["updated_at"] = dt.datetime(9999, 1, 1)  # ahead of the clock: read last
    mongo_db.search_queries.insert_many(docs)
    result = load(mongo_db, warehouse)
    assert (result.landed, result.rejected, result.batches) == (1197, 3, 3)
    assert batches(warehouse) == [(499, 1), (499, 1), (199, 1)]
    with psycopg.connect(warehouse) as conn:
        reasons = dict(conn.execute("select record_id, reason from loader.rejects").fetchall())
    assert "NUL character (\\u0000)" in reasons[str(docs[250]["_id"])]
    assert "_id contains a NUL" in reasons["bad\\u0000id"]
    assert "ahead of the loader's clock" in reasons[str(docs[1100]["_id"])]
    assert not readers()


def test_a_row_postgres_refuses_mid_stream_is_isolated_and_the_batch_lands(
    mongo_db, warehouse, small_reads, monkeypatch
) -> None:
    """A line PostgreSQL refuses (here one the encoder is made to corrupt) stops the
    streamed COPY part-way: the batch is re-sent whole, the bad line isolated."""
    docs = [doc(i) for i in range(1000)]
    bad = str(docs[640]["_id"])
    mongo_db.search_queries.insert_many(docs)
    real = landing.encode_row

    def corrupting(document, *args):
        row = real(document, *args)
        if str(document["_id"]) == bad:
            line, key, version, _ = row
            return line.replace(b'{"_id"', b"{not json", 1), key, version, b"{not json"
        return row

    monkeypatch.setattr(landing, "encode_row", corrupting)
    result = load(mongo_db, warehouse)
    assert (result.landed, result.rejected) == (999, 1)
    assert batches(warehouse) == [(500, 0), (499, 1)]
    with psycopg.connect(warehouse) as conn:
        [(record_id, reason)] = conn.execute("select record_id, reason from loader.rejects")
    assert record_id == bad and reason.startswith("refused by PostgreSQL")
    assert len(raw_rows(warehouse)) == 999


def test_stopping_early_leaves_no_reader_behind(mongo_db, warehouse, small_reads) -> None:
    mongo_db.search_queries.insert_many([doc(i) for i in range(3000)])
    assert load(mongo_db, warehouse, max_batches=1).landed == 500
    assert not readers()  # stopped, not left blocked on its full queue


@pytest.fixture
def own_mongo(tmp_path):
    """A MongoDB of this test's own, which it may stop and start again."""
    server = EmbeddedMongo(data_dir=tmp_path / "mongo" / "data", port=free_port())
    server.start()
    yield server
    server.stop()


def test_the_server_dying_while_the_reader_is_ahead_is_one_line_and_a_rerun_completes(
    own_mongo, warehouse, pg_server, small_reads
) -> None:
    client: MongoClient = MongoClient(own_mongo.uri)
    db = client.app
    db.search_queries.insert_many([doc(i) for i in range(3000)])
    pg_server.ensure_database(reference := f"reference_{uuid.uuid4().hex[:10]}")
    reference_conninfo = pg_server.conninfo(reference)
    load(db, reference_conninfo)

    def stop_after_first_batch(result) -> None:
        if result.batches == 1:
            own_mongo.stop()  # the reader has read ahead into the second batch

    with pytest.raises(LoaderError) as caught:
        load(db, warehouse, progress=stop_after_first_batch)
    message = str(caught.value)
    assert message.startswith("MongoDB failed while reading search_queries: "), message
    assert "\n" not in message and "the batches landed before it are kept" in message
    kept = len(raw_rows(warehouse))
    assert kept in (500, 1000)  # whole batches only: what the reader had before it failed
    assert not readers()
    client.close()

    own_mongo.start()
    client = MongoClient(own_mongo.uri)
    resumed = load(client.app, warehouse)
    client.close()
    assert resumed.landed == 3000 - kept
    assert raw_rows(warehouse) == raw_rows(reference_conninfo)
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(f'drop database "{reference}" with (force)')


def test_the_fallback_rebuilds_each_row_from_its_line() -> None:
    """The refused-row path keeps only the COPY text sent: each row (id, version, body)
    comes back from its line exactly as the encoder made it."""
    for document in (doc(1), doc(2, _id="a\tb\\c\nd", query_text='back\\slash "quoted"\ttab')):
        row = to_copy_row(document, SPEC, 7)
        assert landing._copy_row(row.line) == row
