"""`make datagen` and `make load` (``python -m pipelines simulate`` and ``land``) run
every source of the registry: a source added to ``SOURCES`` is in both.

Here the registry holds one made-up source whose simulator and landing step
record their calls (no server needed); make run goes through the same two
functions with the real sources (tests/stack/test_run.py).
"""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines import Landed, Source, Step, day
from pipelines.__main__ import main

D = dt.date(2026, 10, 5)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dt.date]]:
    made: list[tuple[str, dt.date]] = []

    def write(when: dt.date) -> dict[str, int]:
        made.append(("simulate", when))
        return {"items": 3}

    def land(ctx) -> dict:
        made.append(("land", ctx.day))
        counts = {"raw_extra.items": {"landed": 2, "rejected": 1}}
        return Landed(counts, ["one late item"]).as_dict()

    extra = Source(
        name="extra",
        description="a made-up source that only records its calls",
        raw_tables=(),
        steps=(Step("land_items", land),),
        daily=False,
        simulate=write,
    )
    monkeypatch.setattr(day, "SOURCES", (extra,))
    return made


def test_simulate_runs_every_registered_simulator(calls, warehouse, capsys) -> None:
    from pipelines import clock

    assert main(["simulate", "--date", D.isoformat(), "--days", "2"]) == 0
    assert calls == [("simulate", D), ("simulate", D + dt.timedelta(days=1))]
    assert f"datagen  {D}: 3 records written (extra)" in capsys.readouterr().out
    # Every system wrote both days: the clock moved past them.
    assert clock.written_days() == [D, D + dt.timedelta(days=1)]


def test_land_lands_every_registered_source(calls, capsys) -> None:
    assert main(["land", "--date", D.isoformat()]) == 0
    assert calls == [("land", D)]
    out = capsys.readouterr()
    assert "raw_extra.items" in out.out and "note: one late item" in out.out
    total = next(line for line in out.out.splitlines() if line.strip().startswith("total"))
    assert total.split()[1:] == ["2", "1"]
    assert "extra 2026-10-05" in out.err  # progress on stderr


def _source(name: str, after: tuple[str, ...] = ()) -> Source:
    return Source(name=name, description=name, raw_tables=(), steps=(), daily=False, after=after)


def test_sources_run_side_by_side_each_after_those_it_names(monkeypatch) -> None:
    """A source waiting on its server does not hold the others up; `after` still orders."""
    import threading
    import time

    monkeypatch.setenv("LOADER_SOURCES_AT_ONCE", "3")
    sources = (_source("a"), _source("b"), _source("c", after=("a",)))
    both_running = threading.Barrier(2, timeout=10)  # a and b must be in work at once
    ended: dict[str, float] = {}
    started: dict[str, float] = {}

    def work(source: Source) -> str:
        started[source.name] = time.monotonic()
        if source.name in ("a", "b"):
            both_running.wait()
        time.sleep(0.05)
        ended[source.name] = time.monotonic()
        return source.name.upper()

    assert day.each_source(sources, work) == ["A", "B", "C"]  # the sources' order
    assert started["c"] >= ended["a"]


def test_a_failing_source_stops_only_those_after_it_and_is_raised(monkeypatch, capsys) -> None:
    monkeypatch.setenv("LOADER_SOURCES_AT_ONCE", "2")
    sources = (_source("oltp"), _source("kafka", after=("oltp",)), _source("mongo"),
               _source("sales", after=("mongo",)))  # fmt: skip
    ran: list[str] = []

    def work(source: Source) -> None:
        ran.append(source.name)
        if source.name in ("oltp", "sales"):
            raise RuntimeError(f"{source.name} is down")

    with pytest.raises(RuntimeError, match="oltp is down"):
        day.each_source(sources, work)
    assert sorted(ran) == ["mongo", "oltp", "sales"]  # kafka comes after the failed oltp
    assert "also failed: sales is down" in capsys.readouterr().err


def test_one_at_a_time_is_the_registry_order_as_after_allows(monkeypatch) -> None:
    monkeypatch.setenv("LOADER_SOURCES_AT_ONCE", "1")
    sources = (_source("b"), _source("a"), _source("c", after=("b",)))
    ran: list[str] = []
    day.each_source(sources, lambda s: ran.append(s.name))
    assert ran == ["b", "a", "c"]
