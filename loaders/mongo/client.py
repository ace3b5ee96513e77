"""Reading the app database: connection, keyset order, and reads ahead of the writer."""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections.abc import Iterable, Iterator
from itertools import islice

from bson import json_util
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import PyMongoError

from config import MongoSettings, advice
from loaders.core.warehouse import LoaderError
from loaders.mongo.checks import CollectionSpec


def mongo_database(settings: MongoSettings) -> tuple[MongoClient, Database]:
    """The app database, failing with one line if the server does not answer."""
    client: MongoClient = MongoClient(settings.uri, serverSelectionTimeoutMS=5000)
    try:
        client.admin.command("ping")
    except PyMongoError:
        client.close()
        raise LoaderError(
            f"cannot reach MongoDB at {settings.describe()} ({advice('mongo', 'MONGO_URI')})"
        ) from None
    return client, client[settings.database]


def keyset_filter(spec: CollectionSpec, watermark: dict | None) -> dict:
    """Documents strictly after the watermark in (write time, _id) order."""
    f = spec.watermark_field
    if watermark is None:
        return {}  # documents without a valid write time are rejected, visibly
    ts = dt.datetime.fromisoformat(watermark["ts"]).astimezone(dt.UTC).replace(tzinfo=None)
    last_id = json_util.loads(watermark["id"])
    return {"$or": [{f: {"$gt": ts}}, {f: ts, "_id": {"$gt": last_id}}]}


def batched(docs: Iterable, size: int) -> Iterator[list]:
    it = iter(docs)
    while chunk := list(islice(it, size)):
        yield chunk


_DONE = object()


def prefetch(docs: Iterable, chunk: int = 1_000, depth: int = 20) -> Iterator:
    """Read ``docs`` in a background thread, up to ``depth`` chunks ahead.

    The source server produces the next documents while this process encodes
    and COPYs the current batch (network waits release the GIL). Documents
    cross the queue in chunks to keep the hand-over cheap. Errors in the reader
    are re-raised in the consumer, and the reader stops if the consumer does.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for part in batched(docs, chunk):
                if not put(part):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer
            put(exc)

    reader = threading.Thread(target=read, name="mongo-prefetch", daemon=True)
    reader.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        reader.join(timeout=5)
