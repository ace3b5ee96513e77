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
