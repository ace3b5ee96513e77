"""Every source of the registry through a logical day, in the registry's order.

``simulate`` lets each simulated source system write the day(s); ``land``
runs each source's extract-load steps. ``make run`` runs both before dbt;
``make datagen`` and ``make load`` (``python -m pipelines simulate`` and
``land``) run one each. A source added to ``SOURCES`` is in all of them.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from typing import Any

from config import LoaderSettings, WarehouseSettings
from loaders.core.warehouse import connect
from pipelines import clock
from pipelines.definition import Source, run_source
from pipelines.sources import SOURCES


def simulate(
    days: list[dt.date], say: Callable[[str], None] = print, only: tuple[Source, ...] = ()
) -> None:
    """Each simulated source system (or each of ``only``) writes each of ``days``.

    A day every system has written moves the simulation's clock (one of them
    alone does not: the next run gives the day to the others).
    """
    for day in days:
        for source in only or SOURCES:
            if source.simulate is not None:
                counts = source.simulate(day) or {}
                say(f"datagen  {day}: {sum(counts.values()):,} records written ({source.name})")
        if not only:
            clock.record([day])


def days_to_land(wh: WarehouseSettings, source: str, days: list[dt.date]) -> list[dt.date]:
    """A daily source's days from the one after its last landed increment up to ``days[-1]``.

    A day that failed last time is not skipped; a first landing takes ``days``.
    """
    # A recorded day after the loaders' horizon (a clock that ran ahead, before
    # the loaders refused it) is not believed: the days before it still land.
    limit = LoaderSettings.from_env().horizon().date()
    with connect(wh) as conn:
        exists = conn.execute("select to_regclass('loader.watermarks') is not null").fetchone()
        row = (
            conn.execute(
                "select min((value ->> 'increment_date')::date) from loader.watermarks"
                " where source = %s and (value ->> 'increment_date')::date <= %s",
                (source, limit),
            ).fetchone()
            if exists and exists[0]
            else None
        )
    if not row or row[0] is None:
        return days
    first = row[0] + dt.timedelta(days=1)
    return [first + dt.timedelta(days=k) for k in range((days[-1] - first).days + 1)]


def land(
    wh: WarehouseSettings, days: list[dt.date], only: tuple[Source, ...] = ()
) -> list[dict[str, Any]]:
    """What is new in every source (or each of ``only``): daily sources each day not
    landed yet up to ``days[-1]``, watermark-based ones once. Returns what each
    landing step did."""
    landed: list[dict[str, Any]] = []
    for source in only or SOURCES:
        for day in days_to_land(wh, source.name, days) if source.daily else days[-1:]:
            print(f"  {source.name} {day} ...", file=sys.stderr, flush=True)
            landed += run_source(source, day)
    return landed


def landed_lines(landed: list[dict[str, Any]]) -> list[str]:
    """Rows landed and rejected per raw table, a total, and the loaders' notes."""
    lines = [f"{'landed (rows, this run)':<46}{'landed':>9}   {'rejected':>8}"]
    totals: dict[str, list[int]] = {}
    for result in landed:
        for table, counts in result["tables"].items():
            acc = totals.setdefault(table, [0, 0])
            acc[0] += counts["landed"]
            acc[1] += counts["rejected"]
    for table, (n_landed, n_rejected) in totals.items():
        lines.append(f"  {table:<44}{n_landed:>9,}   {n_rejected:>8,}")
    lines.append(
        f"  {'total':<44}{sum(v[0] for v in totals.values()):>9,}   "
        f"{sum(v[1] for v in totals.values()):>8,}"
    )
    lines += [f"  note: {note}" for r in landed for note in r["notes"]]
    return lines
