"""The one pipeline definition: every raw table is a source's, and steps run in order."""

from __future__ import annotations

import datetime as dt

from loaders.raw_tables import all_raw_tables
from pipelines import SOURCES, Landed, Source, Step, StepContext, run_source

DAY = dt.date(2026, 10, 5)


def test_the_sources_raw_tables_are_exactly_the_tables_the_loaders_create() -> None:
    declared = [t.qualified_name for s in SOURCES for t in s.raw_tables]
    assert sorted(declared) == sorted(t.qualified_name for t in all_raw_tables())
    assert len(declared) == len(set(declared))


def test_every_fanned_out_stream_has_its_raw_table() -> None:
    for source in SOURCES:
        for step in source.steps:
            for stream in step.streams:
                assert source.raw_table(stream).name == stream


def test_run_source_chains_steps_waits_on_sensors_and_fans_out() -> None:
    calls: list[tuple] = []

    def first(ctx: StepContext) -> str:
        calls.append(("first", ctx.day, ctx.upstream, ctx.wait))
        return "task-1"

    def sensor(ctx: StepContext) -> tuple[bool, str]:
        calls.append(("sensor", ctx.upstream, ctx.wait))
        return True, "report-1"

    def land(ctx: StepContext) -> dict:
        calls.append(("land", ctx.upstream, ctx.stream))
        return Landed({f"raw.{ctx.stream}": {"landed": 1, "rejected": 0}}).as_dict()

    source = Source(
        "fake", "a fake source", (),
        (Step("first", first), Step("sensor", sensor, sensor=True),
         Step("land", land, streams=("a", "b"))),
        daily=True,
    )  # fmt: skip
    landed = run_source(source, DAY)
    assert calls == [
        ("first", DAY, None, True),
        ("sensor", "task-1", True),
        ("land", None, "a"),
        ("land", None, "b"),
    ]
    assert [list(r["tables"]) for r in landed] == [["raw.a"], ["raw.b"]]


def test_every_source_has_its_loader_command_and_nothing_else_does() -> None:
    """`python -m loaders` finds each source's loaders/<source>/cli.py: no list to edit."""
    import argparse
    import subprocess
    import sys

    from config import PROJECT_ROOT
    from loaders.__main__ import commands

    found = commands()
    assert sorted(found) == sorted(s.name for s in SOURCES)
    for name, module in found.items():
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)  # its options build, and run is there to call
        assert callable(module.run), name
    out = subprocess.run(
        [sys.executable, "-m", "loaders", "--help"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    # ... and `reconcile`, over each source with a loaders/<source>/reconcile.py.
    assert "{" + ",".join([*sorted(found), "reconcile"]) + "}" in out


def test_each_reconciler_belongs_to_a_source() -> None:
    from loaders.core.reconcile import reconcilers

    found = reconcilers()
    assert set(found) <= {s.name for s in SOURCES} and found
    assert all(callable(module.reconcile) for module in found.values())
