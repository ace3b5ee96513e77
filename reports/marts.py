"""Reading the marts the report and the alerts are built from (never the raw tables).

The daily report reads ``app_metrics_daily`` on the warehouse. The alerts
read ``feed_anomalies`` on the dbt target that rebuilds it every 15 minutes
(ClickHouse by default, ALERTS_DBT_TARGET): the same SQL runs on both, and
the values are plain numbers and UTC times whichever answers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from config import DbtSettings
from loaders.core.warehouse import LoaderError
from loaders.events.settings import ClickHouseSettings

# The report's metrics: column of app_metrics_daily, label, part of the app.
METRICS = (
    ("dau_feed", "DAU", "feed"),
    ("views", "Views", "feed"),
    ("likes", "Likes", "feed"),
    ("ctr", "CTR (likes / views)", "feed"),
    ("dau_messenger", "DAU", "messenger"),
    ("messages_sent", "Messages sent", "messenger"),
    ("sent_received_ratio", "Sent / received (users)", "messenger"),
    ("dau_both", "DAU of both", "app"),
)
# feed_anomalies' metrics, as the alerts name them.
ANOMALY_METRICS = {
    "users_feed": "feed users",
    "views": "views",
    "likes": "likes",
    "ctr": "CTR",
    "users_messenger": "messenger users",
    "messages_sent": "messages sent",
}


class MartMissing(LoaderError):
    """A mart is not built yet (or not the day asked for)."""


def utc_naive(value: dt.datetime) -> dt.datetime:
    """A slice time as naive UTC, however the driver returned it."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def quarantined_since(conn: psycopg.Connection, since: dt.datetime) -> dict[str, int]:
    """Rows the staging rules held out since ``since``, per model (empty: none, or no
    quarantine yet: it is made by the first dbt build)."""
    table = f'"{DbtSettings.from_env().audit_schema}".quarantined_rows'
    if conn.execute("select to_regclass(%s)", (table,)).fetchone()[0] is None:
        return {}
    found = conn.execute(
        # Rows, not (row, rule) pairs: a row breaking two rules is one row held out.
        f"select model, count(distinct row) from {table} where quarantined_at >= %s"
        " group by 1 order by 1",
        (since,),
    ).fetchall()
    return {model: int(n) for model, n in found}


def quarantine_line(counts: dict[str, int], when: str) -> str:
    """One line for the summary and the report: how many rows, which models, where to look."""
    if not counts:
        return f"quarantined {when}: none"
    models = ", ".join(f"{model} {n:,}" for model, n in counts.items())
    return (
        f"quarantined {when}: {sum(counts.values()):,} row(s) ({models});"
        f" see {DbtSettings.from_env().audit_schema}.quarantined_rows"
    )


def app_metrics(
    conn: psycopg.Connection, first: dt.date, last: dt.date
) -> dict[dt.date, dict[str, float | None]]:
    """``app_metrics_daily`` for the days ``first .. last`` (days without a row left out)."""
    schema = DbtSettings.from_env().marts_schema
    columns = ", ".join(column for column, _, _ in METRICS)
    try:
        rows = conn.execute(
            f'select event_date, {columns} from "{schema}".app_metrics_daily'
            " where event_date between %s and %s order by event_date",
            (first, last),
        ).fetchall()
    except psycopg.errors.UndefinedTable:
        conn.rollback()
        raise MartMissing(
            f"{schema}.app_metrics_daily does not exist on the warehouse yet: "
            "run `make run` (or dbt build) first"
        ) from None
    except psycopg.errors.UndefinedColumn as exc:
        conn.rollback()
        raise MartMissing(
            f"{schema}.app_metrics_daily lacks a column the report reads "
            f"({str(exc).splitlines()[0]}): rebuild it with dbt build --full-refresh -s "
            "app_metrics_daily"
        ) from None
    names = [column for column, _, _ in METRICS]
    return {
        row[0]: {n: None if v is None else float(v) for n, v in zip(names, row[1:], strict=True)}
        for row in rows
    }


def latest_metrics_day(conn: psycopg.Connection) -> dt.date | None:
    schema = DbtSettings.from_env().marts_schema
    try:
        return conn.execute(f'select max(event_date) from "{schema}".app_metrics_daily').fetchone()[
            0
        ]
    except psycopg.errors.UndefinedTable:
        conn.rollback()
        return None


@dataclass(frozen=True)
class Flag:
    """One metric's value in one 15-minute slice, with the band it was judged by."""

    slice_start: dt.datetime  # naive UTC
    metric: str
    value: float | None
    lower: float | None
    upper: float | None
    is_anomaly: bool


class AnomalyMart:
    """``feed_anomalies`` on one dbt target; ``fetch`` runs a query and returns its rows."""

    def __init__(self, fetch: Callable[[str], list[tuple]], where: str, system: str):
        self._fetch = fetch
        self.where = where
        self.table = f"{DbtSettings.from_env().marts_schema_on(system)}.feed_anomalies"

    def _rows(self, sql: str) -> list[Flag]:
        return [
            Flag(
                utc_naive(r[0]),
                str(r[1]),
                *(_number(v) for v in r[2:5]),
                bool(r[5]),
            )
            for r in self._fetch(sql)
        ]

    def latest_slice(self, not_after: dt.datetime) -> dt.datetime | None:
        """The latest slice up to ``not_after`` (a bad clock's year-2100 event is not "now")."""
        rows = self._fetch(
            f"select max(slice_start), count(*) from {self.table}"
            f" where slice_start <= {_ts(not_after)}"
        )
        return utc_naive(rows[0][0]) if rows and rows[0][1] else None

    def flags_since(self, since: dt.datetime) -> list[Flag]:
        """Flagged slices from ``since`` on (UTC), oldest first."""
        return self._rows(
            "select slice_start, metric, value, lower_bound, upper_bound, is_anomaly"
            f" from {self.table} where is_anomaly and slice_start >= {_ts(since)}"
            " order by slice_start, metric"
        )

    def history(self, metrics: list[str], start: dt.datetime, end: dt.datetime) -> list[Flag]:
        """Every slice of ``metrics`` in ``[start, end]``, for the alert's chart."""
        # Names go into SQL: only the mart's own (a new metric gets no chart until named here).
        names = ", ".join(f"'{m}'" for m in metrics if m in ANOMALY_METRICS) or "''"
        return self._rows(
            "select slice_start, metric, value, lower_bound, upper_bound, is_anomaly"
            f" from {self.table} where metric in ({names})"
            f" and slice_start >= {_ts(start)} and slice_start <= {_ts(end)}"
            " order by metric, slice_start"
        )


def _number(value: object) -> float | None:
    """A mart value as a float; NULL and NaN (no value, no band) as None."""
    if value is None:
        return None
    number = float(value)
    return None if number != number else number


def _ts(value: dt.datetime) -> str:
    """A UTC time as a literal both PostgreSQL and ClickHouse compare with their slice_start."""
    return f"'{utc_naive(value):%Y-%m-%d %H:%M:%S}'"


@contextmanager
def open_anomalies(target: str, conn: psycopg.Connection) -> Iterator[AnomalyMart]:
    """``feed_anomalies`` on ``target``: ``warehouse`` uses ``conn``, ``clickhouse`` its own."""
    if target == "warehouse":
        where = "the warehouse"
        # dbt builds slice_start as timestamptz there: the UTC literals must mean UTC.
        conn.execute("set time zone 'UTC'")
        if not conn.autocommit:
            conn.commit()

        def fetch(sql: str) -> list[tuple]:
            try:
                return conn.execute(sql).fetchall()
            except psycopg.errors.UndefinedTable:
                conn.rollback()
                raise MartMissing(
                    f"{DbtSettings.from_env().marts_schema}.feed_anomalies does not exist on "
                    "the warehouse yet: run `make run` (or dbt build) first"
                ) from None

        yield AnomalyMart(fetch, where, "warehouse")
        return
    from loaders.events.client import open_source

    settings = ClickHouseSettings.from_env()
    with open_source(settings) as source:

        def fetch_ch(sql: str) -> list[tuple]:
            with source.errors("reading feed_anomalies"):
                return list(source.client.query(sql).result_rows)

        yield AnomalyMart(fetch_ch, source.where, "clickhouse")
