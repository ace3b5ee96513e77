"""The daily report: a day's app metrics against the day before and a week before, one PNG.

Built from ``app_metrics_daily`` only. The day is a UTC day of the marts;
Airflow sends it at REPORT_TIME in REPORT_TIMEZONE for the day before that
local date. A day already delivered to the configured channel is not sent
again unless ``force``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property

from config import ReportSettings, SupersetSettings
from reports import charts, deliveries
from reports.channel import open_channel
from reports.marts import (
    METRICS,
    MartMissing,
    app_metrics,
    latest_metrics_day,
    quarantine_line,
    quarantined_since,
)

PARTS = (("feed", "Feed"), ("messenger", "Messenger"), ("app", "Feed and messenger"))


@dataclass(frozen=True)
class Report:
    day: dt.date
    text: str
    days: dict[dt.date, dict[str, float | None]] = field(repr=False)
    caption: str

    @cached_property
    def png(self) -> bytes:
        """Drawn when first asked for: a report already delivered is never drawn."""
        return charts.daily_chart(self.day, self.days)


@dataclass(frozen=True)
class Delivery:
    day: dt.date
    delivered_to: str
    sent: bool  # False: it had been delivered before, nothing was sent now
    text: str
    channel: str  # "disk" or "telegram:<chat id>"

    def line(self) -> str:
        if self.sent:
            return f"report {self.day}: delivered to {self.delivered_to}"
        return (
            f"report {self.day}: already delivered to {self.delivered_to}; "
            "nothing sent (--force to send it again)"
        )


def report_day(now: dt.datetime, timezone: str) -> dt.date:
    """The day a report sent at ``now`` is about: the day before ``now``'s date in ``timezone``."""
    from zoneinfo import ZoneInfo

    return (now.astimezone(ZoneInfo(timezone)).date()) - dt.timedelta(days=1)


def change(value: float | None, before: float | None) -> str:
    """``+3.2%``, or ``n/a`` without a comparable value."""
    if value is None or before is None or before == 0:
        return "n/a"
    return f"{(value - before) / before:+.1%}"


def _value(column: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if column == "ctr":
        return f"{value:.2%}"
    if column == "sent_received_ratio":
        return f"{value:.3f}"
    return f"{value:,.0f}"


def compose(
    day: dt.date,
    days: dict[dt.date, dict[str, float | None]],
    link: str,
    quality: str | None = None,
) -> Report:
    """The report's text and PNG from the metrics of ``day - 7 .. day``; ``quality``: a
    line on the data held out of the marts (the quarantine), above the dashboard's link."""
    today = days[day]
    yesterday = days.get(day - dt.timedelta(days=1), {})
    week_ago = days.get(day - dt.timedelta(days=7), {})
    lines = [f"App report for {day:%A, %d %B %Y} (UTC day)", ""]
    for part, title in PARTS:
        lines.append(title)
        for column, label, metric_part in METRICS:
            if metric_part != part:
                continue
            value = today.get(column)
            lines.append(
                f"  {label}: {_value(column, value)}"
                f"  (d/d {change(value, yesterday.get(column))},"
                f" w/w {change(value, week_ago.get(column))})"
            )
        lines.append("")
    lines.append("d/d: against the day before; w/w: against the same day a week before.")
    if quality:
        lines.append(f"Data: {quality}.")
    lines.append(f"Dashboard: {link}")
    caption = f"7 days to {day:%d.%m.%Y}: feed (left) and messenger (right). {link}"
    return Report(day, "\n".join(lines), days, caption)


def build(conn, day: dt.date) -> Report:
    """The report of ``day`` from the warehouse's marts; MartMissing if the day is not built."""
    days = app_metrics(conn, day - dt.timedelta(days=7), day)
    if day not in days:
        latest = latest_metrics_day(conn)
        raise MartMissing(
            f"no app metrics for {day} in app_metrics_daily yet (latest day there: "
            f"{latest or 'none'}); the report is made once that day's events are landed "
            "and built"
        )
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=24)
    quality = quarantine_line(quarantined_since(conn, since), "in the last 24 hours")
    return compose(
        day,
        days,
        SupersetSettings.from_env().dashboard_url(SupersetSettings.APP_DASHBOARD_SLUG),
        quality,
    )


def send(day: dt.date, force: bool = False) -> Delivery:
    """Build ``day``'s report and deliver it once to the configured channel."""
    settings = ReportSettings.from_env()
    with deliveries.warehouse() as conn:
        report = build(conn, day)
        channel = open_channel(settings)
        try:
            with conn.transaction(), deliveries.parts(f"report {day} {channel.name}") as parts:
                if force:
                    parts.clear()
                if not deliveries.claim_report(conn, day, channel.name, report.text, force):
                    where, when = deliveries.report_delivered(conn, day, channel.name)
                    return Delivery(
                        day,
                        f"{where} at {when:%Y-%m-%d %H:%M %Z}",
                        False,
                        report.text,
                        channel.name,
                    )
                where = channel.deliver(report.text, report.png, report.caption, f"{day}", parts)
                deliveries.mark_report(conn, day, channel.name, where)
        finally:
            channel.close()
    return Delivery(day, where, True, report.text, channel.name)
