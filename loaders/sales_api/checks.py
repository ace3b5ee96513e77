"""The contract of the increment's files, and the check run before anything lands.

The file-sensor step (every file present before anything loads), on two levels:

- **file level**: a file missing, a header that breaks the contract, a
  transfer that ends mid-line or holds another number of rows than the API
  announced. The increment as a whole cannot be trusted, so the load stops with
  one line naming the file (and the line). ``verify_increment`` runs only
  these checks: the download runs it before a new fetch replaces a date's files.
- **row level**: a line whose fields break the contract. It becomes a reject
  (file, line, column and problem, with the raw line) and every other line
  still lands: one bad record never blocks the others.

The field contract is strict on purpose. Values land as text and staging casts
them (``::integer``, ``::bigint``, ``::numeric(14,2)``, ``::timestamp``,
``::date``, see ``dbt_project/models/staging/sales_api``), so a value passes
only if that cast cannot fail and cannot change it silently: no ``NaN`` or
exponents, no money rounded away, no integer beyond the column's type, no
non-ASCII digits, no UTC offset that ``::timestamp`` would drop, no NUL byte
or invalid UTF-8 that a text column cannot store.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from loaders.core.control import Reject
from loaders.core.warehouse import LoaderError

MANIFEST = "_increment.json"
BOM = b"\xef\xbb\xbf"

# The types staging casts each typed column to; a value must fit the type.
INTEGER, BIGINT, MONEY, TIMESTAMP, DATE = "integer", "bigint", "numeric(14,2)", "timestamp", "date"
INT_RANGES = {INTEGER: (-(2**31), 2**31 - 1), BIGINT: (-(2**63), 2**63 - 1)}
MONEY_DIGITS, MONEY_DECIMALS = 14, 2  # numeric(14,2): at most 12 digits before the point


@dataclass(frozen=True)
class RawFile:
    """The contract for one increment file: its columns and what each value must be."""

    name: str
    table: str
    columns: tuple[str, ...]
    optional: frozenset[str] = frozenset()  # columns an older format may lack
    types: dict[str, str] = field(default_factory=dict)  # column -> the staging cast's type
    enums: dict[str, frozenset[str]] = field(default_factory=dict)
    required: frozenset[str] = frozenset()  # text columns that must not be empty
    record_id: str | None = None  # the column that identifies a row, if any


FILES: dict[str, RawFile] = {
    f.name: f
    for f in (
        RawFile(
            "customer_research_inc.csv",
            "customer_research",
            ("date_id", "category_id", "geo_id", "sales_qty", "sales_amt"),
            types={
                "date_id": DATE,
                "category_id": INTEGER,
                "geo_id": INTEGER,
                "sales_qty": INTEGER,
                "sales_amt": MONEY,
            },
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
            types={
                "date_time": TIMESTAMP,
                "city_id": INTEGER,
                "customer_id": BIGINT,
                "item_id": BIGINT,
                "quantity": INTEGER,
                "payment_amount": MONEY,
            },
            enums={"status": frozenset({"shipped", "refunded"})},
            # Staging keeps one row per uniq_id: empty ids would collapse into one.
            required=frozenset({"uniq_id"}),
            record_id="uniq_id",
        ),
        RawFile(
            "user_activity_log_inc.csv",
            "user_activity_log",
            ("uniq_id", "date_time", "action_id", "customer_id", "quantity"),
            types={
                "date_time": TIMESTAMP,
                "action_id": INTEGER,
                "customer_id": BIGINT,
                "quantity": INTEGER,
            },
            required=frozenset({"uniq_id"}),
            record_id="uniq_id",
        ),
    )
}


class FileProblem(LoaderError):
    """A file-level problem: the whole increment stops, with one line naming the file."""

    def __init__(self, path: Path, problem: str, line: int | None = None):
        self.path, self.problem, self.line = path, problem, line
        super().__init__(f"{path}: {self.where}{problem}")

    @property
    def where(self) -> str:
        return f"line {self.line}: " if self.line is not None else ""

    @property
    def detail(self) -> str:
        """The problem without the folder: ``<file>: line N: <problem>``."""
        return f"{self.path.name}: {self.where}{self.problem}"


@dataclass(frozen=True)
class BadRow:
    """A line that breaks the field contract: it is rejected, the others land."""

    line: int
    record_id: str  # the row's uniq_id when it has a usable one, else ``<file>:<line>``
    reason: str  # ``<file>: line N: <column and problem>[; ...]``
    payload: str  # the raw line; invalid UTF-8 shown as \\xNN escapes

    def reject(self, day: dt.date) -> Reject:
        return Reject(self.record_id, day.isoformat(), self.reason, self.payload)


@dataclass
class CheckedFile:
    spec: RawFile
    rows: list[tuple[str | None, ...]]  # in spec.columns order; None for an absent optional column
    missing_optional: list[str]
    bad: list[BadRow] = field(default_factory=list)  # rejected lines, in file order
    line_numbers: list[int] = field(default_factory=list)  # the file line of each row


# --- the field contract ------------------------------------------------------------
_INT = re.compile(r"[+-]?[0-9]+")  # [0-9], not \d: int() also takes '٣' and other digits
_DECIMAL = re.compile(r"-?([0-9]+)(?:\.([0-9]+))?")
_DATE = r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
_TIME = r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?"
_DATE_RE = re.compile(_DATE)
_TIMESTAMP_RE = re.compile(rf"{_DATE}[ T]{_TIME}")
_OFFSET_RE = re.compile(rf"{_DATE}[ T]{_TIME}\s*(Z|[+-][0-9]{{2}}(?::?[0-9]{{2}})?)", re.I)


def _show(value: str) -> str:
    """``value`` quoted for a reason, cut short so one line stays one readable line."""
    return repr(value if len(value) <= 40 else value[:37] + "...")


def _integer(column: str, value: str, kind: str) -> str | None:
    if not _INT.fullmatch(value):
        return f"{column}={_show(value)} is not an integer (ASCII digits, optional sign)"
    low, high = INT_RANGES[kind]
    digits = value.lstrip("+-").lstrip("0")
    if len(digits) > 19 or not low <= int(value) <= high:
        return f"{column}={_show(value)} is out of range for {kind} ({low}..{high})"
    return None


def _money(column: str, value: str, kind: str) -> str | None:
    match = _DECIMAL.fullmatch(value)
    if not match:
        return f"{column}={_show(value)} is not a plain decimal number ([-]digits[.digits])"
    whole, decimals = match.group(1).lstrip("0"), match.group(2) or ""
    if len(decimals) > MONEY_DECIMALS:
        return (
            f"{column}={_show(value)} has more than {MONEY_DECIMALS} decimals "
            f"({kind} would round it)"
        )
    if len(whole) > MONEY_DIGITS - MONEY_DECIMALS:
        return f"{column}={_show(value)} is out of range for {kind}"
    return None


def _timestamp(column: str, value: str, kind: str) -> str | None:
    match = _TIMESTAMP_RE.fullmatch(value)
    if not match:
        if offset := _OFFSET_RE.fullmatch(value):
            return (
                f"{column}={_show(value)} has a UTC offset ({offset.group(8)}): the contract "
                "is the partner's local time without an offset (::timestamp would drop it)"
            )
        return f"{column}={_show(value)} is not a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff])"
    try:
        dt.datetime(*(int(g) for g in match.groups()[:6]))
    except ValueError as exc:
        return f"{column}={_show(value)} is not a valid timestamp: {exc}"
    return None


def _date(column: str, value: str, kind: str) -> str | None:
    match = _DATE_RE.fullmatch(value)
    if not match:
        return f"{column}={_show(value)} is not a date (YYYY-MM-DD)"
    try:
        dt.date(*(int(g) for g in match.groups()))
    except ValueError as exc:
        return f"{column}={_show(value)} is not a valid date: {exc}"
    return None


_CHECKS: dict[str, Callable[[str, str, str], str | None]] = {
    INTEGER: _integer,
    BIGINT: _integer,
    MONEY: _money,
    TIMESTAMP: _timestamp,
    DATE: _date,
}


def check_value(spec: RawFile, column: str, value: str) -> str | None:
    """Why ``value`` breaks the contract of ``column`` (column, value, problem), or None.

    ``value`` is the field decoded with ``surrogateescape``: bytes that are not
    UTF-8 show up as lone surrogates.
    """
    if "\x00" in value:
        return f"{column} contains a NUL byte (a text column cannot store it)"
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        byte = ord(value[exc.start]) - 0xDC00
        return f"{column} is not valid UTF-8 (byte 0x{byte:02x} at character {exc.start + 1})"
    kind = spec.types.get(column)
    if kind is not None:
        return _CHECKS[kind](column, value, kind)
    allowed = spec.enums.get(column)
    if allowed and value not in allowed:
        return f"{column}={_show(value)} is not one of {sorted(allowed)}"
    if column in spec.required and not value:
        return f"{column} is empty"
    return None


# --- file level ----------------------------------------------------------------------
def _split_fields(text: str) -> list[str]:
    """One line's fields; a line is parsed alone, so a bad quote spoils only its own line."""
    if '"' not in text and "\r" not in text:
        return text.split(",") if text else []
    return next(csv.reader([text], strict=True), [])


@dataclass
class _Layout:
    """A file that passed the file-level checks: its header and its data lines."""

    header: list[str]
    lines: list[bytes]  # data lines without their line end; line k is file line k + 2
    missing_optional: list[str]


def _layout(path: Path, spec: RawFile, expected_rows: int | None) -> _Layout:
    """The file-level checks; each problem raises one FileProblem naming the file (and line)."""
    if not path.exists():
        raise FileProblem(path, "the file is missing: the increment is incomplete")
    data = path.read_bytes()
    data = data.removeprefix(BOM)
    if not data:
        raise FileProblem(path, "the file is empty (no header)", 1)
    first = data.split(b"\n", 1)[0].removesuffix(b"\r")
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError:
        # Before the line-end check: a UTF-16 file never ends with a bare b"\n".
        raise FileProblem(
            path, "the header is not UTF-8 (the file is in another encoding?)", 1
        ) from None
    if not data.endswith(b"\n"):
        line = data.count(b"\n") + 1
        raise FileProblem(path, "the file ends mid-line (truncated transfer?)", line)
    try:
        header = _split_fields(text)
    except csv.Error as exc:
        raise FileProblem(path, f"the header is not valid CSV: {exc}", 1) from None
    lines = [line.removesuffix(b"\r") for line in data[:-1].split(b"\n")]
    unknown = [c for c in header if c not in spec.columns]
    missing = [c for c in spec.columns if c not in header]
    required_missing = [c for c in missing if c not in spec.optional]
    repeated = sorted({c for c in header if header.count(c) > 1})
    if unknown or required_missing or repeated:
        also = f", repeated {repeated}" if repeated else ""
        raise FileProblem(
            path,
            f"header {header} does not match the contract: missing {required_missing or 'nothing'}"
            f", unexpected {unknown or 'nothing'}{also}",
            1,
        )
    data_lines = lines[1:]
    if expected_rows is not None and len(data_lines) != expected_rows:
        raise FileProblem(
            path,
            f"{len(data_lines)} data rows, the API announced {expected_rows} (truncated transfer?)",
        )
    return _Layout(header, data_lines, [c for c in missing if c in spec.optional])


def read_manifest(folder: Path) -> dict[str, int | None]:
    """What the API announced: rows per file name (None when it did not say)."""
    path = folder / MANIFEST
    if not path.exists():
        raise LoaderError(f"{folder} holds no complete download ({MANIFEST} missing)")
    try:
        files = json.loads(path.read_bytes())["files"]
        announced = {str(f["name"]): f.get("rows") for f in files}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FileProblem(path, f"unreadable ({type(exc).__name__}: {exc})") from None
    for name, rows in announced.items():
        if rows is not None and (not isinstance(rows, int) or isinstance(rows, bool) or rows < 0):
            raise FileProblem(path, f"{name}: the announced row count {rows!r} is not a count")
    return announced


def verify_increment(folder: Path) -> dict[str, int]:
    """The file-level checks only (what a download must pass); data rows per file."""
    announced = read_manifest(folder)
    return {
        name: len(_layout(folder / name, spec, announced.get(name)).lines)
        for name, spec in FILES.items()
    }


# --- row level -----------------------------------------------------------------------
def check_file(path: Path, spec: RawFile, expected_rows: int | None) -> CheckedFile:
    """Parse and validate one file.

    A file-level problem raises FileProblem; a line that breaks the field
    contract becomes a BadRow and the other lines are kept.
    """
    layout = _layout(path, spec, expected_rows)
    header = layout.header
    index = [header.index(c) if c in header else None for c in spec.columns]
    checks = [(c, i) for c, i in zip(spec.columns, index, strict=True) if i is not None]
    id_index = header.index(spec.record_id) if spec.record_id in header else None
    result = CheckedFile(spec, [], layout.missing_optional)
    for number, raw in enumerate(layout.lines, start=2):
        text = raw.decode("utf-8", "surrogateescape")
        try:
            record = _split_fields(text)
        except csv.Error as exc:
            record, problems = [], [f"malformed CSV: {exc}"]
        else:
            if not record:
                problems = ["empty line"]
            elif len(record) != len(header):
                problems = [f"{len(record)} fields, the header has {len(header)}"]
            else:
                problems = [p for c, i in checks if (p := check_value(spec, c, record[i]))]
        if not problems:
            result.rows.append(tuple(record[i] if i is not None else None for i in index))
            result.line_numbers.append(number)
            continue
        record_id = f"{path.name}:{number}"
        if id_index is not None and len(record) == len(header):
            candidate = record[id_index]
            if candidate and check_value(spec, spec.record_id or "", candidate) is None:
                record_id = candidate
        result.bad.append(
            BadRow(
                number,
                record_id,
                f"{path.name}: line {number}: {'; '.join(problems)}",
                raw.decode("utf-8", "backslashreplace"),
            )
        )
    return result


def check_increment(folder: Path) -> dict[str, CheckedFile]:
    """Every file present and whole (or one FileProblem line); bad lines set aside per file."""
    announced = read_manifest(folder)
    return {
        name: check_file(folder / name, spec, announced.get(name)) for name, spec in FILES.items()
    }
