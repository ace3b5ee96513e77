"""The sales API loader against the project's own API server, over real HTTP.

The server runs once per session (a uvicorn process on a free port); each test
sets the faults it needs through the server's /_faults endpoint.
"""

from __future__ import annotations

import datetime as dt
import os

import psycopg
import pytest

from loaders.core.warehouse import LoaderError
from loaders.sales_api.checks import FILES, check_increment
from loaders.sales_api.job import fetch_day, load_day
from tests.conftest import set_faults

START = dt.date(2026, 10, 1)  # DATAGEN_START_DATE default; status column from START + 3


def raw(conninfo: str, table: str) -> list[tuple]:
    """A raw table's data, without per-load metadata (batch ids, load times)."""
    spec = next(f for f in FILES.values() if f.table == table)
    cols = ", ".join((*spec.columns, "_increment_date", "_file_name", "_row_number"))
    with psycopg.connect(conninfo) as conn:
        query = f"select {cols} from raw_sales.{table} order by _increment_date, _row_number"
        return conn.execute(query).fetchall()


def test_protocol_saves_every_file_in_a_date_folder(api) -> None:
    day = START + dt.timedelta(days=4)
    folder = fetch_day(day)
    assert folder.name == f"date={day}"
    assert {p.name for p in folder.iterdir()} == {*FILES, "_increment.json"}
    checked = check_increment(folder)
    orders = checked["user_order_log_inc.csv"]
    assert orders.missing_optional == []
    ids = [row[0] for row in orders.rows]
    assert len(ids) > len(set(ids)), "the partner's duplicates and corrections are in the file"


def test_a_wrong_key_is_one_clear_error(api, monkeypatch) -> None:
    monkeypatch.setenv("SALES_API_KEY", "wrong")
    with pytest.raises(LoaderError, match="refused the API key: check SALES_API_KEY"):
        fetch_day(START)


def test_5xx_answers_are_retried_then_reported_with_the_url(api, warehouse) -> None:
    set_faults(api, fail_next=2, fail_status=503)
    assert load_day(START).rows["user_order_log"] > 0  # two failures, third attempt works
    set_faults(api, fail_next=50, fail_status=500)
    with pytest.raises(LoaderError, match=rf"{api.url}/generate_report answered HTTP 500 3 time"):
        load_day(START)


def test_timeouts_are_retried_then_reported(api, warehouse, monkeypatch) -> None:
    monkeypatch.setenv("SALES_API_TIMEOUT_SECONDS", "0.3")
    set_faults(api, delay_next=1, delay_seconds=1.0)
    assert load_day(START).rows  # the first call timed out, the retry worked
    set_faults(api, delay_next=50, delay_seconds=1.0)
    with pytest.raises(LoaderError, match=r"did not answer within 0\.3s, 3 time"):
        load_day(START)


def test_a_slow_report_is_waited_for_until_the_deadline(api, warehouse, monkeypatch) -> None:
    set_faults(api, report_seconds=1.0)
    assert load_day(START).rows  # polled until ready
    monkeypatch.setenv("SALES_API_DEADLINE_SECONDS", "0.5")
    set_faults(api, report_seconds=5.0)
    with pytest.raises(LoaderError, match=r"was not ready after 0\.5s"):
        load_day(START)


def test_a_truncated_file_stops_the_load_naming_the_file_and_line(api, warehouse) -> None:
    day = START + dt.timedelta(days=5)
    load_day(day)
    before = raw(warehouse, "user_order_log")
    set_faults(api, truncate_next=2)  # the first two files of the next fetch are cut
    with pytest.raises(LoaderError, match=r"customer_research_inc\.csv: line \d+: .*truncated"):
        load_day(day)
    assert raw(warehouse, "user_order_log") == before  # nothing half-loaded
    assert load_day(day).rows  # the next fetch is whole again


def test_malformed_values_name_the_file_and_line(api, tmp_path) -> None:
    folder = fetch_day(START + dt.timedelta(days=4))
    path = folder / "user_order_log_inc.csv"
    lines = path.read_text().splitlines(keepends=True)
    fields = lines[3].split(",")
    fields[9] = "many"  # quantity
    lines[3] = ",".join(fields)
    path.write_text("".join(lines))
    with pytest.raises(LoaderError, match=r"user_order_log_inc\.csv: line 4: quantity='many'"):
        check_increment(folder)
    path.unlink()
    with pytest.raises(LoaderError, match=r"user_order_log_inc\.csv is missing"):
        check_increment(folder)


def test_older_increments_without_status_land_with_null_status(api, warehouse) -> None:
    result = load_day(START)
    assert any("no status column" in n for n in result.notes)
    statuses = {row[11] for row in raw(warehouse, "user_order_log")}
    assert statuses == {None}
    load_day(START + dt.timedelta(days=3))
    statuses = {row[11] for row in raw(warehouse, "user_order_log")}
    assert {"shipped"} <= statuses <= {None, "shipped", "refunded"}


def test_reloading_a_date_and_a_backfill_give_exactly_one_clean_load(
    api, warehouse, pg_server, monkeypatch
) -> None:
    days = [START + dt.timedelta(days=k) for k in range(3, 6)]
    # One clean load of three days into a reference warehouse.
    pg_server.ensure_database(reference := f"ref_{os.getpid()}_{id(api)}")
    monkeypatch.setenv("WAREHOUSE_DB", reference)
    for day in days:
        load_day(day)
    clean = {
        t: raw(pg_server.conninfo(reference), t) for t in ("user_order_log", "user_activity_log")
    }
    # The real warehouse: the middle date twice, then the whole backfill again.
    monkeypatch.setenv("WAREHOUSE_DB", psycopg.conninfo.conninfo_to_dict(warehouse)["dbname"])
    load_day(days[1])
    load_day(days[1])
    for day in days:
        load_day(day)
    for table, rows in clean.items():
        assert raw(warehouse, table) == rows, table


def test_an_unreachable_api_names_the_url(warehouse, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SALES_API_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("SALES_API_ATTEMPTS", "2")
    monkeypatch.setenv("SALES_API_BACKOFF_SECONDS", "0.01")
    monkeypatch.setenv("SALES_STORAGE_DIR", str(tmp_path))
    with pytest.raises(LoaderError, match=r"cannot reach the sales API at http://127.0.0.1:1/"):
        load_day(START)
