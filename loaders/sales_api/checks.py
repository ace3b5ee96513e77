"""The contract of the increment's files, and the check run before anything lands.

Seed 004's FileSensor step: every file present and well-formed, or one clear
error naming the file and the line.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from loaders.core.warehouse import LoaderError

MANIFEST = "_increment.json"


@dataclass(frozen=True)
class RawFile:
    """The contract for one increment file: its columns and how each must parse."""

    name: str
    table: str
    columns: tuple[str, ...]
    optional: frozenset[str] = frozenset()
    ints: frozenset[str] = frozenset()
    decimals: frozenset[str] = frozenset()
    timestamps: frozenset[str] = frozenset()
    dates: frozenset[str] = frozenset()
    enums: dict[str, frozenset[str]] = field(default_factory=dict)


FILES: dict[str, RawFile] = {
    f.name: f
    for f in (
        RawFile(
            "customer_research_inc.csv",
            "customer_research",
            ("date_id", "category_id", "geo_id", "sales_qty", "sales_amt"),
            ints=frozenset({"category_id", "geo_id", "sales_qty"}),
            decimals=frozenset({"sales_amt"}),
            dates=frozenset({"date_id"}),
        ),
        RawFile(
            "user_order_log_inc.csv",
            "user_order_log",
            (
                "uniq_id",
                "date_time",
                "city_id",
                "city_name",
                "customer_id",
                "first_name",
                "last_name",
                "item_id",
                "item_name",
                "quantity",
                "payment_amount",
                "status",
            ),
            # Older increments have no status column: those rows are shipped (in staging).
            optional=frozenset({"status"}),
            ints=frozenset({"city_id", "customer_id", "item_id", "quantity"}),
            decimals=frozenset({"payment_amount"}),
            timestamps=frozenset({"date_time"}),
            enums={"status": frozenset({"shipped", "refunded"})},
        ),
        RawFile(
            "user_activity_log_inc.csv",
            "user_activity_log",
            ("uniq_id", "date_time", "action_id", "customer_id", "quantity"),
            ints=frozenset({"action_id", "customer_id", "quantity"}),
            timestamps=frozenset({"date_time"}),
        ),
    )
}


@dataclass
class CheckedFile:
    spec: RawFile
    rows: list[tuple[str | None, ...]]  # in spec.columns order; None for an absent optional column
    missing_optional: list[str]


def _check_value(spec: RawFile, column: str, value: str) -> str | None:
    """Why ``value`` is not acceptable for ``column``, or None."""
    try:
        if column in spec.ints:
            int(value)
        elif column in spec.decimals:
            Decimal(value)
        elif column in spec.timestamps:
            dt.datetime.fromisoformat(value)
        elif column in spec.dates:
            dt.date.fromisoformat(value)
    except (ValueError, InvalidOperation):
        kind = "number" if column in spec.ints | spec.decimals else "date/time"
        return f"{column}={value!r} is not a valid {kind}"
    allowed = spec.enums.get(column)
    if allowed and value not in allowed:
        return f"{column}={value!r} is not one of {sorted(allowed)}"
    return None


def check_file(path: Path, spec: RawFile, expected_rows: int | None) -> CheckedFile:
    """Parse and validate one file; a problem raises LoaderError naming the file and line."""
    if not path.exists():
        raise LoaderError(f"{path.name} is missing from {path.parent}: the increment is incomplete")
    text = path.read_text(encoding="utf-8", errors="strict")
    where = f"{path}"
    if text and not text.endswith("\n"):
        lines = text.count("\n") + 1
        raise LoaderError(f"{where}: line {lines}: the file ends mid-line (truncated transfer?)")
    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise LoaderError(f"{where}: line 1: the file is empty (no header)") from None
    except csv.Error as exc:
        raise LoaderError(f"{where}: line 1: {exc}") from None
    unknown = [c for c in header if c not in spec.columns]
    missing = [c for c in spec.columns if c not in header]
    required_missing = [c for c in missing if c not in spec.optional]
    if unknown or required_missing:
        raise LoaderError(
            f"{where}: line 1: header {header} does not match the contract: "
            f"missing {required_missing or 'nothing'}, unexpected {unknown or 'nothing'}"
        )
    index = [header.index(c) if c in header else None for c in spec.columns]
    rows: list[tuple[str | None, ...]] = []
    try:
        for record in reader:
            line = reader.line_num
            if len(record) != len(header):
                raise LoaderError(
                    f"{where}: line {line}: {len(record)} fields, the header has {len(header)}"
                )
            for column, i in zip(spec.columns, index, strict=True):
                if i is not None and (problem := _check_value(spec, column, record[i])):
                    raise LoaderError(f"{where}: line {line}: {problem}")
            rows.append(tuple(record[i] if i is not None else None for i in index))
    except csv.Error as exc:
        raise LoaderError(f"{where}: line {reader.line_num}: {exc}") from None
    if expected_rows is not None and len(rows) != expected_rows:
        raise LoaderError(
            f"{where}: {len(rows)} data rows, the API announced {expected_rows} "
            "(truncated transfer?)"
        )
    return CheckedFile(spec, rows, missing)


def check_increment(folder: Path) -> dict[str, CheckedFile]:
    """Every file of the increment present and well-formed, or one clear error."""
    manifest = folder / MANIFEST
    if not manifest.exists():
        raise LoaderError(f"{folder} holds no complete download ({MANIFEST} missing)")
    announced = {f["name"]: f.get("rows") for f in json.loads(manifest.read_text())["files"]}
    return {
        name: check_file(folder / name, spec, announced.get(name)) for name, spec in FILES.items()
    }
