"""Entry points shared by the CLI, ``make run`` and Airflow: the API's steps, and a whole day."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from config import WarehouseSettings
from loaders.core.warehouse import connect
from loaders.raw_tables import ensure_all_raw_tables
from loaders.sales_api.checks import check_increment
from loaders.sales_api.client import SalesApiClient
from loaders.sales_api.files import download_increment
from loaders.sales_api.landing import LoadResult, land_increment
from loaders.sales_api.settings import SalesApiSettings


def _client() -> SalesApiClient:
    return SalesApiClient(SalesApiSettings.from_env())


def request_report() -> str:
    """Ask the partner API to prepare a report; returns its task_id."""
    with _client() as client:
        return client.generate_report()


def report_ready(task_id: str, wait: bool = True) -> tuple[bool, str | None]:
    """(ready, report_id): polls until the deadline if ``wait``, else checks once."""
    with _client() as client:
        if wait:
            return True, client.wait_for_report(task_id)
        body = client.report_status(task_id)
    return body.get("status") == "SUCCESS", body.get("report_id")


def fetch_increment(report_id: str, day: dt.date, root: Path | None = None) -> Path:
    """The day's increment files, saved in the date's folder; returns the folder."""
    with _client() as client:
        return download_increment(client, client.get_increment(report_id, day), day, root)


def check_folder(folder: Path) -> dict[str, dict[str, int]]:
    """Every file present and whole (the file-sensor step); valid and rejected rows per file.

    File-level problems stop here with one line; lines that break the field
    contract are only counted: the load step lands the rest and records them.
    """
    return {
        name: {"valid": len(f.rows), "rejected": len(f.bad)}
        for name, f in check_increment(folder).items()
    }


def land_folder(folder: Path, day: dt.date) -> LoadResult:
    """Replace the day's raw rows and rejects with the folder's checked files, atomically."""
    checked = check_increment(folder)
    with connect(WarehouseSettings.from_env()) as conn:
        ensure_all_raw_tables(conn)
        result = land_increment(conn, day, checked)
    result.folder = folder
    return result


def fetch_day(day: dt.date, root: Path | None = None) -> Path:
    """generate_report -> get_report (poll) -> get_increment -> files on disk."""
    _, report_id = report_ready(request_report())
    assert report_id is not None
    return fetch_increment(report_id, day, root)


def load_day(day: dt.date, root: Path | None = None) -> LoadResult:
    """The whole partner API pipeline for one logical date, as the CLI uses it."""
    started = time.monotonic()
    result = land_folder(fetch_day(day, root), day)
    result.seconds = time.monotonic() - started
    return result
