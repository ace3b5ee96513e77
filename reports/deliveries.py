"""What has been delivered, recorded in the warehouse so that nothing goes out twice.

``reporting.daily_reports`` has a row per report day and channel,
``reporting.anomaly_alerts`` one per slice, metric and channel,
``reporting.health_alerts`` one per health alert's kind, subject and channel. A delivery
*claims* its rows first (``insert ... on conflict do nothing``) and commits
them only after the channel accepted the message: a failed send leaves no
row (the next run tries again), and a second run at the same time waits on
the first one's rows and then finds them taken.

A delivery to Telegram is two messages (the text, then the chart). Each part
the channel accepted is recorded at once, on a connection of its own
(``reporting.delivered_parts``), so a delivery that failed half-way sends
only the missing part on the next run, never the text twice. A crash between
a part's send and its record can still repeat that part (at least once,
never lost).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import psycopg

from config import WarehouseSettings
from loaders.core.warehouse import connect

DDL = """
create schema if not exists reporting;
create table if not exists reporting.daily_reports (
    report_date date not null,
    channel text not null,
    delivered_to text not null,
    delivered_at timestamptz not null default now(),
    message text not null,
    primary key (report_date, channel)
);
comment on table reporting.daily_reports is
    'The daily app report, one row per day and channel it was delivered to (python -m reports).';
create table if not exists reporting.anomaly_alerts (
    slice_start timestamp not null,
    metric text not null,
    channel text not null,
    value double precision,
    lower_bound double precision,
    upper_bound double precision,
    delivered_to text not null,
    delivered_at timestamptz not null default now(),
    primary key (slice_start, metric, channel)
);
comment on table reporting.anomaly_alerts is
    'Anomaly alerts sent, one row per flagged 15-minute slice (UTC), metric and channel.';
create table if not exists reporting.delivered_parts (
    delivery text not null,
    part text not null,
    delivered_at timestamptz not null default now(),
    primary key (delivery, part)
);
create table if not exists reporting.health_alerts (
    kind text not null,
    alert_key text not null,
    channel text not null,
    message text not null,
    delivered_to text not null,
    delivered_at timestamptz not null default now(),
    primary key (kind, alert_key, channel)
);
comment on table reporting.health_alerts is
    'Health alerts sent, one row per kind, subject and channel (python -m reports health).';
comment on table reporting.delivered_parts is
    'The parts of each delivery (text, chart) a channel accepted: a retry sends only the rest.';
"""


@contextmanager
def warehouse() -> Iterator[psycopg.Connection]:
    """The warehouse for a delivery run: reads outside transactions, each delivery its own."""
    with connect(WarehouseSettings.from_env()) as conn:
        conn.autocommit = True
        ensure_tables(conn)
        yield conn


def ensure_tables(conn: psycopg.Connection) -> None:
    # An advisory lock: two first runs at once must not race on CREATE.
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('reporting.ddl'))")
        conn.execute(DDL)


class Parts:
    """The parts of one delivery the channel has accepted, recorded as each goes out.

    On its own autocommit connection: a record survives the delivery's
    transaction rolling back when a later part fails.
    """

    def __init__(self, delivery: str, conn: psycopg.Connection):
        self.delivery = delivery
        self._conn = conn

    def sent(self) -> set[str]:
        rows = self._conn.execute(
            "select part from reporting.delivered_parts where delivery = %s", (self.delivery,)
        ).fetchall()
        return {part for (part,) in rows}

    def record(self, part: str) -> None:
        self._conn.execute(
            "insert into reporting.delivered_parts (delivery, part) values (%s, %s)"
            " on conflict do nothing",
            (self.delivery, part),
        )

    def clear(self) -> None:
        """Forget what was sent (a forced resend sends every part again)."""
        self._conn.execute(
            "delete from reporting.delivered_parts where delivery = %s", (self.delivery,)
        )


@contextmanager
def parts(delivery: str) -> Iterator[Parts]:
    with connect(WarehouseSettings.from_env()) as conn:
        conn.autocommit = True
        yield Parts(delivery, conn)


def claim_report(
    conn: psycopg.Connection, day: dt.date, channel: str, message: str, force: bool
) -> bool:
    """Claim ``day``'s report for ``channel`` in the open transaction; False if already sent."""
    conflict = (
        "do update set delivered_at = now(), message = excluded.message" if force else "do nothing"
    )
    row = conn.execute(
        "insert into reporting.daily_reports (report_date, channel, delivered_to, message)"
        f" values (%s, %s, '', %s) on conflict (report_date, channel) {conflict}"
        " returning report_date",
        (day, channel, message),
    ).fetchone()
    return row is not None


def report_delivered(conn: psycopg.Connection, day: dt.date, channel: str) -> tuple | None:
    """(delivered_to, delivered_at) of ``day``'s report on ``channel``, or None."""
    return conn.execute(
        "select delivered_to, delivered_at from reporting.daily_reports"
        " where report_date = %s and channel = %s",
        (day, channel),
    ).fetchone()


def mark_report(conn: psycopg.Connection, day: dt.date, channel: str, where: str) -> None:
    conn.execute(
        "update reporting.daily_reports set delivered_to = %s"
        " where report_date = %s and channel = %s",
        (where, day, channel),
    )


def claim_alerts(conn: psycopg.Connection, channel: str, flags: Sequence) -> set[str]:
    """Claim one slice's flagged metrics for ``channel``; returns the metrics not sent before."""
    claimed: set[str] = set()
    for flag in flags:
        row = conn.execute(
            "insert into reporting.anomaly_alerts"
            " (slice_start, metric, channel, value, lower_bound, upper_bound, delivered_to)"
            " values (%s, %s, %s, %s, %s, %s, '')"
            " on conflict (slice_start, metric, channel) do nothing returning metric",
            (flag.slice_start, flag.metric, channel, flag.value, flag.lower, flag.upper),
        ).fetchone()
        if row:
            claimed.add(row[0])
    return claimed


def mark_alerts(
    conn: psycopg.Connection, slice_start: dt.datetime, metrics: set[str], channel: str, where: str
) -> None:
    conn.execute(
        "update reporting.anomaly_alerts set delivered_to = %s"
        " where slice_start = %s and metric = any(%s) and channel = %s",
        (where, slice_start, sorted(metrics), channel),
    )


def claim_health_alert(
    conn: psycopg.Connection, kind: str, key: str, channel: str, message: str
) -> bool:
    """Claim a health alert for ``channel`` in the open transaction; False if it was sent."""
    row = conn.execute(
        "insert into reporting.health_alerts (kind, alert_key, channel, message, delivered_to)"
        " values (%s, %s, %s, %s, '') on conflict do nothing returning kind",
        (kind, key, channel, message),
    ).fetchone()
    return row is not None


def mark_health_alert(
    conn: psycopg.Connection, kind: str, key: str, channel: str, where: str
) -> None:
    conn.execute(
        "update reporting.health_alerts set delivered_to = %s"
        " where kind = %s and alert_key = %s and channel = %s",
        (where, kind, key, channel),
    )
