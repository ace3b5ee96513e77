"""Reading the app database: connection, keyset order, and reads ahead of the writer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import closing, suppress
from itertools import islice

from pymongo import MongoClient
from pymongo.cursor import Cursor
from pymongo.database import Database
from pymongo.errors import OperationFailure, PyMongoError

from config import advice
from loaders.core.copy import read_ahead
from loaders.core.warehouse import LoaderError, first_line
from loaders.mongo.checks import READ_OPTIONS, CollectionSpec
from loaders.mongo.settings import MongoSettings


def mongo_database(settings: MongoSettings) -> tuple[MongoClient, Database]:
    """The app database, failing with one line if the server does not answer or refuses
    the login."""
    try:
        client: MongoClient = MongoClient(settings.uri, serverSelectionTimeoutMS=5000)
    except (PyMongoError, ValueError, TypeError) as exc:  # a URI pymongo cannot use
        raise LoaderError(
            f"MONGO_URI {settings.describe()} is not usable: {first_line(exc)[:200]}"
        ) from None
    try:
        client.admin.command("ping")
    except OperationFailure as exc:  # the server answered: a refused login or command
        client.close()
        raise LoaderError(
            f"MongoDB at {settings.describe()} refused the connection: {first_line(exc)[:200]}"
            " (check the user and password in MONGO_URI)"
        ) from None
    except PyMongoError:
        client.close()
        raise LoaderError(
            f"cannot reach MongoDB at {settings.describe()} ({advice('mongo', 'MONGO_URI')})"
        ) from None
    except Exception as exc:
        # A server that answers but not as pymongo expects: the embedded stand-in,
        # asked to log in (it has no users), breaks pymongo's handshake with a KeyError.
        client.close()
        login = (
            " (it may not support users: leave them out of MONGO_URI)"
            if "@" in (settings.uri)
            else ""
        )
        raise LoaderError(
            f"MongoDB at {settings.describe()} failed the login handshake: "
            f"{type(exc).__name__} {first_line(exc)[:120]}{login}"
        ) from None
    return client, client[settings.database]


def read_since(
    db: Database, spec: CollectionSpec, since: dt.datetime | None, batch_size: int
) -> Cursor:
    """Documents written at or after ``since`` (all when None), in (write time, _id) order.

    Served by an index on (write time, _id), which a real app database needs
    (the loader only reads: see the README for the index to create; the
    embedded stand-in has the write-time index alone). Documents are returned
    as raw BSON: ``checks.decode_document`` decodes each one, so one
    undecodable document cannot stop the cursor.
    """
    collection = db.get_collection(spec.name, codec_options=READ_OPTIONS)
    f = spec.watermark_field
    query = {} if since is None else {f: {"$gte": since.astimezone(dt.UTC).replace(tzinfo=None)}}
    cursor = collection.find(query, batch_size=min(batch_size, 10_000))
    return cursor.sort([(f, 1), ("_id", 1)])


# Every BSON type but date: a write time of any of these is out of the watermark's reach.
_NOT_DATE_TYPES = (
    "string", "number", "bool", "object", "array", "objectId", "binData", "timestamp",
    "regex", "javascript", "symbol", "minKey", "maxKey", "undefined", "dbPointer",
)  # fmt: skip


def unreachable(db: Database, spec: CollectionSpec) -> Iterator:
    """Documents whose write time is missing, null or not a date: no watermark reaches them.

    Two queries (null/missing, then the wrong types), each served by the
    write-time index on MongoDB; the embedded stand-in answers ``$or`` with
    a null clause wrongly, hence two.
    """
    collection = db.get_collection(spec.name, codec_options=READ_OPTIONS)
    f = spec.watermark_field
    yield from collection.find({f: None})
    yield from collection.find({"$or": [{f: {"$type": t}} for t in _NOT_DATE_TYPES]})


def batched(docs: Iterable, size: int) -> Iterator[list]:
    it = iter(docs)
    while chunk := list(islice(it, size)):
        yield chunk


def prefetch(docs: Iterable, chunk: int = 1_000, depth: int = 20) -> Iterator:
    """Read ``docs`` (a cursor) in a background thread, up to ``depth`` chunks ahead.

    The source server produces the next documents while this process encodes
    and COPYs the current ones (pymongo releases the GIL on socket reads, psycopg
    on COPY). Documents cross the queue in chunks to keep the hand-over cheap.
    An error in the reader is raised in the consumer after the documents read
    before it; the reader stops when the consumer does (close the generator),
    and closes the cursor in either case.
    """

    def chunks() -> Iterator[list]:
        try:
            yield from batched(docs, chunk)
        finally:
            # A server already gone is the error the consumer reports, not a second one.
            with suppress(PyMongoError):
                if close := getattr(docs, "close", None):
                    close()

    with closing(read_ahead(chunks(), depth, name="mongo-prefetch")) as parts:
        for part in parts:
            yield from part
