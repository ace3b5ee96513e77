"""Platform health: the alerts the ops models raise, and the one health line.

Read from the ops views (``models/marts/ops``), which are current as soon as
a load or a dbt invocation is kept. Each alert has a kind and a subject key;
``reporting.health_alerts`` records it per channel, so nothing goes out twice
(a claim committed only once the channel took the message, as the anomaly
alerts do). The kinds:

- ``test_failing``: a test that fails since its last pass (one per streak);
- ``rejects``: a raw table whose rejected and quarantined rows of a day reach
  HEALTH_REJECT_ALERT_ROWS (one per table and day);
- ``volume``: a day's rows outside the table's band (one per table and day);
- ``stale``: a source none of whose raw tables landed rows for
  HEALTH_STALE_AFTER_HOURS (one per time it stopped);
- ``task_failed`` and ``run_failed``: a failed Airflow task (its DAG's
  on_failure_callback) or a failed ``make run``, sent at once (``alert_now``).

Failures, anomalies and rejects older than HEALTH_ALERT_MAX_AGE_DAYS are not
alerted (a first run on a warehouse with history does not flood the chat).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

import psycopg

from config import DbtSettings, HealthSettings, ReportSettings, WarehouseSettings
from loaders.core.warehouse import LoaderError, connect
from reports import deliveries
from reports.channel import open_channel


@dataclass(frozen=True)
class HealthAlert:
    kind: str
    key: str  # the subject: one alert per (kind, key) and channel, ever
    text: str

    @property
    def folder(self) -> str:
        """Where the disk channel writes it: one folder per alert."""
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.key)[:100]
        digest = hashlib.sha1(self.key.encode()).hexdigest()[:10]  # a long key stays distinct
        return f"health/{self.kind}-{safe}-{digest}"


@dataclass(frozen=True)
class SentHealthAlert:
    alert: HealthAlert
    delivered_to: str

    def line(self) -> str:
        return f"health alert {self.alert.kind} {self.alert.key} -> {self.delivered_to}"


def _ops_exists(conn: psycopg.Connection, ops: str) -> bool:
    row = conn.execute("select to_regclass(%s)", (f'"{ops}".fct_source_freshness',)).fetchone()
    return bool(row and row[0])


def _when(value: dt.datetime | None) -> str:
    return f"{value.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC" if value else "never"


def pending(conn: psycopg.Connection) -> list[HealthAlert]:
    """Every alert the ops views raise now (sent or not: ``send`` skips those sent)."""
    health = HealthSettings.from_env()
    ops = DbtSettings.from_env().ops_schema
    if not _ops_exists(conn, ops):
        return []
    days = health.alert_max_age_days
    alerts: list[HealthAlert] = []
    for uid, target, test, node, since, passed, message in conn.execute(
        f"""select distinct on (unique_id, target) unique_id, target, test_name, tested_node,
               failing_since, last_passed_at, latest_message
        from "{ops}".fct_test_history
        where failing_since >= now() - make_interval(days => %s)
        order by unique_id, target, run_date desc""",
        (days,),
    ):
        reason = " ".join((message or "").split())[:300]
        alerts.append(HealthAlert(
            "test_failing",
            f"{target}:{uid}:{since.astimezone(dt.UTC).isoformat()}",
            f"dbt test failing on {target}: {test}"
            + (f" (tests {node})" if node else "")
            + f"\nfailing since {_when(since)}; last passed {_when(passed)}"
            + (f"\n{reason}" if reason else ""),
        ))  # fmt: skip
    for source, stream, day, rejected, quarantined, reason in conn.execute(
        f"""select source, stream, landed_date, rows_rejected, rows_quarantined, a_reject_reason
        from "{ops}".fct_rows_landed_daily
        where rows_rejected + rows_quarantined >= %s
          and landed_date >= current_date - %s
        order by landed_date, source, stream""",
        (health.reject_alert_rows, days),
    ):
        alerts.append(HealthAlert(
            "rejects",
            f"{source}.{stream}:{day}",
            f"{source}.{stream}: {rejected:,} rejected and {quarantined:,} quarantined row(s)"
            f" on {day} (HEALTH_REJECT_ALERT_ROWS {health.reject_alert_rows:,})"
            + (f"\na reason: {reason[:200]}" if reason else "")
            + "\nsee loader.rejects and audit.quarantined_rows",
        ))  # fmt: skip
    for source, stream, day, rows, lower, upper in conn.execute(
        f"""select source, stream, landed_date, rows_landed, lower_bound, upper_bound
        from "{ops}".fct_volume_anomalies
        where is_anomaly and landed_date >= current_date - %s
        order by landed_date, source, stream""",
        (days,),
    ):
        side = "below" if rows < lower else "above"
        alerts.append(HealthAlert(
            "volume",
            f"{source}.{stream}:{day}",
            f"{source}.{stream} landed {rows:,} row(s) on {day}, {side} its usual"
            f" {lower:,.0f} .. {upper:,.0f}",
        ))  # fmt: skip
    for source, last, hours in conn.execute(
        f"""select source, max(last_landed_at), min(hours_since_landed)
        from "{ops}".fct_source_freshness
        group by source
        having coalesce(min(hours_since_landed) > %s, true)
        order by source""",
        (health.stale_after_hours,),
    ):
        ago = f"{hours:,.1f} hours ago" if hours is not None else "ever"
        alerts.append(HealthAlert(
            "stale",
            f"{source}:{last.astimezone(dt.UTC).isoformat() if last else 'never'}",
            f"source {source} is stale: no raw table of it landed rows since {_when(last)}"
            f" ({ago}; HEALTH_STALE_AFTER_HOURS {health.stale_after_hours:g})",
        ))  # fmt: skip
    return alerts


def _deliver(conn: psycopg.Connection, channel, alerts: list[HealthAlert]) -> list[SentHealthAlert]:
    sent = []
    for alert in alerts:
        with conn.transaction():
            if not deliveries.claim_health_alert(
                conn, alert.kind, alert.key, channel.name, alert.text
            ):
                continue
            where = channel.deliver_text(alert.text, alert.folder)
            deliveries.mark_health_alert(conn, alert.kind, alert.key, channel.name, where)
        sent.append(SentHealthAlert(alert, where))
    return sent


def send() -> list[SentHealthAlert]:
    """Deliver every health alert not delivered yet to the configured channel."""
    if not HealthSettings.from_env().enabled:
        return []
    with deliveries.warehouse() as conn:
        alerts = pending(conn)
        if not alerts:
            return []
        channel = open_channel(ReportSettings.from_env())
        try:
            return _deliver(conn, channel, alerts)
        finally:
            channel.close()


def alert_now(kind: str, key: str, text: str) -> SentHealthAlert | None:
    """Deliver one alert at once (a failed task or run) unless it was sent; None if it was."""
    if not HealthSettings.from_env().enabled:
        return None
    with deliveries.warehouse() as conn:
        channel = open_channel(ReportSettings.from_env())
        try:
            sent = _deliver(conn, channel, [HealthAlert(kind, key, text)])
        finally:
            channel.close()
    return sent[0] if sent else None


def health_line(wh: WarehouseSettings | None = None) -> str:
    """``health: last run ..., failing tests ..., worst lag ..., stalest source ...``."""
    try:
        with connect(wh or WarehouseSettings.from_env()) as conn:
            return _health_line(conn, DbtSettings.from_env().ops_schema)
    except (LoaderError, psycopg.Error) as exc:
        return f"health: cannot be read ({' '.join(str(exc).split())[:200]})"


def _amount(lag: int, unit: str) -> str:
    if unit != "bytes":
        return f"{lag:,} {unit}"
    return f"{lag / 2**20:,.1f} MiB" if lag >= 2**20 else f"{lag / 2**10:,.0f} KiB"


def _health_line(conn: psycopg.Connection, ops: str) -> str:
    if not _ops_exists(conn, ops):
        return "health: no ops models yet (the first dbt build makes them)"
    parts = []
    builds = conn.execute(
        f"""select distinct on (target) target, finished_at, success, failed
        from "{ops}".fct_dbt_invocations where command = 'build'
        order by target, finished_at desc"""
    ).fetchall()
    if builds:
        last = max(finished for _, finished, _, _ in builds)
        states = ", ".join(
            f"{target} {'ok' if success else f'FAILED ({failed} node(s))'}"
            for target, _, success, failed in builds
        )
        parts.append(f"last build {_when(last)}: {states}")
    else:
        parts.append("no build kept yet")
    (failing,) = conn.execute(
        f"""select count(distinct (unique_id, target)) from "{ops}".fct_test_history
        where failing_since is not null"""
    ).fetchone()
    parts.append(f"failing tests {failing}")
    lags = conn.execute(
        f"""select stream, lag, unit from "{ops}".fct_stream_lag
        where is_latest order by source, stream"""
    ).fetchall()
    parts.append(
        "lag " + ", ".join(f"{stream} {_amount(lag, unit)}" for stream, lag, unit in lags)
        if lags
        else "no lag measured"
    )
    stale = conn.execute(
        f"""select source, max(last_landed_at), min(hours_since_landed)
        from "{ops}".fct_source_freshness group by source
        order by min(hours_since_landed) desc nulls first limit 1"""
    ).fetchone()
    if stale:
        ago = f"{stale[2]:,.1f}h ago" if stale[2] is not None else "never landed"
        parts.append(f"stalest source {stale[0]} ({ago})")
    return "health: " + ", ".join(parts)
