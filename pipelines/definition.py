"""What a source's pipeline is made of: steps over a logical day, and the raw tables they fill."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from loaders.core.raw_tables import RawTable
from loaders.core.result import LoadResult


@dataclass(frozen=True)
class StepContext:
    day: dt.date  # the logical day being processed
    stream: str | None = None  # for a step fanned out per stream: this one
    upstream: Any = None  # what the previous step returned (an XCom in Airflow)
    # Block until a sensor step is done (make run, the CLI); False: check once
    # and return (done, value), the way an Airflow sensor pokes.
    wait: bool = True


@dataclass(frozen=True)
class Landed:
    """What a landing step did, per raw table; returned as plain data (an XCom)."""

    tables: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> landed/rejected
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"tables": self.tables, "notes": self.notes}

    @classmethod
    def of(cls, *results: LoadResult, notes: tuple[str, ...] = ()) -> dict[str, Any]:
        """What the loads did, as a landing step returns it (plain data, an XCom)."""
        tables = {t: c for r in results for t, c in r.tables().items()}
        return cls(tables, [n for r in results for n in r.notes] + list(notes)).as_dict()


@dataclass(frozen=True)
class Step:
    name: str  # the task id in Airflow, a progress line in make run
    run: Callable[[StepContext], Any]
    # Non-empty: one task per stream (each emitting its raw table); make run runs each.
    streams: tuple[str, ...] = ()
    # Run the streams concurrently in make run too (Airflow always may).
    parallel: bool = False
    sensor: bool = False  # run returns (done, value); Airflow reschedules until done
    poke_seconds: float = 10.0  # between a sensor's checks in Airflow
    timeout_seconds: float = 30 * 60  # a sensor that is not done by then fails


@dataclass(frozen=True)
class Source:
    name: str  # also the dbt tag of the source's models
    description: str
    raw_tables: tuple[RawTable, ...]
    steps: tuple[Step, ...]
    # One run per logical day (a partner's daily increments) or, when False,
    # whenever there is something new (a watermark-based replication).
    daily: bool
    # Writes the logical day into the simulated source system (local runs and
    # tests; a real deployment has the real system and no simulator).
    simulate: Callable[[dt.date], dict[str, int] | None] | None = None
    # The dbt tag its transform selects; sources whose models are one whole
    # (the order system's database and its registration stream) share one.
    transform: str = ""
    # Where its models are built: "warehouse" (the PostgreSQL warehouse, on
    # the configured dbt target: DBT_TARGET, dev, ci or prod), and for the
    # events also "clickhouse" (that profile target), where the same models
    # read the events in place.
    dbt_targets: tuple[str, ...] = ("warehouse",)
    # The servers it reads from (stack.services.SERVERS names): `make up` starts
    # those EMBEDDED_SERVICES names, `make status` probes them.
    servers: tuple[str, ...] = ()
    # Sources that land (and simulate) before it; otherwise the order is by name.
    after: tuple[str, ...] = ()

    @property
    def dbt_tag(self) -> str:
        return self.transform or self.name

    def raw_table(self, stream: str) -> RawTable:
        return next(t for t in self.raw_tables if t.name == stream)


def run_source(source: Source, day: dt.date) -> list[dict[str, Any]]:
    """Run ``source``'s steps for ``day`` in this process; returns what its landing steps did.

    The in-process twin of the source's extract-load DAG: the same steps in the
    same order, sensors waiting in place instead of being rescheduled.
    """
    upstream: Any = None
    landed: list[dict[str, Any]] = []
    for step in source.steps:
        if step.streams:
            contexts = [StepContext(day, stream=s) for s in step.streams]
            if step.parallel:
                with ThreadPoolExecutor(len(contexts)) as pool:
                    upstream = list(pool.map(step.run, contexts))
            else:
                upstream = [step.run(c) for c in contexts]
            results = upstream
        else:
            upstream = step.run(StepContext(day, upstream=upstream))
            if step.sensor:
                _, upstream = upstream
            results = [upstream]
        landed += [r for r in results if isinstance(r, dict) and "tables" in r]
    return landed
