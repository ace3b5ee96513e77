"""The report's and the alerts' PNGs, drawn with matplotlib (no pyplot: no GUI, no global state).

matplotlib is imported when a chart is drawn, not with this module: its import
costs about a second, and a run that sends nothing (a report already delivered,
no new anomaly) draws nothing.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from reports.marts import ANOMALY_METRICS, METRICS, Flag

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DAILY_SIZE = (12, 12)  # inches at DPI: the report's PNG is 1200 x 1200 pixels
DPI = 100
FEED, MESSENGER = "#1f77b4", "#2ca02c"


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    # zlib's fastest level: a third of savefig's time at its default (6), for a
    # PNG about 10% bigger.
    figure.savefig(buffer, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def _number(value: float, _pos: object = None) -> str:
    """Axis labels that stay distinct on narrow ranges (104.5k, 12.3k, 0.596)."""
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.2f}M"
    if abs(value) >= 10_000:
        return f"{value / 1_000:.1f}k"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _percent(value: float, _pos: object = None) -> str:
    return f"{value:.2%}"


def daily_figure(day: dt.date, days: dict[dt.date, dict[str, float | None]]) -> Figure:
    """Seven days up to ``day``: the feed's metrics in the left column, the messenger's right.

    One panel per report metric (8); a day without data is a gap in its line.
    """
    from matplotlib.dates import DateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    week = [day - dt.timedelta(days=n) for n in range(6, -1, -1)]
    # As datetimes, so that the axis can reach half a day beyond the first and last day.
    ticks = [dt.datetime.combine(d, dt.time()) for d in week]
    # Fixed margins, not a layout engine: the grid, its titles and its tick
    # labels are the same every day, and constrained layout measured every text
    # on every draw (half of the chart's time).
    figure = Figure(figsize=DAILY_SIZE)
    figure.subplots_adjust(left=0.06, right=0.985, top=0.93, bottom=0.075, hspace=0.3, wspace=0.14)
    figure.suptitle(f"App metrics, 7 days to {day:%Y-%m-%d} (UTC days)", fontsize=14)
    grid = figure.subplots(4, 2, sharex=True)
    columns = {"feed": [], "messenger": []}
    for column, label, part in METRICS:
        side = "feed" if part == "feed" else "messenger"
        columns[side].append((column, label, part))
    for col, (side, color) in enumerate((("feed", FEED), ("messenger", MESSENGER))):
        for row, (column, label, part) in enumerate(columns[side]):
            axes = grid[row][col]
            values = [days.get(d, {}).get(column) for d in week]
            axes.plot(ticks, [float("nan") if v is None else v for v in values], "o-", color=color)
            title = {"feed": "Feed", "messenger": "Messenger", "app": "Feed + messenger"}[part]
            axes.set_title(f"{title}: {label}", fontsize=11)
            axes.yaxis.set_major_formatter(FuncFormatter(_percent if column == "ctr" else _number))
            axes.set_ylim(bottom=0)  # every metric is a count or a ratio: bars read from zero
            axes.grid(alpha=0.3)
            # Always the whole week, one tick a day, whatever days have data.
            axes.set_xticks(ticks)
            axes.set_xlim(ticks[0] - dt.timedelta(hours=12), ticks[-1] + dt.timedelta(hours=12))
            axes.xaxis.set_major_formatter(DateFormatter("%a %d.%m"))
            axes.tick_params(axis="x", labelrotation=30, labelsize=9)
    return figure


def daily_chart(day: dt.date, days: dict[dt.date, dict[str, float | None]]) -> bytes:
    return _png(daily_figure(day, days))


def alert_figure(slice_start: dt.datetime, history: Sequence[Flag], metrics: list[str]) -> Figure:
    """One panel per flagged metric: its value over the last hours, the band, the flags in red."""
    from matplotlib.dates import DateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    figure = Figure(figsize=(10, 3.2 * len(metrics)), layout="constrained")
    figure.suptitle(f"Anomaly at {slice_start:%Y-%m-%d %H:%M} UTC (15-minute slices)")
    panels = figure.subplots(len(metrics), 1, squeeze=False)
    for axes, metric in zip((p[0] for p in panels), metrics, strict=True):
        points = [f for f in history if f.metric == metric]
        times = [f.slice_start for f in points]
        nan = float("nan")
        lower = [nan if f.lower is None else f.lower for f in points]
        upper = [nan if f.upper is None else f.upper for f in points]
        axes.fill_between(times, lower, upper, color="#999999", alpha=0.25, label="expected band")
        axes.plot(times, [nan if f.value is None else f.value for f in points], "-", label="value")
        flagged = [f for f in points if f.is_anomaly and f.value is not None]
        axes.scatter(
            [f.slice_start for f in flagged],
            [f.value for f in flagged],
            color="#d62728",
            zorder=3,
            label="anomaly",
        )
        axes.set_title(ANOMALY_METRICS.get(metric, metric))
        axes.yaxis.set_major_formatter(FuncFormatter(_percent if metric == "ctr" else _number))
        axes.set_ylim(bottom=0)
        axes.xaxis.set_major_formatter(DateFormatter("%d.%m %H:%M"))
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left", fontsize=8)
    return figure


def alert_chart(slice_start: dt.datetime, history: Sequence[Flag], metrics: list[str]) -> bytes:
    return _png(alert_figure(slice_start, history, metrics))
