"""The contract every document must meet to land, and its COPY line.

What is checked here is only what raw landing needs: a write time the
watermark can follow, and a body PostgreSQL's jsonb can store. Field types
are the staging models' business (safe casts, bad values counted by tests).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import math
import re
from dataclasses import dataclass

import orjson
from bson import Decimal128, ObjectId, decode, json_util
from bson.binary import Binary
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.errors import BSONError
from bson.raw_bson import RawBSONDocument

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
        number = value.to_decimal()
        if not number.is_finite():
            raise TypeError("a Decimal128 NaN or Infinity")
        return str(number)
    if isinstance(value, Binary | bytes):
        return json_util.dumps(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


JSON_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


def encode_document(doc: dict) -> bytes:
    """The document as JSON; naive datetimes from pymongo are UTC."""
    return orjson.dumps(doc, default=_bson_default, option=JSON_OPTIONS)


def as_utc(ts: dt.datetime) -> dt.datetime:
    return ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts.astimezone(dt.UTC)


# Documents are read as raw BSON and decoded here, one at a time, so a document
# the driver cannot decode (invalid UTF-8, a date beyond year 9999) becomes one
# reject instead of an exception that stops the cursor. Out-of-range dates
# decode as DatetimeMS rather than raising.
READ_OPTIONS = CodecOptions(
    document_class=RawBSONDocument, datetime_conversion=DatetimeConversion.DATETIME_AUTO
)
_DECODE_OPTIONS = CodecOptions(datetime_conversion=DatetimeConversion.DATETIME_AUTO)
_LENIENT_OPTIONS = CodecOptions(
    datetime_conversion=DatetimeConversion.DATETIME_AUTO, unicode_decode_error_handler="replace"
)
_MAX_PAYLOAD = 100_000  # characters of a rejected document kept in loader.rejects


def decode_document(raw: RawBSONDocument | dict) -> dict | Reject:
    """The document as Python values, or a Reject carrying its bytes (base64)."""
    if isinstance(raw, dict):
        return raw
    try:
        return decode(raw.raw, _DECODE_OPTIONS)
    except (BSONError, ValueError, OverflowError) as exc:
        try:
            record_id = str(decode(raw.raw, _LENIENT_OPTIONS).get("_id"))
        except Exception:  # the bytes are beyond repair: name them by their hash
            record_id = "undecodable:" + hashlib.sha256(raw.raw).hexdigest()[:16]
        return Reject(
            record_id,
            "invalid",
            f"not decodable BSON: {exc}",
            "base64:" + base64.b64encode(raw.raw).decode()[:_MAX_PAYLOAD],
        )


def non_finite_path(value: object, path: str = "") -> str | None:
    """The path of the first NaN or Infinity in ``value``, or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path or "(root)"
    if isinstance(value, Decimal128):
        return None if value.to_decimal().is_finite() else path or "(root)"
    if isinstance(value, dict):
        for key, item in value.items():
            if found := non_finite_path(item, f"{path}.{key}" if path else str(key)):
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if found := non_finite_path(item, f"{path}[{i}]"):
                return found
    return None


def encode_row(
    doc: dict, spec: CollectionSpec, suffix: bytes, limit: dt.datetime | None = None
) -> tuple[bytes, bytes, bytes, bytes] | Reject:
    """A document's COPY line and what to record if PostgreSQL refuses it (``CopyRow``'s
    fields: line, record id, version, body), or a Reject saying why it cannot be landed.

    ``suffix`` ends the line (the batch id column and the newline). ``limit`` (naive,
    UTC, as pymongo returns write times) is the latest write time accepted: a document
    stamped further ahead is rejected rather than allowed to move the watermark past
    every later write. This runs once per document and is most of the loader's own CPU
    time, so it stays lean: a tuple rather than an object, bytes throughout, each byte
    scan only where it can find something, and text decoded only for rejects.
    """
    oid = doc.get("_id")
    written = doc.get(spec.watermark_field)
    if not isinstance(written, dt.datetime):
        return Reject(
            str(oid),
            "invalid",
            f"{spec.watermark_field} is missing or not a date ({type(written).__name__}), "
            "so no watermark can track it",
            repr(doc)[:_MAX_PAYLOAD],
        )
    version = orjson.dumps(written, option=JSON_OPTIONS)[1:-1]  # ISO-8601 UTC, 10x isoformat()
    if (
        limit is not None
        and (written if written.tzinfo is None else as_utc(written).replace(tzinfo=None)) > limit
    ):
        return Reject(
            str(oid),
            version.decode(),
            f"{spec.watermark_field} {version.decode()} is ahead of the loader's clock by more "
            f"than the tolerance (LOADER_FUTURE_TOLERANCE_SECONDS); held back so the watermark "
            "does not pass later writes: it lands once its time has come",
            repr(doc)[:_MAX_PAYLOAD],
        )
    if type(oid) is ObjectId:
        key = str(oid).encode()
    elif isinstance(oid, str) and "\x00" in oid:
        return Reject(
            oid, version.decode(), "the _id contains a NUL character", repr(doc)[:_MAX_PAYLOAD]
        )
    else:
        key = copy_text(str(oid))
    try:
        body = encode_document(doc)
    except (TypeError, orjson.JSONEncodeError) as exc:
        body, problem = b"", f"not representable as JSON: {exc}"
    else:
        # orjson writes NaN and Infinity as null: look closer only when a null is there.
        problem = None
    if (not body or b"null" in body) and (path := non_finite_path(doc)):
        problem = (
            f"{path} is NaN or Infinity, which JSON and jsonb cannot hold "
            "(rejected rather than stored as null)"
        )
    if problem:
        return Reject(str(oid), version.decode(), problem, repr(doc)[:_MAX_PAYLOAD])
    escaped = body
    if b"\\" in body:  # rare: an escape in a string (every \u0000 has one)
        if b"\\u0000" in body and _NUL_ESCAPE.search(body):
            return Reject(
                str(oid),
                version.decode(),
                "contains a NUL character (\\u0000), which PostgreSQL jsonb cannot store",
                body.decode(),
            )
        escaped = body.replace(b"\\", b"\\\\")
    return b"%b\t%b\t%b%b" % (key, escaped, version, suffix), key, version, body


def batch_suffix(batch_id: int) -> bytes:
    """The end of every COPY line of a batch: its id column and the newline."""
    return b"\t%d\n" % batch_id


def naive_utc(ts: dt.datetime | None) -> dt.datetime | None:
    """``encode_row``'s limit: compared with naive write times as pymongo returns them."""
    return None if ts is None else as_utc(ts).replace(tzinfo=None)


def to_copy_row(
    doc: dict, spec: CollectionSpec, batch_id: int, not_after: dt.datetime | None = None
) -> CopyRow | Reject:
    """One COPY row for a document, or a Reject saying why it cannot be landed
    (``encode_row``; ``not_after``: the latest write time accepted, aware)."""
    row = encode_row(doc, spec, batch_suffix(batch_id), naive_utc(not_after))
    return row if isinstance(row, Reject) else CopyRow(*row)


def encode_watermark(doc: dict, spec: CollectionSpec) -> dict:
    return {
        "field": spec.watermark_field,
        "ts": as_utc(doc[spec.watermark_field]).isoformat(),
        "id": json_util.dumps(doc["_id"]),
    }


def watermark_time(watermark: dict | None) -> dt.datetime | None:
    if watermark is None:
        return None
    return dt.datetime.fromisoformat(watermark["ts"]).astimezone(dt.UTC)
