"""Every source: one module per source in this package, found here (nothing to register).

A module ``pipelines/sources/<name>.py`` defines ``SOURCE = Source(...)``: its
steps are thin adapters from a ``StepContext`` to the source's loader entry
points (``loaders.<name>.job``), returning plain data (Airflow passes it to the
next step as an XCom). Landing order is stated, not implied: a source lands
after the ones its ``after`` names, and otherwise in name order.
"""

from __future__ import annotations

import importlib
import pkgutil
from graphlib import CycleError, TopologicalSorter

from pipelines.definition import Source


class RegistryError(ValueError):
    """The sources' definitions contradict each other (a name twice, an unknown ``after``)."""


def ordered(sources: list[Source]) -> tuple[Source, ...]:
    """``sources`` in landing order: each after those its ``after`` names, ties by name."""
    by_name: dict[str, Source] = {}
    for source in sources:
        if source.name in by_name:
            raise RegistryError(f"two sources are named {source.name!r}")
        by_name[source.name] = source
    graph = TopologicalSorter[str]()
    for source in sorted(sources, key=lambda s: s.name):
        unknown = set(source.after) - by_name.keys()
        if unknown:
            raise RegistryError(f"source {source.name!r} lands after unknown {sorted(unknown)}")
        graph.add(source.name, *source.after)
    order: list[str] = []
    try:
        graph.prepare()
    except CycleError as exc:
        raise RegistryError(f"the sources' `after` form a cycle: {exc.args[1]}") from None
    while graph.is_active():
        ready = sorted(graph.get_ready())
        order += ready
        graph.done(*ready)
    return tuple(by_name[name] for name in order)


def discover() -> tuple[Source, ...]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        source = getattr(importlib.import_module(f"{__name__}.{info.name}"), "SOURCE", None)
        if not isinstance(source, Source):
            raise RegistryError(f"pipelines/sources/{info.name}.py defines no SOURCE = Source(...)")
        found.append(source)
    return ordered(found)


SOURCES: tuple[Source, ...] = discover()
SOURCES_BY_NAME = {s.name: s for s in SOURCES}
# The dbt targets some source also builds on besides the warehouse ("clickhouse"):
# make run builds each beside the warehouse, make airflow parses for each.
OTHER_DBT_TARGETS: tuple[str, ...] = tuple(
    sorted({t for s in SOURCES for t in s.dbt_targets} - {"warehouse"})
)

# dbt tags whose models read several sources' models (user_activity: the app's
# sessions and reviews, the order system's orders). Their transform runs once
# every transform it reads from has built, never half-way through one of them.
COMBINED_TRANSFORMS: dict[str, tuple[str, ...]] = {"activity": ("mongo", "orders")}
