"""Reconciliation: each source compared with its raw tables, partition by partition.

A source that can be reconciled has a ``loaders/<source>/reconcile.py`` with
``reconcile() -> list[Reconciled]`` (one per stream), found, not listed. Each
compares a count and a hash per partition (a day, a key range), computed on
each side by the servers, so what crosses the network grows with the number of
partitions, not rows; it re-lands the partitions that differ with the
source's own loader path (exactly once, as a load is), and says so.

``python -m loaders reconcile [source ...]`` runs them on demand; ``make run``
and the ``reconcile`` DAG run them when ``LOADER_FULL_CHECK_HOURS`` have passed
since the last one. Every run is recorded in ``loader.reconciliations``.

Hashes are order-independent: the sum over rows of the first 60 bits of the
MD5 of a canonical text of the row (an integer both PostgreSQL and ClickHouse
compute exactly), so a partition's hash does not depend on how it is stored.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

import psycopg
from psycopg.types.json import Jsonb

import loaders
from config import LoaderSettings, WarehouseSettings
from loaders.core.control import ensure_control_tables, full_check_due, mark_full_check
from loaders.core.warehouse import connect

STREAM = "reconcile"  # loader.full_checks: when each source was last reconciled
# A load of the stream running now: wait for it (a reconciliation is never urgent).
LOCK_WAIT_SECONDS = 600.0


def md5_60_sum_sql(text_expression: str) -> str:
    """PostgreSQL: the partition hash of rows whose canonical text is ``text_expression``."""
    return f"coalesce(sum(('x' || left(md5({text_expression}), 15))::bit(60)::bigint), 0)"


@dataclass(frozen=True)
class Partition:
    """What one side holds of a partition."""

    rows: int
    hash: int | None = None  # None: not hashed (the rows cannot be compared as text)


@dataclass(frozen=True)
class Difference:
    partition: str
    source: Partition
    raw: Partition
    action: str  # what was done: "relanded", or why not

    def as_json(self) -> dict:
        return {
            "partition": self.partition,
            "source_rows": self.source.rows,
            "raw_rows": self.raw.rows,
            "hashes_differ": self.source.hash != self.raw.hash,
            "action": self.action,
        }


@dataclass
class Reconciled:
    """One stream's reconciliation."""

    source: str
    stream: str
    checked: int = 0  # partitions compared
    differences: list[Difference] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def relanded(self) -> int:
        return sum(d.action == "relanded" for d in self.differences)

    def compare(
        self,
        partition: str,
        at_source: Partition,
        in_raw: Partition,
        reland: Callable[[], str],
    ) -> None:
        """Count the partition; if the two sides differ, run ``reland`` (returns the action)."""
        self.checked += 1
        same_hash = at_source.hash is None or in_raw.hash is None or at_source.hash == in_raw.hash
        if at_source.rows == in_raw.rows and same_hash:
            return
        self.differences.append(Difference(partition, at_source, in_raw, reland()))

    def line(self) -> str:
        """One line for the run summary."""
        head = f"reconciled {self.source}.{self.stream}: {self.checked:,} partition(s)"
        if not self.differences:
            return f"{head}, all equal ({self.seconds:.1f}s)"
        shown = ", ".join(
            f"{d.partition} ({d.source.rows:,} at the source, {d.raw.rows:,} in raw: {d.action})"
            for d in self.differences[:3]
        )
        more = f" and {len(self.differences) - 3} more" if len(self.differences) > 3 else ""
        return (
            f"{head}, {len(self.differences)} differed, {self.relanded} relanded: "
            f"{shown}{more} ({self.seconds:.1f}s)"
        )


def record(conn: psycopg.Connection, result: Reconciled) -> None:
    """Keep what a reconciliation found (loader.reconciliations)."""
    with conn.transaction():
        conn.execute(
            "insert into loader.reconciliations (source, stream, partitions, differed,"
            " relanded, differences, seconds) values (%s, %s, %s, %s, %s, %s, %s)",
            (
                result.source,
                result.stream,
                result.checked,
                len(result.differences),
                result.relanded,
                Jsonb([d.as_json() for d in result.differences]),
                result.seconds,
            ),
        )


def timed(result: Reconciled, started: float) -> Reconciled:
    result.seconds = time.monotonic() - started
    return result


def reconcilers() -> dict[str, ModuleType]:
    """Every source's ``reconcile`` module, by the source's name."""
    found = {}
    for package in pkgutil.iter_modules(loaders.__path__):
        module = f"loaders.{package.name}.reconcile"
        if package.ispkg and package.name != "core" and importlib.util.find_spec(module):
            found[package.name] = importlib.import_module(module)
    return found


def reconcile_due(sources: list[str] | None = None) -> list[Reconciled]:
    """Reconcile each source (or each of ``sources``) whose last reconciliation is older than
    ``LOADER_FULL_CHECK_HOURS``; ``make run`` and the ``reconcile`` DAG call this."""
    hours = LoaderSettings.from_env().full_check_hours
    results: list[Reconciled] = []
    for name, module in reconcilers().items():
        if sources is not None and name not in sources:
            continue
        with connect(WarehouseSettings.from_env()) as conn:
            ensure_control_tables(conn)
            if not full_check_due(conn, name, STREAM, hours):
                continue
        results += module.reconcile()
        with connect(WarehouseSettings.from_env()) as conn:
            mark_full_check(conn, name, STREAM)
    return results
