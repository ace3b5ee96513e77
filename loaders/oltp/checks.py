"""The replicated tables' contract: which columns land, and what orders the keyset.

The loader is the consumer of the order system's schema: it declares the
columns it replicates (``datagen/oltp_schema.py`` is the producer's side), so a
column the source adds later is not landed until it is added here, and a
column the source drops fails the load with its name.

Also here: the keyset position a batch ends on, and the rows the watermark
refuses (a write time too far ahead of the source's clock, or one no watermark
can reach). Nothing here talks to a server.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from loaders.core.control import Reject
from loaders.core.copy import CopyRow


@dataclass(frozen=True)
class OltpTable:
    name: str
    primary_key: str  # one integer column: the keyset's tie-breaker
    columns: tuple[str, ...]  # as landed, in order; include primary_key and cursor
    cursor: str = "updated_at"  # the write time every insert and update sets

    @property
    def key_index(self) -> int:
        return self.columns.index(self.primary_key)

    @property
    def cursor_index(self) -> int:
        return self.columns.index(self.cursor)


# In foreign-key order (a table after the tables it references): ``load_all``
# loads them in this order, from one snapshot, so raw never holds an order
# whose user was committed too late for the run.
TABLES: dict[str, OltpTable] = {
    t.name: t
    for t in (
        OltpTable(
            "product_categories", "category_id", ("category_id", "name", "created_at", "updated_at")
        ),
        OltpTable(
            "products",
            "product_id",
            ("product_id", "name", "category_id", "price", "created_at", "updated_at"),
        ),
        OltpTable(
            "users",
            "user_id",
            (
                "user_id",
                "first_name",
                "last_name",
                "email",
                "phone",
                "registration_date",
                "loyalty_status",
                "created_at",
                "updated_at",
            ),
        ),
        OltpTable(
            "orders",
            "order_id",
            (
                "order_id",
                "user_id",
                "order_date",
                "status",
                "total_amount",
                "created_at",
                "updated_at",
            ),
        ),
        OltpTable(
            "order_details",
            "order_detail_id",
            (
                "order_detail_id",
                "order_id",
                "product_id",
                "quantity",
                "price_per_unit",
                "total_price",
                "created_at",
                "updated_at",
            ),
        ),
    )
}

# The source types the keyset can follow (format_type() spelling).
KEY_TYPES = frozenset({"smallint", "integer", "bigint"})
CURSOR_TYPES = frozenset({"timestamp with time zone", "timestamp without time zone"})
# The earliest write time a watermark can hold (Python's datetime.min). Earlier
# values (BC dates, -infinity) are unreachable, like NULL.
MIN_CURSOR = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
MAX_PAYLOAD = 100_000  # characters of a rejected row kept in loader.rejects


def contract_problem(spec: OltpTable, found: dict[str, str] | None) -> str | None:
    """What keeps ``spec`` from loading, given the source's columns (name -> type), or None."""
    if found is None:
        return f"has no table {spec.name}, which the loader replicates"
    missing = [c for c in spec.columns if c not in found]
    if missing:
        return (
            f"table {spec.name} lacks column(s) {', '.join(missing)}, which the loader lands "
            "(contract: loaders/oltp/checks.py); restore them at the source or change the contract"
        )
    if found[spec.primary_key] not in KEY_TYPES:
        return (
            f"{spec.name}.{spec.primary_key} is {found[spec.primary_key]}, but the keyset's "
            "tie-breaker must be an integer column"
        )
    if found[spec.cursor] not in CURSOR_TYPES:
        return (
            f"{spec.name}.{spec.cursor} is {found[spec.cursor]}, but the watermark follows a "
            "timestamp column"
        )
    return None


def parse_cursor(text: str) -> dt.datetime:
    """A write time as the source session prints it (UTC, ISO), as an aware UTC datetime."""
    ts = dt.datetime.fromisoformat(text)
    return ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts.astimezone(dt.UTC)


@dataclass(frozen=True)
class Position:
    """A place in a table's (cursor, primary key) order.

    ``pk=None`` means "from this write time on, inclusive" (the start of a
    first load or of the lookback window); otherwise "strictly after".
    """

    updated_at: dt.datetime
    pk: int | None = None

    def watermark(self) -> dict:
        return {"updated_at": self.updated_at.isoformat(), "pk": self.pk}

    @classmethod
    def from_watermark(cls, watermark: dict | None) -> Position | None:
        if watermark is None:
            return None
        return cls(parse_cursor(watermark["updated_at"]), int(watermark["pk"]))

    @classmethod
    def of_line(cls, line: bytes, spec: OltpTable) -> Position:
        """The position of one COPY text line of ``spec``'s columns (the batch's last row)."""
        fields = line.rstrip(b"\n").split(b"\t")
        return cls(parse_cursor(fields[spec.cursor_index].decode()), int(fields[spec.key_index]))


def copy_row(line: bytes, spec: OltpTable) -> CopyRow:
    """A COPY text line with what to record if the warehouse refuses it (the fallback path)."""
    fields = line.rstrip(b"\n").split(b"\t")
    return CopyRow(line, fields[spec.key_index], fields[spec.cursor_index], line)


def text(value: str | bytes | None) -> str:
    """A value the source returned: str, or bytes from a SQL_ASCII database (not decoded)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return value


def held_back(spec: OltpTable, pk: str, version: str, payload: str) -> Reject:
    """A row stamped further ahead of the source's clock than the tolerance."""
    return Reject(
        pk,
        version,
        f"{spec.cursor} {version} is more than LOADER_FUTURE_TOLERANCE_SECONDS ahead of the "
        "source's clock: held back so the watermark does not pass later writes; it lands once "
        "its time has come",
        payload[:MAX_PAYLOAD],
    )


def unreachable(spec: OltpTable, pk: str, version: str | None, payload: str) -> Reject:
    """A row whose write time no watermark can reach (NULL, BC or -infinity)."""
    if version is None:
        return Reject(
            pk,
            "null",
            f"{spec.cursor} is null, so no watermark can reach the row (re-checked every run)",
            payload[:MAX_PAYLOAD],
        )
    return Reject(
        pk,
        version,
        f"{spec.cursor} {version} is before year 1, so no watermark can reach the row "
        "(re-checked every run)",
        payload[:MAX_PAYLOAD],
    )
