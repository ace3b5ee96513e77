"""Partner sales API -> local files -> raw_sales.* (seed 004), one logical date at a time.

The steps are separate functions because the Airflow DAG shows them as tasks:
``generate_report`` -> ``wait_for_report`` -> ``download_increment`` (files
saved under a date-partitioned folder) -> ``check_increment`` (every file
present and well-formed, seed 004's FileSensor step) -> ``land_increment``.
``load_day`` runs them all (CLI, `make run`).

Reloading a date replaces that date's raw rows in one transaction, so a
restart or a backfill never duplicates rows and never leaves half a date.
HTTP 5xx answers and timeouts are retried with exponential backoff; anything
that still fails stops with one line naming the URL, or the file and line.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import httpx
import psycopg
from psycopg import sql
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from loaders.settings import LocalSettings, SalesApiSettings, WarehouseSettings
from loaders.warehouse import (
    LoaderError,
    close_batch,
    connect,
    copy_statement,
    ensure_control_tables,
    open_batch,
    stream_lock,
)

SOURCE = "sales_api"
RAW_SCHEMA = "raw_sales"
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
META_COLUMNS = ("_increment_date", "_file_name", "_row_number", "_batch_id")


# --- HTTP -------------------------------------------------------------------------
class _ServerError(Exception):
    def __init__(self, response: httpx.Response):
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, _ServerError | httpx.TimeoutException | httpx.TransportError)


class SalesApiClient:
    def __init__(self, settings: SalesApiSettings, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.sleep = sleep
        self.http = httpx.Client(
            base_url=settings.url,
            headers={"X-API-KEY": settings.api_key},
            timeout=settings.timeout_seconds,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SalesApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        """One API call; 5xx answers, timeouts and refused connections are retried."""
        s = self.settings
        url = f"{s.url}{path}"
        retrying = Retrying(
            stop=stop_after_attempt(s.attempts),
            wait=wait_exponential(multiplier=s.backoff_seconds, max=60),
            retry=retry_if_exception(_transient),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    response = self.http.request(method, path, **kwargs)
                    if response.status_code >= 500:
                        raise _ServerError(response)
        except _ServerError as exc:
            raise LoaderError(
                f"the sales API at {url} answered HTTP {exc.response.status_code} "
                f"{s.attempts} time(s) in a row; try again later"
            ) from None
        except httpx.TimeoutException:
            raise LoaderError(
                f"the sales API at {url} did not answer within {s.timeout_seconds:g}s, "
                f"{s.attempts} time(s) (SALES_API_TIMEOUT_SECONDS)"
            ) from None
        except httpx.TransportError as exc:
            raise LoaderError(
                f"cannot reach the sales API at {url}: {exc or type(exc).__name__} "
                "(run `make up` for the local one, or fix SALES_API_URL)"
            ) from None
        if response.status_code == 401:
            raise LoaderError(f"the sales API at {url} refused the API key: check SALES_API_KEY")
        if response.status_code >= 400:
            raise LoaderError(
                f"the sales API at {url} answered HTTP {response.status_code}: "
                f"{response.text[:200]}"
            )
        return response

    # -- the protocol --------------------------------------------------------------
    def generate_report(self) -> str:
        return self.call("POST", "/generate_report").json()["task_id"]

    def report_status(self, task_id: str) -> dict:
        """One status check: ``{"status": "RUNNING"}`` or ``{"status": "SUCCESS", "report_id"}``."""
        return self.call("GET", "/get_report", params={"task_id": task_id}).json()

    def wait_for_report(self, task_id: str) -> str:
        """Poll until the report is ready; a report not ready by the deadline is an error."""
        deadline = time.monotonic() + self.settings.deadline_seconds
        while True:
            body = self.report_status(task_id)
            if body.get("status") == "SUCCESS":
                return body["report_id"]
            if time.monotonic() >= deadline:
                raise LoaderError(
                    f"the sales API report {task_id} was not ready after "
                    f"{self.settings.deadline_seconds:g}s (status {body.get('status')!r}; "
                    "SALES_API_DEADLINE_SECONDS)"
                )
            self.sleep(self.settings.poll_seconds)

    def get_increment(self, report_id: str, day: dt.date) -> dict:
        params = {"report_id": report_id, "date": day.isoformat()}
        return self.call("GET", "/get_increment", params=params).json()


# --- local storage ----------------------------------------------------------------
def storage_root() -> Path:
    return Path(
        os.environ.get("SALES_STORAGE_DIR", LocalSettings.from_env().data_dir / "sales_api")
    )


def increment_dir(day: dt.date, root: Path | None = None) -> Path:
    return (root or storage_root()) / "increments" / f"date={day.isoformat()}"


def download_increment(
    client: SalesApiClient, increment: dict, day: dt.date, root: Path | None = None
) -> Path:
    """Save the increment's files (and what the API said about them) for ``day``.

    Files go to a temporary folder that replaces the date's folder only when
    every download finished, so the folder never holds a mix of two fetches.
    """
    final = increment_dir(day, root)
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for item in increment["files"]:
        (tmp / item["name"]).write_bytes(client.call("GET", item["url"]).content)
    (tmp / MANIFEST).write_text(json.dumps(increment, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


# --- the file check (seed 004's sensor step) --------------------------------------
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


# --- landing ----------------------------------------------------------------------
def raw_table(spec: RawFile) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(RAW_SCHEMA), sql.Identifier(spec.table))


def ensure_raw_tables(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('loader.ddl'))")
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(RAW_SCHEMA)))
        for spec in FILES.values():
            columns = sql.SQL(",\n").join(
                sql.SQL("{} text").format(sql.Identifier(c)) for c in spec.columns
            )
            conn.execute(
                sql.SQL(
                    """create table if not exists {} (
                        {},
                        _increment_date  date not null,
                        _file_name       text not null,
                        _row_number      integer not null,
                        _batch_id        bigint not null,
                        _loaded_at       timestamptz not null default now()
                    )"""
                ).format(raw_table(spec), columns)
            )
            conn.execute(
                sql.SQL("create index if not exists {} on {} (_increment_date)").format(
                    sql.Identifier(f"{spec.table}__increment_date_idx"), raw_table(spec)
                )
            )


@dataclass
class DayResult:
    day: dt.date
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows landed
    folder: Path | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def land_increment(
    conn: psycopg.Connection, day: dt.date, checked: dict[str, CheckedFile]
) -> DayResult:
    """Replace ``day``'s raw rows with the checked files, atomically."""
    from loaders.raw_schemas import ensure_all_raw_tables  # imports this module

    result = DayResult(day)
    ensure_control_tables(conn)
    ensure_all_raw_tables(conn)
    # One lock for every date: batch ids then commit in order, which is what
    # the incremental dbt models rely on (see the incremental_since macro).
    with stream_lock(conn, SOURCE, "increments"), conn.transaction():
        for name, file in checked.items():
            table = raw_table(file.spec)
            conn.execute(sql.SQL("delete from {} where _increment_date = %s").format(table), (day,))
            batch_id = open_batch(conn, SOURCE, file.spec.table)
            stmt = copy_statement(table, (*file.spec.columns, *META_COLUMNS))
            with conn.cursor() as cur, cur.copy(stmt) as copy:
                for number, row in enumerate(file.rows, start=1):
                    copy.write_row((*row, day, name, number, batch_id))
            close_batch(
                conn,
                batch_id,
                SOURCE,
                file.spec.table,
                len(file.rows),
                0,
                {"increment_date": day.isoformat()},
            )
            result.rows[file.spec.table] = len(file.rows)
            if file.missing_optional:
                result.notes.append(
                    f"{name} for {day} has no {', '.join(file.missing_optional)} column "
                    "(older format): staging treats those rows as shipped"
                )
    return result


def fetch_day(
    day: dt.date, settings: SalesApiSettings | None = None, root: Path | None = None
) -> Path:
    """generate_report -> get_report (poll) -> get_increment -> files on disk."""
    with SalesApiClient(settings or SalesApiSettings.from_env()) as client:
        report_id = client.wait_for_report(client.generate_report())
        increment = client.get_increment(report_id, day)
        return download_increment(client, increment, day, root)


def load_day(day: dt.date, root: Path | None = None) -> DayResult:
    """The whole seed-004 pipeline for one logical date, as the CLI and `make run` use it."""
    started = time.monotonic()
    folder = fetch_day(day, root=root)
    checked = check_increment(folder)
    with connect(WarehouseSettings.from_env()) as conn:
        result = land_increment(conn, day, checked)
    result.folder = folder
    result.seconds = time.monotonic() - started
    return result
