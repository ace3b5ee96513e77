"""What the DAGs' tasks run: a pipeline step or a simulated day, for the run's logical day.

Every task calls the same step functions ``make run`` calls (``pipelines``),
reading the same environment (the project's variables, which `make airflow`
exports to every Airflow process).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from config import ConfigError, redact
from loaders.core.warehouse import LoaderError
from pipelines import Source, Step, StepContext


def logical_day() -> dt.date:
    """The day a run processes: its partition key (``include/clock.py``).

    A run without one (a manual run, ``dag.test``) processes its logical date,
    or the day before it was asked to run.
    """
    from airflow.sdk import get_current_context

    context = get_current_context()
    key = context["dag_run"].partition_key
    if key:
        return dt.date.fromisoformat(key)
    # A manual run may have no logical date (nor interval): the day before it was asked to run.
    if context.get("logical_date") is None and context.get("data_interval_start") is None:
        return (context["dag_run"].run_after - dt.timedelta(days=1)).date()
    return (context.get("logical_date") or context["data_interval_start"]).date()


def one_line(action: Callable[[], Any]) -> Any:
    """Run ``action``; a user-facing error becomes a one-line task failure (then a retry)."""
    try:
        return action()
    except (LoaderError, ConfigError) as exc:
        raise RuntimeError(redact(str(exc))) from None


def step_callable(step: Step, stream: str | None = None) -> Callable[..., Any]:
    """The python_callable of ``step``'s task; a sensor's pokes check once and return."""

    def run_step(upstream: Any = None) -> Any:
        ctx = StepContext(day=logical_day(), stream=stream, upstream=upstream, wait=False)
        value = one_line(lambda: step.run(ctx))
        if step.sensor:
            from airflow.sdk import PokeReturnValue

            done, result = value
            return PokeReturnValue(is_done=done, xcom_value=result)
        if isinstance(value, dict):
            for note in value.get("notes", []):
                print(f"note: {note}")
        return value

    run_step.__name__ = step.name
    return run_step


def next_day_callable(clock: Any) -> Callable[..., list[str]]:
    """The simulation's next day(s), as ``make run`` finds them; emitted on ``clock``."""

    def next_day(*, outlet_events: Any = None) -> list[str]:
        from pipelines.clock import next_days, record

        issued = one_line(next_days)
        # Issued: the clock moves now (a system whose write fails gets the day
        # with the next run, its simulator writing the days it missed first).
        one_line(lambda: record(issued))
        days = [d.isoformat() for d in issued]
        outlet_events[clock].add_partitions(days)
        print(f"the simulated app plays {', '.join(days)}")
        return days

    return next_day


def simulate_callable(source: Source, system: Any) -> Callable[..., dict[str, int]]:
    """Write the days into ``source``'s system, then emit them on its asset ``system``.

    A day already written (a retry, or ``make run`` got there first) is not
    written again, and is emitted all the same: its loads still have to run.
    """

    def simulate_day(days: list[str], *, outlet_events: Any = None) -> dict[str, int]:
        assert source.simulate is not None
        total: dict[str, int] = {}
        for day in map(dt.date.fromisoformat, days):
            counts = one_line(lambda day=day: source.simulate(day))
            if counts is None:
                print(f"{day} is already written in {source.name}")
                continue
            print(f"wrote {sum(counts.values()):,} records for {day}: {counts}")
            for name, n in counts.items():
                total[name] = total.get(name, 0) + n
        outlet_events[system].add_partitions(days)
        return total

    return simulate_day


def events_exist() -> bool:
    """Whether ClickHouse holds the app's event tables yet (a ShortCircuit's callable).

    A fresh stack has none until the simulation's first day: the 15-minute
    DAG then skips its run instead of failing on a missing source table.
    """
    from loaders.events.client import open_source
    from loaders.events.job import STREAMS
    from loaders.events.settings import ClickHouseSettings

    settings = ClickHouseSettings.from_env()

    def count() -> int:
        system = settings.model_copy(update={"database": "system"})
        with open_source(system) as ch, ch.errors("looking for the event tables"):
            return int(
                ch.client.command(
                    "SELECT count() FROM system.tables"
                    " WHERE database = {db:String} AND name IN {names:Array(String)}",
                    parameters={"db": settings.database, "names": list(STREAMS)},
                )
            )

    found = one_line(count)
    if found < len(STREAMS):
        print(f"no events in {settings.database} yet: nothing to build")
    return found == len(STREAMS)


def sources_exist() -> bool:
    """Whether every raw table with a freshness rule has landed a row yet (a ShortCircuit's
    callable).

    A fresh warehouse has none until each source's first load (the first load of
    any source creates every raw table, empty): the freshness check then skips
    its run instead of failing on a table no load has filled.
    """
    import json

    from psycopg import sql

    from config import WarehouseSettings
    from include.defaults import manifest_path
    from loaders.core.warehouse import connect

    def has_rule(source: dict) -> bool:
        rules = source.get("freshness") or {}
        return any((rules.get(r) or {}).get("count") for r in ("warn_after", "error_after"))

    sources = json.loads(manifest_path().read_text())["sources"].values()
    wanted = {f"{s['schema']}.{s['identifier']}" for s in sources if has_rule(s)}

    def missing() -> set[str]:
        with connect(WarehouseSettings.from_env()) as conn:
            rows = conn.execute(
                "select table_schema, table_name from information_schema.tables"
                " where table_schema || '.' || table_name = any(%s)",
                (sorted(wanted),),
            ).fetchall()
            filled = {
                f"{schema}.{table}"
                for schema, table in rows
                if conn.execute(
                    sql.SQL("select exists (select from {})").format(sql.Identifier(schema, table))
                ).fetchone()[0]
            }
        return wanted - filled

    absent = one_line(missing)
    if absent:
        print(f"not landed yet, nothing to check: {', '.join(sorted(absent))}")
    return not absent
