"""Anomaly alerts: one message per newly flagged 15-minute slice, with a chart of the band.

Reads ``feed_anomalies`` (ALERTS_DBT_TARGET). Every flag of the last
ALERT_MAX_AGE_HOURS (counted back from the latest slice in the mart) that
has not been delivered to the configured channel is sent; the flagged
metrics of one slice go out together, one line each (value, band,
deviation), with one chart panel per metric.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from itertools import groupby
from zoneinfo import ZoneInfo

from config import ReportSettings, SupersetSettings
from reports import charts, deliveries
from reports.channel import open_channel
from reports.marts import ANOMALY_METRICS, Flag, open_anomalies

FUTURE_TOLERANCE = dt.timedelta(days=1)


@dataclass(frozen=True)
class SentAlert:
    slice_start: dt.datetime
    metrics: tuple[str, ...]
    delivered_to: str

    def line(self) -> str:
        return (
            f"alert {self.slice_start:%Y-%m-%d %H:%M} UTC: {', '.join(self.metrics)}"
            f" -> {self.delivered_to}"
        )


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2%}" if metric == "ctr" else f"{value:,.0f}"


def deviation(flag: Flag) -> str:
    """How far outside the band the value is, against the bound it crossed."""
    if flag.value is None or flag.lower is None or flag.upper is None:
        return "no band"
    if flag.value < flag.lower:
        side, bound = "below", flag.lower
    else:
        side, bound = "above", flag.upper
    gap = flag.value - bound
    relative = f", {gap / abs(bound):+.1%}" if bound else ""
    return f"{side} the band by {_fmt(flag.metric, abs(gap))}{relative}"


def compose(slice_start: dt.datetime, flags: list[Flag], timezone: str, link: str) -> str:
    local = slice_start.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(timezone))
    lines = [
        f"Anomaly in the 15-minute slice {slice_start:%Y-%m-%d %H:%M} UTC "
        f"({local:%H:%M} {timezone})"
    ]
    for flag in flags:
        lines.append(
            f"- {ANOMALY_METRICS.get(flag.metric, flag.metric)}: {_fmt(flag.metric, flag.value)},"
            f" expected {_fmt(flag.metric, flag.lower)} .. {_fmt(flag.metric, flag.upper)}"
            f" ({deviation(flag)})"
        )
    lines.append(f"Dashboard: {link}")
    return "\n".join(lines)


def send() -> list[SentAlert]:
    """Deliver every flag not delivered yet; returns what was sent, oldest slice first."""
    settings = ReportSettings.from_env()
    link = SupersetSettings.from_env().dashboard_url(SupersetSettings.APP_DASHBOARD_SLUG)
    sent: list[SentAlert] = []
    with (
        deliveries.warehouse() as conn,
        open_anomalies(settings.alerts_target, conn) as mart,
    ):
        # Slices more than a day ahead of this clock come from a bad clock, not from now:
        # anchoring on one would put every real flag out of the max age.
        latest = mart.latest_slice(dt.datetime.now(dt.UTC) + FUTURE_TOLERANCE)
        if latest is None:
            return []
        since = latest - dt.timedelta(hours=settings.alert_max_age_hours)
        flags = mart.flags_since(since)
        channel = open_channel(settings)
        try:
            for slice_start, group in groupby(flags, key=lambda f: f.slice_start):
                slice_flags = list(group)
                with conn.transaction():
                    claimed = deliveries.claim_alerts(conn, channel.name, slice_flags)
                    if not claimed:
                        continue
                    new = [f for f in slice_flags if f.metric in claimed]
                    metrics = [f.metric for f in new]
                    start = slice_start - dt.timedelta(hours=settings.alert_chart_hours)
                    png = charts.alert_chart(
                        slice_start, mart.history(metrics, start, slice_start), metrics
                    )
                    text = compose(slice_start, new, settings.timezone, link)
                    caption = (
                        f"{', '.join(ANOMALY_METRICS.get(m, m) for m in metrics)} at "
                        f"{slice_start:%Y-%m-%d %H:%M} UTC"
                    )
                    # The metrics in the name: a later flag in the same slice is
                    # a folder (and a delivery) of its own, not an overwrite.
                    name = f"alerts/{slice_start:%Y-%m-%dT%H%M}-{'-'.join(metrics)}"
                    with deliveries.parts(f"{name} {channel.name}") as parts:
                        where = channel.deliver(text, png, caption, name, parts)
                    deliveries.mark_alerts(conn, slice_start, set(claimed), channel.name, where)
                sent.append(SentAlert(slice_start, tuple(metrics), where))
        finally:
            channel.close()
    return sent
