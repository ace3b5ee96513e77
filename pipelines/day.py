"""Every source of the registry through a logical day, side by side in the registry's order.

``simulate`` lets each simulated source system write the day(s); ``land``
runs each source's extract-load steps. ``make run`` runs both before dbt;
``make datagen`` and ``make load`` (``python -m pipelines simulate`` and
``land``) run one each. A source added to ``SOURCES`` is in all of them.

Sources run side by side (LOADER_SOURCES_AT_ONCE at a time), each once the
sources its ``after`` names are done: most of a source's time is its
servers' (a report the partner API prepares, a COPY PostgreSQL runs), so
the day waits for the longest source, not the sum. A source that fails
does not stop the others, only those that come after it; the first failure
is raised once every source that could run has run.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from graphlib import TopologicalSorter
from typing import Any, TypeVar

from config import LoaderSettings, WarehouseSettings
from loaders.core.warehouse import connect
from pipelines import clock
from pipelines.definition import Source, run_source
from pipelines.sources import SOURCES

T = TypeVar("T")


def each_source(sources: tuple[Source, ...], work: Callable[[Source], T]) -> list[T]:
    """``work(source)`` for each of ``sources``, side by side, each after those its
    ``after`` names (among ``sources``); the results in ``sources``' order.

    A source whose ``work`` raised is not followed by those that come after it;
    the others still run. The first error (in ``sources``' order) is raised then,
    and any other is printed, one line each.
    """
    names = {s.name for s in sources}
    after = {s.name: [a for a in s.after if a in names] for s in sources}
    graph = TopologicalSorter(after)
    graph.prepare()
    by_name = {s.name: s for s in sources}
    order = [s.name for s in sources]
    results: dict[str, T] = {}
    errors: dict[str, BaseException] = {}
    workers = max(1, min(LoaderSettings.from_env().sources_at_once, len(sources)))
    with ThreadPoolExecutor(workers, thread_name_prefix="source") as pool:
        running: dict[Future[T], str] = {}
        while graph.is_active():
            for name in sorted(graph.get_ready(), key=order.index):  # registry order
                if any(a not in results for a in after[name]):  # one it comes after failed
                    graph.done(name)
                else:
                    running[pool.submit(work, by_name[name])] = name
            if not running:
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                try:
                    results[name] = future.result()
                except BaseException as exc:  # raised below, once the others ran
                    errors[name] = exc
                graph.done(name)
    failed = [errors[s.name] for s in sources if s.name in errors]
    if failed:
        for other in failed[1:]:
            print(f"  also failed: {other}", file=sys.stderr, flush=True)
        raise failed[0]
    return [results[s.name] for s in sources]


def simulate(
    days: list[dt.date], say: Callable[[str], None] = print, only: tuple[Source, ...] = ()
) -> None:
    """Each simulated source system (or each of ``only``) writes each of ``days``.

    A day every system has written moves the simulation's clock (one of them
    alone does not: the next run gives the day to the others).
    """
    simulated = tuple(s for s in only or SOURCES if s.simulate is not None)
    for day in days:

        def write(source: Source, day: dt.date = day) -> None:
            counts = source.simulate(day) or {}
            say(f"datagen  {day}: {sum(counts.values()):,} records written ({source.name})")

        each_source(simulated, write)
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

    def land_source(source: Source) -> list[dict[str, Any]]:
        landed: list[dict[str, Any]] = []
        for day in days_to_land(wh, source.name, days) if source.daily else days[-1:]:
            print(f"  {source.name} {day} ...", file=sys.stderr, flush=True)
            landed += run_source(source, day)
        return landed

    return [r for results in each_source(only or SOURCES, land_source) for r in results]


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
