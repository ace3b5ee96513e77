"""The app database reconciled with raw, per collection and write-day, plus the set of ids.

- **Per write-day** (the UTC day of each collection's write-time field): the
  documents MongoDB counts (one ``$group``) against raw's documents, each at
  the write time of its version staging keeps (the latest by write time, then
  landing). A day that differs is read again from MongoDB and the versions raw
  lacks land, exactly once, as a load lands them: a document written after the
  watermark with an older write time (1900), or missed for any other reason.
- **The set of ids**: every ``_id`` MongoDB holds (read from the ``_id`` index
  alone) against raw's live ones. An id raw holds that MongoDB no longer has
  was deleted: a tombstone lands (its last version, ``_op = 'd'``), and
  staging drops it.

Documents without a usable write time are the full check's (rejected with
their reason); they are left out here. A document rewritten with a write time
older than its landed version makes its two days differ, and is reported, not
relanded: staging ranks versions by write time, so raw keeps the newer.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator

import psycopg
from pymongo.database import Database
from pymongo.errors import PyMongoError

from config import LoaderSettings, WarehouseSettings, advice
from loaders.core.control import close_batch, open_batch, read_watermark, stream_lock
from loaders.core.reconcile import LOCK_WAIT_SECONDS, Partition, Reconciled, record, timed
from loaders.core.warehouse import LoaderError, connect, first_line
from loaders.mongo.checks import COLLECTIONS, READ_OPTIONS, CollectionSpec, as_utc, decode_document
from loaders.mongo.client import mongo_database
from loaders.mongo.landing import SOURCE, land_documents, raw_table
from loaders.mongo.settings import MongoSettings
from loaders.raw_tables import ensure_all_raw_tables

TOMBSTONE_PARTITION = "ids"


def source_days(db: Database, spec: CollectionSpec) -> dict[dt.date, int]:
    """Documents per UTC write-day (documents without a date left out)."""
    field = spec.watermark_field
    day = {"$dateToString": {"format": "%Y-%m-%d", "date": f"${field}"}}
    pipeline = [
        # Dates only (a comparison matches only its own BSON type): a write time of
        # another type is the full check's business, and $dateToString would fail on it.
        {"$match": {field: {"$gte": dt.datetime(1, 1, 1)}}},
        {"$group": {"_id": day, "n": {"$sum": 1}}},
    ]
    found = {}
    for group in db[spec.name].aggregate(pipeline):
        try:
            found[dt.date.fromisoformat(group["_id"])] = int(group["n"])
        except (TypeError, ValueError):  # a year past 9999: held back by every load
            continue
    return found


def _latest(spec: CollectionSpec) -> str:
    """Each _id's version staging keeps: the latest by write time, then by landing."""
    return (
        "select distinct on (_id) _id, _source_updated_at, _op"
        f" from {raw_table(spec).qualified_name}"
        " order by _id, _source_updated_at desc, _loaded_at desc, _batch_id desc"
    )


def raw_days(conn: psycopg.Connection, spec: CollectionSpec) -> dict[dt.date, int]:
    """Per UTC write-day: raw's live documents, plus those rejected and never landed
    (a reject's version is its write time in ISO, UTC)."""
    rows = conn.execute(
        f"select (_source_updated_at at time zone 'UTC')::date, count(*) from ({_latest(spec)}) l"
        " where l._op is null group by 1"
    ).fetchall()
    rejected = conn.execute(
        "select left(record_version, 10)::date, count(distinct record_id) from loader.rejects r"
        " where source = %s and stream = %s and record_version ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T'"
        f" and not exists (select from {raw_table(spec).qualified_name} t"
        " where t._id = r.record_id) group by 1",
        (SOURCE, spec.name),
    ).fetchall()
    conn.commit()
    found: dict[dt.date, int] = {}
    for day, n in [*rows, *rejected]:
        found[day] = found.get(day, 0) + int(n)
    return found


def _day_documents(db: Database, spec: CollectionSpec, day: dt.date) -> Iterator:
    collection = db.get_collection(spec.name, codec_options=READ_OPTIONS)
    start = dt.datetime.combine(day, dt.time())
    field = spec.watermark_field
    query = {field: {"$gte": start, "$lt": start + dt.timedelta(days=1)}}
    yield from collection.find(query).sort([(field, 1), ("_id", 1)])


def _not_in_raw(conn: psycopg.Connection, spec: CollectionSpec, day: dt.date, docs: Iterable):
    """The day's documents whose (_id, write time) raw does not hold."""
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    held = set(
        conn.execute(
            f"select _id, _source_updated_at from {raw_table(spec).qualified_name}"
            " where _source_updated_at >= %s and _source_updated_at < %s",
            (start, start + dt.timedelta(days=1)),
        ).fetchall()
    )
    conn.commit()
    for raw in docs:
        item = decode_document(raw)
        if isinstance(item, dict):
            written = item.get(spec.watermark_field)
            if isinstance(written, dt.datetime) and (str(item.get("_id")), as_utc(written)) in held:
                continue
        yield item


def _reland_day(
    db: Database, conn: psycopg.Connection, spec: CollectionSpec, day: dt.date,
    settings: LoaderSettings,
) -> str:  # fmt: skip
    watermark = read_watermark(conn, SOURCE, spec.name)
    landed = land_documents(
        conn,
        spec,
        _not_in_raw(conn, spec, day, _day_documents(db, spec, day)),
        batch_size=settings.batch_size,
        watermark=watermark,
        # As a load: a write time too far ahead is held back, never the watermark.
        not_after=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=settings.future_tolerance_seconds),
    )
    if landed.landed + landed.rejected == 0:
        return (
            "nothing new to land: a document rewritten with an older write time "
            "(staging keeps the newer version)?"
        )
    return f"relanded {landed.landed:,} version(s)"


def _tombstone_deleted(conn: psycopg.Connection, spec: CollectionSpec, ids: list[str]) -> int:
    """A tombstone for each deleted id: its kept version again, marked ``d``, landed now
    (so it outranks that version in staging), in one batch."""
    with conn.transaction():
        batch_id = open_batch(conn, SOURCE, spec.name)
        with conn.cursor() as cur:
            cur.execute(
                f"insert into {raw_table(spec).qualified_name}"
                " (_id, doc, _source_updated_at, _batch_id, _op)"
                f" select distinct on (_id) _id, doc, _source_updated_at, %s, 'd'"
                f" from {raw_table(spec).qualified_name} where _id = any(%s)"
                " order by _id, _source_updated_at desc, _loaded_at desc, _batch_id desc",
                (batch_id, ids),
            )
            landed = cur.rowcount
        close_batch(conn, batch_id, SOURCE, spec.name, landed, 0, None)
    return landed


def reconcile_collection(
    db: Database, conn: psycopg.Connection, spec: CollectionSpec, settings: LoaderSettings
) -> Reconciled:
    started = time.monotonic()
    result = Reconciled(SOURCE, spec.name)
    with stream_lock(conn, SOURCE, spec.name, wait_seconds=LOCK_WAIT_SECONDS):
        # First the deletes, so the days compare what is left.
        source_ids = {str(d["_id"]) for d in db[spec.name].find({}, {"_id": 1})}
        live = {
            _id
            for (_id,) in conn.execute(f"select _id from ({_latest(spec)}) l where l._op is null")
        }
        conn.commit()
        gone = sorted(live - source_ids)
        result.compare(
            TOMBSTONE_PARTITION,
            Partition(len(source_ids & live)),
            Partition(len(live)),
            lambda: f"{_tombstone_deleted(conn, spec, gone):,} deleted: tombstones landed",
        )
        at_source, in_raw = source_days(db, spec), raw_days(conn, spec)
        for day in sorted(set(at_source) | set(in_raw)):
            result.compare(
                day.isoformat(),
                Partition(at_source.get(day, 0)),
                Partition(in_raw.get(day, 0)),
                lambda day=day: _reland_day(db, conn, spec, day, settings),
            )
    record(conn, timed(result, started))
    return result


def reconcile(collections: Iterable[str] | None = None) -> list[Reconciled]:
    settings = LoaderSettings.from_env()
    client, db = mongo_database(MongoSettings.from_env())
    try:
        with connect(WarehouseSettings.from_env()) as conn:
            ensure_all_raw_tables(conn)
            return [
                reconcile_collection(db, conn, COLLECTIONS[name], settings)
                for name in (collections or COLLECTIONS)
            ]
    except PyMongoError as exc:
        raise LoaderError(
            f"MongoDB failed while reconciling: {first_line(exc)[:200]} "
            f"({advice('mongo', 'MONGO_URI')}); what was relanded before it is kept"
        ) from None
    finally:
        client.close()
