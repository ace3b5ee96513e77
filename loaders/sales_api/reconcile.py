"""The partner sales files reconciled with the API, per date, against its announced rows.

For every date from the first landed to the latest, the API is asked for the
date's increment listing (one report for all of them, one small request per
date: the files are not downloaded) and each file's announced row count is
compared with what the warehouse holds for it: raw rows plus rejected ones. A
date that differs (rows added or removed at the partner after it landed, a
date never landed) is fetched and landed again whole, as a load does (its
three tables and their rejects replaced in one transaction).
"""

from __future__ import annotations

import datetime as dt
import time

import psycopg
from psycopg import sql

from config import WarehouseSettings
from loaders.core.reconcile import Partition, Reconciled, record, timed
from loaders.core.warehouse import connect
from loaders.raw_tables import ensure_all_raw_tables
from loaders.sales_api.checks import FILES
from loaders.sales_api.client import SalesApiClient
from loaders.sales_api.job import load_day
from loaders.sales_api.landing import SOURCE, raw_table
from loaders.sales_api.settings import SalesApiSettings


def held(conn: psycopg.Connection) -> dict[str, dict[dt.date, int]]:
    """Per table, rows held per date: landed plus rejected."""
    found: dict[str, dict[dt.date, int]] = {}
    for spec in FILES.values():
        counts = found.setdefault(spec.table, {})
        for day, n in conn.execute(
            sql.SQL("select _increment_date, count(*) from {} group by 1").format(
                raw_table(spec).identifier
            )
        ).fetchall():
            counts[day] = counts.get(day, 0) + int(n)
        for version, n in conn.execute(
            "select record_version, count(*) from loader.rejects where source = %s"
            " and stream = %s group by 1",
            (SOURCE, spec.table),
        ).fetchall():
            try:
                day = dt.date.fromisoformat(version)
            except ValueError:
                continue
            counts[day] = counts.get(day, 0) + int(n)
    conn.commit()
    return found


def _announced(increment: dict) -> dict[str, int | None]:
    files = increment.get("files") if isinstance(increment, dict) else None
    if not isinstance(files, list):
        return {}
    return {
        str(f.get("name")): f.get("rows") if isinstance(f.get("rows"), int) else None
        for f in files
        if isinstance(f, dict)
    }


def reconcile() -> list[Reconciled]:
    started = time.monotonic()
    results = {spec.table: Reconciled(SOURCE, spec.table) for spec in FILES.values()}
    with connect(WarehouseSettings.from_env()) as conn:
        ensure_all_raw_tables(conn)
        counts = held(conn)
    days = sorted({day for per_day in counts.values() for day in per_day})
    if not days:  # nothing landed yet: the loads' business
        return list(results.values())
    every_day = [days[0] + dt.timedelta(days=k) for k in range((days[-1] - days[0]).days + 1)]
    relanded: dict[dt.date, str] = {}

    def reland(day: dt.date) -> str:
        if day not in relanded:
            load_day(day)
            relanded[day] = "relanded"
        return relanded[day]

    with SalesApiClient(SalesApiSettings.from_env()) as client:
        report_id = client.wait_for_report(client.generate_report())
        announced = {day: _announced(client.get_increment(report_id, day)) for day in every_day}
    for day in every_day:
        for name, spec in FILES.items():
            rows = announced[day].get(name)
            if rows is None:  # the API did not say: nothing to compare with
                continue
            results[spec.table].compare(
                day.isoformat(),
                Partition(rows),
                Partition(counts[spec.table].get(day, 0)),
                lambda day=day: reland(day),
            )
    with connect(WarehouseSettings.from_env()) as conn:
        for result in results.values():
            record(conn, timed(result, started))
    return list(results.values())
