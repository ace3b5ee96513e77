"""The contract every document must meet to land, and its COPY line.

What is checked here is only what raw landing needs: a write time the
watermark can follow, and a body PostgreSQL's jsonb can store. Field types
are the staging models' business (safe casts, bad values counted by tests).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import orjson
from bson import Decimal128, ObjectId, json_util
from bson.binary import Binary

from loaders.core.control import Reject
from loaders.core.copy import CopyRow, copy_text


@dataclass(frozen=True)
class CollectionSpec:
    name: str
    watermark_field: str  # the app's write-time field: set on every insert and update


# Every collection of the app database (SPEC.md: all are replicated).
COLLECTIONS: dict[str, CollectionSpec] = {
    spec.name: spec
    for spec in (
        CollectionSpec("user_sessions", "updated_at"),
        CollectionSpec("product_price_history", "updated_at"),
        CollectionSpec("event_logs", "updated_at"),
        CollectionSpec("support_tickets", "updated_at"),
        CollectionSpec("user_recommendations", "last_updated"),
        CollectionSpec("moderation_queue", "updated_at"),
        CollectionSpec("search_queries", "updated_at"),
    )
}

_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _bson_default(value: object) -> object:
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, Decimal128):
        return str(value.to_decimal())
    if isinstance(value, Binary | bytes):
        return json_util.dumps(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


JSON_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


def encode_document(doc: dict) -> bytes:
    """The document as JSON; naive datetimes from pymongo are UTC."""
    return orjson.dumps(doc, default=_bson_default, option=JSON_OPTIONS)


def as_utc(ts: dt.datetime) -> dt.datetime:
    return ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts.astimezone(dt.UTC)


def to_copy_row(doc: dict, spec: CollectionSpec, batch_id: int) -> CopyRow | Reject:
    """One COPY line for a document, or a Reject saying why it cannot be landed.

    This runs once per document and dominates the loader's own CPU time, so it
    stays lean: everything is bytes, and text is decoded only for rejects.
    """
    oid = doc.get("_id")
    written = doc.get(spec.watermark_field)
    if not isinstance(written, dt.datetime):
        return Reject(
            str(oid),
            "invalid",
            f"{spec.watermark_field} is missing or not a date, so no watermark can track it",
            repr(doc)[:100_000],
        )
    version = orjson.dumps(written, option=JSON_OPTIONS)[1:-1]  # ISO-8601 UTC, 10x isoformat()
    try:
        body = encode_document(doc)
    except (TypeError, orjson.JSONEncodeError) as exc:
        return Reject(
            str(oid), version.decode(), f"not representable as JSON: {exc}", repr(doc)[:100_000]
        )
    if b"\\u0000" in body and _NUL_ESCAPE.search(body):
        return Reject(
            str(oid),
            version.decode(),
            "contains a NUL character (\\u0000), which PostgreSQL jsonb cannot store",
            body.decode(),
        )
    key = str(oid).encode() if isinstance(oid, ObjectId) else copy_text(str(oid))
    escaped = body.replace(b"\\", b"\\\\") if b"\\" in body else body
    return CopyRow(b"%b\t%b\t%b\t%d\n" % (key, escaped, version, batch_id), key, version, body)


def encode_watermark(doc: dict, spec: CollectionSpec) -> dict:
    return {
        "field": spec.watermark_field,
        "ts": as_utc(doc[spec.watermark_field]).isoformat(),
        "id": json_util.dumps(doc["_id"]),
    }
