"""The sales API loader against the project's own API server, over real HTTP.

The server runs once per session (a uvicorn process on a free port); each test
sets the faults it needs through the server's /_faults endpoint.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from loaders.__main__ import main as cli
from loaders.core.http import retry_after_seconds
from loaders.core.warehouse import LoaderError
from loaders.sales_api import checks
from loaders.sales_api.checks import FILES, MANIFEST, check_increment
from loaders.sales_api.client import SalesApiClient
from loaders.sales_api.files import increment_dir
from loaders.sales_api.job import check_folder, fetch_day, land_folder, load_day
from loaders.sales_api.settings import SalesApiSettings
from pipelines.definition import StepContext
from pipelines.sources import sales_api as sources
from tests.conftest import SALES_KEY, set_faults
from tests.loaders.sales_api.test_checks import GOOD, write_increment

START = dt.date(2026, 10, 1)  # DATAGEN_START_DATE default; status column from START + 3


def raw(conninfo: str, table: str) -> list[tuple]:
    """A raw table's data, without per-load metadata (batch ids, load times)."""
    spec = next(f for f in FILES.values() if f.table == table)
    cols = ", ".join((*spec.columns, "_increment_date", "_file_name", "_row_number"))
    with psycopg.connect(conninfo) as conn:
        query = f"select {cols} from raw_sales_api.{table} order by _increment_date, _row_number"
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


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_truncated_fetch_never_replaces_the_good_files_on_disk(api, warehouse) -> None:
    day = START + dt.timedelta(days=5)
    folder = load_day(day).folder
    assert folder is not None
    good_files, before = files_of(folder), raw(warehouse, "user_order_log")
    set_faults(api, truncate_next=2)  # the first two files of the next fetch are cut
    with pytest.raises(
        LoaderError, match=r"customer_research_inc\.csv: line \d+: .*truncated"
    ) as caught:
        load_day(day)
    assert files_of(folder) == good_files  # the first, good files are still there
    assert caught.value.args[0].endswith(f"{folder} keeps the previous files")
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary folder
    assert raw(warehouse, "user_order_log") == before  # nothing half-loaded
    assert load_day(day).rows  # the next fetch is whole again


def test_a_truncated_first_fetch_saves_nothing_and_says_so_in_one_line(api) -> None:
    set_faults(api, truncate_next=1)
    with pytest.raises(LoaderError) as caught:
        fetch_day(START)
    message = str(caught.value)
    assert re.search(
        r"the 2026-10-01 increment from the sales API was discarded: "
        r"customer_research_inc\.csv: line \d+: the file ends mid-line",
        message,
    )
    assert message.endswith("date=2026-10-01 was not created") and "\n" not in message
    assert list(increment_dir(START).parent.iterdir()) == []  # no folder, no temporary one


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temporary_folders_of_crashed_downloads_are_cleaned_up(api) -> None:
    parent = increment_dir(START).parent
    host, gone = socket.gethostname(), dead_pid()
    crashed = [
        parent / f"date=2026-10-02.tmp-{host}-{gone}",
        parent / f"date=2026-10-03.tmp-{gone}",  # named the way older versions named them
    ]
    running = parent / f"date=2026-10-03.tmp-{host}-{os.getppid()}"  # a live download
    swapped_out = parent / f"date=2026-10-04.tmp-{host}-{gone}.old"  # crashed mid-swap
    for path in (*crashed, running, swapped_out):
        path.mkdir(parents=True)
        (path / "user_order_log_inc.csv").write_text("half a file")
    fetch_day(START)
    assert not any(p.exists() for p in crashed)
    assert running.exists()
    # The date's previous files, moved aside by a swap that never finished, are put back.
    assert not swapped_out.exists()
    assert (parent / "date=2026-10-04" / "user_order_log_inc.csv").read_text() == "half a file"


def set_bad_values(server, bad: list[dict]) -> None:
    """Like set_faults, sent as ASCII JSON: a value may hold a lone surrogate (a raw byte)."""
    body = {"faults": {"bad_values": bad}, "report_seconds": 0.3}
    httpx.post(
        f"{server.url}/_faults",
        content=json.dumps(body),
        headers={"X-API-KEY": SALES_KEY, "Content-Type": "application/json"},
    ).raise_for_status()


ORDERS = "user_order_log_inc.csv"
BAD = [  # served by the real API in place of good values (line 1 is the header)
    {"file": ORDERS, "line": 2, "column": "payment_amount", "value": "NaN"},
    {"file": ORDERS, "line": 3, "column": "quantity", "value": "\u0663"},  # Arabic-Indic 3
    {"file": ORDERS, "line": 4, "column": "date_time", "value": "2026-10-05 10:00:00+14:00"},
    {"file": ORDERS, "line": 5, "column": "city_name", "value": "Mos\x00cow"},
    {"file": ORDERS, "line": 6, "column": "last_name", "value": "Ivan\udcffova"},  # byte 0xff
    {"file": ORDERS, "line": 7, "column": "customer_id", "value": "99999999999999999999"},
    {"file": "customer_research_inc.csv", "line": 2, "column": "sales_amt", "value": "1E+400"},
    {"file": "user_activity_log_inc.csv", "line": 3, "column": "quantity", "value": "99999999999"},
]
REJECTS = (
    "select source, stream, record_id, record_version, reason, payload, batch_id is not null"
    " from loader.rejects order by stream, record_version, reason"
)


def stored(conninfo: str, query: str) -> list[tuple]:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(query).fetchall()


def test_bad_rows_are_rejected_and_every_other_row_lands(api, warehouse) -> None:
    day = START + dt.timedelta(days=4)
    set_bad_values(api, BAD)
    result = load_day(day)
    assert result.rejects == {
        "customer_research": 1, "user_order_log": 6, "user_activity_log": 1,
    }  # fmt: skip
    assert result.folder is not None
    announced = {
        f["name"]: f["rows"] for f in json.loads((result.folder / MANIFEST).read_text())["files"]
    }
    for name, spec in FILES.items():
        landed = len(raw(warehouse, spec.table))
        assert landed == result.rows[spec.table] == announced[name] - result.rejects[spec.table]
    lines = (result.folder / ORDERS).read_bytes().split(b"\n")
    expected = []
    for item in BAD[:6]:
        line = lines[item["line"] - 1]
        expected.append(
            (
                "sales_api",
                "user_order_log",
                line.split(b",")[0].decode(),  # the row's uniq_id
                day.isoformat(),
                f"{ORDERS}: line {item['line']}: {item['column']}",
                line.decode("utf-8", "backslashreplace").replace("\x00", "\\u0000"),
                True,
            )
        )
    got = [r for r in stored(warehouse, REJECTS) if r[1] == "user_order_log"]
    assert [
        (*r[:4], r[4][: len(e[4])], *r[5:]) for r, e in zip(got, expected, strict=True)
    ] == expected
    assert [r[4] for r in got] == [
        f"{ORDERS}: line 2: payment_amount='NaN' is not a plain decimal number "
        "([-]digits[.digits])",
        f"{ORDERS}: line 3: quantity='\u0663' is not an integer (ASCII digits, optional sign)",
        f"{ORDERS}: line 4: date_time='2026-10-05 10:00:00+14:00' has a UTC offset (+14:00): the "
        "contract is the partner's local time without an offset (::timestamp would drop it)",
        f"{ORDERS}: line 5: city_name contains a NUL byte (a text column cannot store it)",
        f"{ORDERS}: line 6: last_name is not valid UTF-8 (byte 0xff at character 5)",
        f"{ORDERS}: line 7: customer_id='99999999999999999999' is out of range for bigint "
        "(-9223372036854775808..9223372036854775807)",
    ]
    batches = stored(
        warehouse,
        "select stream, rows_landed, rows_rejected from loader.batches order by stream",
    )
    assert batches == sorted((t, result.rows[t], n) for t, n in result.rejects.items())
    assert any("6 row(s) rejected (in loader.rejects)" in n for n in result.notes)


def test_reloading_a_date_replaces_its_rejects_like_one_clean_load(
    api, warehouse, pg_server, monkeypatch
) -> None:
    days = [START + dt.timedelta(days=4), START + dt.timedelta(days=5)]
    set_bad_values(api, BAD)
    pg_server.ensure_database(reference := f"ref_rejects_{os.getpid()}_{id(api)}")
    monkeypatch.setenv("WAREHOUSE_DB", reference)
    for day in days:
        load_day(day)
    ref = pg_server.conninfo(reference)
    clean = (
        stored(ref, REJECTS),
        {t: raw(ref, t) for t in ("user_order_log", "customer_research")},
    )
    monkeypatch.setenv("WAREHOUSE_DB", psycopg.conninfo.conninfo_to_dict(warehouse)["dbname"])
    for day in (days[0], days[0], days[1], days[0]):  # reruns, in any order
        load_day(day)
    tables = {t: raw(warehouse, t) for t in ("user_order_log", "customer_research")}
    assert (stored(warehouse, REJECTS), tables) == clean
    # A corrected re-send of one date clears that date's rejects, and only that date's.
    set_faults(api)
    result = load_day(days[0])
    assert set(result.rejects.values()) == {0}
    versions = {r[3] for r in stored(warehouse, REJECTS)}
    assert versions == {days[1].isoformat()}


def test_the_pipeline_steps_and_the_cli_report_rejected_counts(api, warehouse, capsys) -> None:
    day = START + dt.timedelta(days=4)
    set_bad_values(api, BAD[:2])
    folder = fetch_day(day)
    counts = check_folder(folder)
    assert counts[ORDERS]["rejected"] == 2 and counts[ORDERS]["valid"] > 0
    assert sources.check_files(StepContext(day, upstream=str(folder))) == str(folder)
    landed = sources.load_increment(StepContext(day, upstream=str(folder)))
    assert landed["tables"]["raw_sales_api.user_order_log"] == {
        "landed": counts[ORDERS]["valid"], "rejected": 2,
    }  # fmt: skip
    assert landed["tables"]["raw_sales_api.customer_research"]["rejected"] == 0
    capsys.readouterr()
    assert cli(["sales_api", "--date", day.isoformat()]) == 0
    out = capsys.readouterr()
    assert f"sales {day}: landed " in out.out and "; rejected user_order_log=2 " in out.out
    assert "2 row(s) rejected (in loader.rejects), e.g. user_order_log_inc.csv: line 2:" in out.err


def test_429_is_retried_after_the_wait_the_server_asks_for(api) -> None:
    def first_call(**faults) -> list[float]:
        set_faults(api, **faults)
        sleeps: list[float] = []
        with SalesApiClient(SalesApiSettings.from_env(), sleep=sleeps.append) as client:
            assert client.generate_report()
        return sleeps

    assert first_call(rate_limit_next=2, retry_after="1") == [1.0, 1.0]
    assert first_call(rate_limit_next=2, retry_after="3600") == [60.0, 60.0]  # capped
    assert first_call(rate_limit_next=2, retry_after=None) == [0.05, 0.1]  # the usual backoff
    with pytest.raises(LoaderError) as caught:
        first_call(rate_limit_next=3, retry_after="2")
    message = str(caught.value)
    assert message == (
        f"the sales API at {api.url}/generate_report rate-limited the loader (HTTP 429) 3 "
        "time(s) in a row (Retry-After: 2, waits capped at 60s); try again later"
    )


def test_429_waits_for_real_and_the_day_still_loads(api, warehouse) -> None:
    set_faults(api, rate_limit_next=1, retry_after="1")
    started = time.monotonic()
    assert load_day(START).rows["user_order_log"] > 0
    assert time.monotonic() - started >= 1.0


def test_retry_after_reads_both_forms_and_caps_the_wait() -> None:
    now = dt.datetime(2026, 10, 5, 12, 0, tzinfo=dt.UTC)
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds("86400", now) == 60.0
    assert retry_after_seconds("Mon, 05 Oct 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Mon, 05 Oct 2026 11:00:00 GMT", now) == 0.0  # already past
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_cli_errors_are_one_line_without_traceback_or_api_key(
    api, warehouse, capsys, monkeypatch
) -> None:
    assert cli(["sales_api", "--date", "2026-09-01"]) == 1  # before the partner's first day
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and SALES_KEY not in err
    assert f"the sales API at {api.url}/get_increment answered HTTP 404: " in err
    monkeypatch.setenv("SALES_API_KEY", "a-wrong-but-secret-key")
    assert cli(["sales_api", "--date", START.isoformat()]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a-wrong-but-secret-key" not in err
    assert "refused the API key: check SALES_API_KEY" in err
    set_faults(api, rate_limit_next=10, retry_after="0")
    monkeypatch.setenv("SALES_API_KEY", SALES_KEY)
    assert cli(["sales_api", "--date", START.isoformat()]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "(HTTP 429) 3 time(s) in a row" in err


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


def test_storage_that_cannot_be_written_is_one_line(api, tmp_path, monkeypatch) -> None:
    (blocked := tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("SALES_STORAGE_DIR", str(blocked))
    with pytest.raises(LoaderError, match=r"cannot save the 2026-10-01 increment in .*"
                                          r"\(check SALES_STORAGE_DIR\)$"):  # fmt: skip
        fetch_day(START)


def test_a_row_postgresql_refuses_is_rejected_with_its_line_and_the_rest_lands(
    warehouse, tmp_path, monkeypatch
) -> None:
    """The checks are the first net; COPY isolating a refused row is the second."""
    header, good = GOOD[ORDERS]
    nul = good.replace(b"a1,", b"a2,").replace(b"Moscow", b"Mos\x00cow")
    folder = write_increment(tmp_path / "d", {ORDERS: b"\n".join((header, good, nul)) + b"\n"})
    monkeypatch.setattr(checks, "check_value", lambda *args: None)  # a contract gap
    result = land_folder(folder, START)
    assert result.rows["user_order_log"] == 1 and result.rejects["user_order_log"] == 1
    [(record_id, reason, payload)] = stored(
        warehouse, "select record_id, reason, payload from loader.rejects"
    )
    assert record_id == "a2"
    assert reason.startswith(f"{ORDERS}: line 3: refused by PostgreSQL: ")
    assert payload.startswith("a2,2026-10-05 10:00:00,1,Mos\\u0000cow,")


def test_the_api_key_goes_only_to_the_apis_own_origin() -> None:
    from loaders.sales_api.client import SalesApiClient
    from loaders.sales_api.settings import SalesApiSettings

    settings = SalesApiSettings(
        url="http://127.0.0.1:8090", api_key="k-123", poll_seconds=0.1, deadline_seconds=1,
        timeout_seconds=1, attempts=1, backoff_seconds=0.01,
    )  # fmt: skip
    with SalesApiClient(settings) as client:
        assert client._headers(client.url_of("/files/x.csv")) == {"X-API-KEY": "k-123"}
        assert client._headers(client.url_of("https://storage.example.com/x.csv")) == {}
        assert client._headers(client.url_of("http://127.0.0.1:9999/x.csv")) == {}
