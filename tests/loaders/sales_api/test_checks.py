"""The increment's file contract, on files written here: file level stops, row level rejects.

Every value below that the contract rejects was measured to pass the old
check (or to crash it) and then break, or silently change, in staging's casts.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from config import PROJECT_ROOT
from loaders.core.warehouse import LoaderError
from loaders.sales_api.checks import (
    BIGINT,
    DATE,
    FILES,
    INTEGER,
    MANIFEST,
    MONEY,
    TIMESTAMP,
    check_increment,
    check_value,
    verify_increment,
)

ORDERS, RESEARCH, ACTIVITY = (
    "user_order_log_inc.csv",
    "customer_research_inc.csv",
    "user_activity_log_inc.csv",
)
GOOD = {  # a header and one good line per file; line 3 of each test file is the line under test
    ORDERS: (
        b"uniq_id,date_time,city_id,city_name,customer_id,first_name,last_name,"
        b"item_id,item_name,quantity,payment_amount,status",
        b"a1,2026-10-05 10:00:00,1,Moscow,100,Anna,Ivanova,10,Lamp,2,20.00,shipped",
    ),
    RESEARCH: (
        b"date_id,category_id,geo_id,sales_qty,sales_amt",
        b"2026-10-05,1,1,3,25.00",
    ),
    ACTIVITY: (
        b"uniq_id,date_time,action_id,customer_id,quantity",
        b"x1,2026-10-05 08:00:00,1,100,1",
    ),
}


def write_increment(
    folder: Path, files: dict[str, bytes] | None = None, announced: dict | None = None
) -> Path:
    """An increment folder: the good files, ``files`` replacing some; the manifest counts rows."""
    folder.mkdir(parents=True, exist_ok=True)
    contents = {name: b"\n".join(lines) + b"\n" for name, lines in GOOD.items()}
    contents.update(files or {})
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    counts = {name: max(data.count(b"\n") - 1, 0) for name, data in contents.items()}
    counts.update(announced or {})
    manifest = {"files": [{"name": n, "rows": r} for n, r in counts.items()]}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


def with_value(name: str, column: str, value: bytes) -> bytes:
    """The file ``name``: its good line, then that line with ``column`` set to ``value``."""
    header, good = GOOD[name]
    fields = good.split(b",")
    fields[header.split(b",").index(column.encode())] = value
    if b"uniq_id" in header:
        fields[0] = b"a2" if column != "uniq_id" else fields[0]
    return b"\n".join((header, good, b",".join(fields))) + b"\n"


ROW_CASES = [
    # (file, column, value, what the reason says after "<column>")
    (ORDERS, "quantity", b"many", "='many' is not an integer"),
    (ORDERS, "quantity", "\u0663".encode(), "='\u0663' is not an integer"),  # int() reads 3
    (ORDERS, "quantity", b"99999999999", "='99999999999' is out of range for integer"),
    (ORDERS, "city_id", b"2147483648", "is out of range for integer"),
    (ORDERS, "customer_id", b"9223372036854775808", "is out of range for bigint"),
    (ORDERS, "item_id", b"-9223372036854775809", "is out of range for bigint"),
    (ORDERS, "quantity", b"2.0", "is not an integer"),
    (ORDERS, "quantity", b"", "='' is not an integer"),
    (ORDERS, "payment_amount", b"NaN", "='NaN' is not a plain decimal number"),
    (ORDERS, "payment_amount", b"Infinity", "='Infinity' is not a plain decimal number"),
    (ORDERS, "payment_amount", b"-Infinity", "is not a plain decimal number"),
    (ORDERS, "payment_amount", b"1E+400", "='1E+400' is not a plain decimal number"),
    (ORDERS, "payment_amount", b"2e1", "is not a plain decimal number"),
    (ORDERS, "payment_amount", "\u0662\u0660.00".encode(), "is not a plain decimal number"),
    (ORDERS, "payment_amount", b"20.005", "has more than 2 decimals (numeric(14,2) would round"),
    (ORDERS, "payment_amount", b"1000000000000.00", "is out of range for numeric(14,2)"),
    (ORDERS, "date_time", b"2026-10-05 10:00:00+14:00", "has a UTC offset (+14:00): the cont"),
    (ORDERS, "date_time", b"2026-10-05T10:00:00Z", "has a UTC offset (Z)"),
    (ORDERS, "date_time", b"2026-10-05 10:00:00 -0300", "has a UTC offset (-0300)"),
    (ORDERS, "date_time", b"2026-13-05 10:00:00", "is not a valid timestamp: month must be"),
    (ORDERS, "date_time", b"2026-02-30 10:00:00", "is not a valid timestamp: day is out of"),
    (ORDERS, "date_time", b"2026-10-05 24:00:00", "is not a valid timestamp: hour must be"),
    (ORDERS, "date_time", b"0000-01-01 00:00:00", "is not a valid timestamp: year 0"),
    (ORDERS, "date_time", b"10000-01-01 00:00:00", "is not a timestamp (YYYY-MM-DD HH:MM:SS"),
    (ORDERS, "date_time", b"2026-10-05", "is not a timestamp"),
    (ORDERS, "date_time", b"yesterday", "is not a timestamp"),
    (ORDERS, "status", b"lost", "='lost' is not one of ['refunded', 'shipped']"),
    (ORDERS, "city_name", b"Mos\x00cow", " contains a NUL byte"),
    (ORDERS, "last_name", b"Ivan\xffova", " is not valid UTF-8 (byte 0xff at character 5)"),
    (ORDERS, "first_name", "Анна".encode("cp1251"), " is not valid UTF-8 (byte 0xc0"),
    (ORDERS, "uniq_id", b"", " is empty"),
    (RESEARCH, "date_id", b"2026-02-30", "='2026-02-30' is not a valid date"),
    (RESEARCH, "date_id", b"05.10.2026", "is not a date (YYYY-MM-DD)"),
    (RESEARCH, "sales_amt", b"NaN", "is not a plain decimal number"),
    (RESEARCH, "sales_qty", b"3000000000", "is out of range for integer"),
    (ACTIVITY, "customer_id", "\u0661\u0660\u0660".encode(), "is not an integer"),  # 100
    (ACTIVITY, "date_time", b"2026-10-05 08:00:00+03:00", "has a UTC offset (+03:00)"),
]


@pytest.mark.parametrize(("name", "column", "value", "says"), ROW_CASES)
def test_a_value_that_breaks_the_contract_rejects_its_row_only(
    tmp_path: Path, name: str, column: str, value: bytes, says: str
) -> None:
    folder = write_increment(tmp_path, {name: with_value(name, column, value)})
    checked = check_increment(folder)[name]
    assert len(checked.rows) == 1 and checked.line_numbers == [2]  # the good line is kept
    [bad] = checked.bad
    assert bad.line == 3
    assert bad.reason.startswith(f"{name}: line 3: {column}")
    assert says in bad.reason
    assert "\n" not in bad.reason
    bad_line = (folder / name).read_bytes().splitlines()[2]
    assert bad.payload == bad_line.decode("utf-8", "backslashreplace")  # \xff, not lost
    has_id = FILES[name].record_id and column != "uniq_id"
    assert bad.record_id == ("a2" if has_id else f"{name}:3")
    reject = bad.reject(dt.date(2026, 10, 5))
    assert (reject.record_version, reject.reason) == ("2026-10-05", bad.reason)
    # Every other file of the increment is untouched.
    assert all(not f.bad for n, f in check_increment(folder).items() if n != name)


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (b'a2,"2026-10-05 10:00:00,1,Moscow', "malformed CSV: unexpected end of data"),
        (b'a2,2026-10-05 10:00:00,1,"Mos"cow,100,A,B,10,L,2,20.00,shipped', "malformed CSV"),
        (b"a2,2026-10-05 10:00:00,1,Moscow,100", "5 fields, the header has 12"),
        (b"", "empty line"),
    ],
)
def test_a_broken_line_is_rejected_and_the_next_lines_still_land(
    tmp_path: Path, line: bytes, says: str
) -> None:
    header, good = GOOD[ORDERS]
    after = good.replace(b"a1,", b"a3,")
    folder = write_increment(tmp_path, {ORDERS: b"\n".join((header, good, line, after)) + b"\n"})
    checked = check_increment(folder)[ORDERS]
    assert [r[0] for r in checked.rows] == ["a1", "a3"]  # a bad quote spoils only its line
    assert checked.line_numbers == [2, 4]
    [bad] = checked.bad
    assert bad.reason.startswith(f"{ORDERS}: line 3: ") and says in bad.reason
    assert bad.record_id == f"{ORDERS}:3"  # no usable uniq_id: the file and line


def test_every_problem_of_a_row_is_in_its_one_reason(tmp_path: Path) -> None:
    header, good = GOOD[ORDERS]
    bad = good.replace(b"a1,", b"a2,").replace(b",2,20.00,", b",two,NaN,")
    folder = write_increment(tmp_path, {ORDERS: b"\n".join((header, good, bad)) + b"\n"})
    [row] = check_increment(folder)[ORDERS].bad
    assert row.reason == (
        f"{ORDERS}: line 3: quantity='two' is not an integer (ASCII digits, optional sign); "
        "payment_amount='NaN' is not a plain decimal number ([-]digits[.digits])"
    )


def test_older_files_without_status_and_a_utf8_bom_pass(tmp_path: Path) -> None:
    header, good = GOOD[ORDERS]
    old = b"\xef\xbb\xbf" + header.removesuffix(b",status") + b"\n"
    old += good.removesuffix(b",shipped") + b"\r\n"  # CRLF line ends too
    checked = check_increment(write_increment(tmp_path, {ORDERS: old}))[ORDERS]
    assert checked.missing_optional == ["status"] and not checked.bad
    assert checked.rows[0][-1] is None and checked.rows[0][-2] == "20.00"


FILE_CASES = [
    # (file content or None for a missing file, announced rows override, the one line)
    (None, None, rf"{ORDERS}: the file is missing"),
    (b"", None, rf"{ORDERS}: line 1: the file is empty"),
    (b"uniq_id,date_time\nx,y\n", None, r": line 1: header .* missing \['city_id'"),
    (
        b"\n".join(GOOD[ORDERS]).replace(b",status", b",status,extra") + b",1\n",
        None,
        r": line 1: header .* unexpected \['extra'\]",
    ),
    (
        b"\n".join(GOOD[ORDERS]).replace(b",status", b",status,status") + b",shipped\n",
        None,
        r": line 1: header .* repeated \['status'\]",
    ),
    ("\n".join(x.decode() for x in GOOD[ORDERS]).encode("utf-16"), None, r"line 1: the head"),
    (b"\n".join(GOOD[ORDERS]), None, rf"{ORDERS}: line 2: the file ends mid-line \(truncated"),
    (b"\n".join(GOOD[ORDERS])[:-9], None, r"line 2: the file ends mid-line"),
    (b"\n".join(GOOD[ORDERS]) + b"\n", 5, r": 1 data rows, the API announced 5 \(truncated"),
    (b"\n".join(GOOD[ORDERS]) + b"\n", 0, r": 1 data rows, the API announced 0"),
]


@pytest.mark.parametrize(("content", "announced", "says"), FILE_CASES)
def test_a_file_level_problem_stops_the_load_with_one_line_naming_the_file(
    tmp_path: Path, content: bytes | None, announced: int | None, says: str
) -> None:
    folder = write_increment(
        tmp_path,
        {ORDERS: content or b""},
        {ORDERS: announced} if announced is not None else None,
    )
    if content is None:
        (folder / ORDERS).unlink()
    for check in (check_increment, verify_increment):
        with pytest.raises(LoaderError) as caught:
            check(folder)
        message = str(caught.value)
        assert re.search(says, message), message
        assert ORDERS in message and "\n" not in message


def test_an_unreadable_manifest_is_one_line(tmp_path: Path) -> None:
    folder = write_increment(tmp_path)
    (folder / MANIFEST).write_text('{"files": [{"rows": 3}')
    with pytest.raises(LoaderError, match=rf"{MANIFEST}: unreadable \(JSONDecodeError") as caught:
        check_increment(folder)
    assert "\n" not in str(caught.value)
    (folder / MANIFEST).write_text('{"files": [{"name": "x.csv", "rows": "many"}]}')
    with pytest.raises(LoaderError, match=r"x\.csv: the announced row count 'many' is not a"):
        check_increment(folder)
    (folder / MANIFEST).unlink()
    with pytest.raises(LoaderError, match=rf"holds no complete download \({MANIFEST} missing\)"):
        check_increment(folder)


# --- the contract against PostgreSQL's own casts --------------------------------------------
CAST = {INTEGER: "integer", BIGINT: "bigint", MONEY: "numeric(14,2)", TIMESTAMP: "timestamp",
        DATE: "date"}  # fmt: skip
EDGES = [  # (kind, value that passes, what staging's cast must give back, unchanged)
    (INTEGER, "2147483647", 2147483647),
    (INTEGER, "-2147483648", -2147483648),
    (INTEGER, "+7", 7),
    (INTEGER, "007", 7),
    (BIGINT, "9223372036854775807", 9223372036854775807),
    (BIGINT, "-9223372036854775808", -9223372036854775808),
    (MONEY, "999999999999.99", Decimal("999999999999.99")),
    (MONEY, "-999999999999.99", Decimal("-999999999999.99")),
    (MONEY, "000000000000012.3", Decimal("12.3")),
    (MONEY, "0.05", Decimal("0.05")),
    (TIMESTAMP, "2026-10-05 10:00:00", dt.datetime(2026, 10, 5, 10)),
    (TIMESTAMP, "2026-10-05T23:59:59.999999", dt.datetime(2026, 10, 5, 23, 59, 59, 999999)),
    (TIMESTAMP, "0001-01-01 00:00:00", dt.datetime(1, 1, 1)),
    (TIMESTAMP, "9999-12-31 23:59:59", dt.datetime(9999, 12, 31, 23, 59, 59)),
    (TIMESTAMP, "2024-02-29 12:00:00", dt.datetime(2024, 2, 29, 12)),
    (DATE, "9999-12-31", dt.date(9999, 12, 31)),
    (DATE, "0001-01-01", dt.date(1, 1, 1)),
]
MEASURED = [  # (kind, value the old check let through, what staging's cast did with it)
    (MONEY, "NaN", "NaN"),  # and the day's revenue became NaN
    (MONEY, "20.005", "20.01"),  # rounded
    (TIMESTAMP, "2026-10-05 10:00:00+14:00", "2026-10-05 10:00:00"),  # offset dropped
    (MONEY, "Infinity", None),  # None: the cast fails, and dbt build with it
    (MONEY, "1E+400", None),
    (MONEY, "1000000000000.00", None),
    (INTEGER, "99999999999", None),
    (BIGINT, "9223372036854775808", None),
    (INTEGER, "\u0663", None),  # Arabic-Indic 3
    (TIMESTAMP, "2026-10-05 10:00:00+99:00", None),
]


def _spec_column(kind: str) -> tuple[str, str]:
    """A file and column whose contract type is ``kind``."""
    return next((n, c) for n, f in FILES.items() for c, k in f.types.items() if k == kind)


def test_values_at_the_edges_pass_and_staging_casts_keep_them_unchanged(warehouse: str) -> None:
    with psycopg.connect(warehouse) as conn:
        for kind, value, expected in EDGES:
            name, column = _spec_column(kind)
            assert check_value(FILES[name], column, value) is None, (kind, value)
            [(cast,)] = conn.execute(f"select %s::{CAST[kind]}", (value,)).fetchall()
            assert cast == expected, (kind, value, cast)


def test_the_measured_failures_are_rejected_they_break_or_change_in_staging(
    warehouse: str,
) -> None:
    with psycopg.connect(warehouse, autocommit=True) as conn:
        for kind, value, staged in MEASURED:
            name, column = _spec_column(kind)
            assert check_value(FILES[name], column, value) is not None, (kind, value)
            try:
                [(cast,)] = conn.execute(f"select %s::{CAST[kind]}::text", (value,)).fetchall()
            except psycopg.DataError:
                cast = None
            assert cast == staged, (kind, value, cast)


def test_the_contract_types_are_the_types_staging_casts_to() -> None:
    """Each ``column::type`` in the staging models fits the column's contract type."""
    fits = {"integer": {INTEGER}, "bigint": {INTEGER, BIGINT}, "numeric(14,2)": {MONEY},
            "timestamp": {TIMESTAMP}, "date": {DATE, TIMESTAMP}}  # fmt: skip
    types = r"integer|bigint|numeric\(\s*\d+\s*,\s*\d+\s*\)|timestamp|date"
    cast = re.compile(rf"\b(\w+)::({types})(?!\w)")
    models = PROJECT_ROOT / "dbt_project" / "models" / "staging" / "sales_api"
    for spec in FILES.values():
        sql = (models / f"stg_sales_api__{spec.table}.sql").read_text()
        casts = {(c, re.sub(r"\s", "", t)) for c, t in cast.findall(sql) if not c.startswith("_")}
        assert casts, spec.table
        for column, type_ in casts:
            assert spec.types.get(column) in fits[type_], f"{spec.table}.{column}::{type_}"
        assert {c for c, _ in casts} == set(spec.types), spec.table
