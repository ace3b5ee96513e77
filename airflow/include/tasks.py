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
    """The day a run processes: a scheduled interval run's start (the day that just ended)."""
    from airflow.sdk import get_current_context

    context = get_current_context()
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


def simulate_callable(source: Source) -> Callable[[], dict[str, int]]:
    def simulate_day() -> dict[str, int]:
        assert source.simulate is not None
        day = logical_day()
        counts = one_line(lambda: source.simulate(day))
        if counts is None:
            print(f"{day} is already written (the app's clock only moves forward): nothing to do")
            return {}
        print(f"wrote {sum(counts.values()):,} records up to {day}: {counts}")
        return counts

    return simulate_day
