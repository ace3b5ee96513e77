"""The app database reconciled with raw: documents the watermark missed land, deleted ones
become tombstones, against the embedded MongoDB and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import psycopg
from bson import ObjectId

from loaders.mongo.reconcile import reconcile
from tests.loaders.mongo.test_job import load, query_doc, scalar

T = dt.datetime(2026, 10, 5, 12, 0, tzinfo=dt.UTC)


def live(conninfo: str) -> dict[str, str]:
    """_id -> query_text of each document's kept version (latest write time, then landing),
    unless it is a tombstone: what staging keeps."""
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "select _id, doc ->> 'query_text' from (select distinct on (_id) * from"
            " raw_mongo.search_queries order by _id, _source_updated_at desc, _loaded_at desc,"
            " _batch_id desc) l where _op is null"
        ).fetchall()
    return dict(rows)


def source(mongo_db) -> dict[str, str]:
    return {str(d["_id"]): d["query_text"] for d in mongo_db.search_queries.find()}


def test_missed_and_deleted_documents_are_reconciled(mongo_db, warehouse) -> None:
    docs = [query_doc(i, T + dt.timedelta(minutes=i)) for i in range(6)]
    mongo_db.search_queries.insert_many(docs)
    load(mongo_db, warehouse)
    # Written after the watermark with an old write time: a load never reads it.
    old = query_doc(90, dt.datetime(1900, 1, 1, tzinfo=dt.UTC), "from 1900")
    mongo_db.search_queries.insert_one(old)
    # Two documents deleted at the source.
    mongo_db.search_queries.delete_many({"_id": {"$in": [docs[1]["_id"], docs[4]["_id"]]}})
    load(mongo_db, warehouse)
    assert live(warehouse) != source(mongo_db)

    by_name = {r.stream: r for r in reconcile()}
    result = by_name["search_queries"]
    assert {d.partition: d.action for d in result.differences} == {
        "ids": "2 deleted: tombstones landed",
        "1900-01-01": "relanded 1 version(s)",
    }
    assert live(warehouse) == source(mongo_db)
    assert scalar(warehouse, "select count(*) from raw_mongo.search_queries where _op = 'd'") == 2
    # The other collections were empty on both sides.
    assert all(r.differences == [] for r in by_name.values() if r.stream != "search_queries")

    # Once equal, nothing more; a deleted id is not tombstoned twice.
    again = {r.stream: r for r in reconcile()}["search_queries"]
    assert again.differences == []
    assert scalar(warehouse, "select count(*) from raw_mongo.search_queries where _op = 'd'") == 2


def test_a_document_deleted_then_written_again_comes_back(mongo_db, warehouse) -> None:
    doc = query_doc(1, T)
    mongo_db.search_queries.insert_one(doc)
    load(mongo_db, warehouse)
    mongo_db.search_queries.delete_one({"_id": doc["_id"]})
    reconcile(["search_queries"])
    assert live(warehouse) == {}
    again = {**doc, "_id": ObjectId(str(doc["_id"])), "updated_at": T + dt.timedelta(hours=1),
             "query_text": "back"}  # fmt: skip
    mongo_db.search_queries.insert_one(again)
    load(mongo_db, warehouse)
    assert live(warehouse) == {str(doc["_id"]): "back"}


def test_rejected_documents_count_as_held(mongo_db, warehouse) -> None:
    docs = [query_doc(i, T + dt.timedelta(minutes=i)) for i in range(3)]
    # Stamped far ahead of the loader's clock: held back, in loader.rejects.
    docs[1]["updated_at"] = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
    mongo_db.search_queries.insert_many(docs)
    load(mongo_db, warehouse)
    assert scalar(warehouse, "select count(*) from loader.rejects") == 1
    result = {r.stream: r for r in reconcile()}["search_queries"]
    assert result.differences == []
