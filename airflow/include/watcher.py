"""Cosmos's WATCHER mode with its watcher tasks kept off the workers.

In WATCHER mode one task (the producer) runs a single `dbt build` for the
DAG and publishes each node's result as it finishes; every model, snapshot
and model's tests keeps a task of its own that reports that result.
Cosmos runs each of those tasks on a worker, which defers it to the
triggerer, which sends it back to a worker to finish: two task processes
per node, and a chain as deep as the dbt graph, so on a 2-core machine the
watchers took four times as long as the build they watch.

Here each watcher starts in the triggerer (``start_from_trigger``) and, when
its node succeeded or was skipped by dbt, ends there too: it never touches
a worker. All of them start with the run (trigger rule ``always``, as
Cosmos already does for the first ones) instead of one dependency level at
a time; dbt's own order decides when each finishes, and the graph still
shows the lineage. A failed node, or a producer that ended without a result
for it, is sent to a worker to fail the task with Cosmos's message, which
names the model or test.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from airflow.sdk import DAG
from airflow.triggers.base import (
    StartTriggerArgs,
    TaskSkippedEvent,
    TaskSuccessEvent,
    TriggerEvent,
)
from cosmos.listeners.dag_run_listener import EventStatus
from cosmos.operators._watcher.base import BaseConsumerSensor
from cosmos.operators._watcher.triggerer import WatcherTrigger
from cosmos.operators.watcher import DbtProducerWatcherOperator

# How often a watcher asks for its node's result: each ask is two XCom reads
# through the API server, for every node still waiting.
POKE_SECONDS = 2.0


class TriggererWatcherTrigger(WatcherTrigger):
    """Cosmos's watcher trigger, started without a worker and ending the task on success.

    The run id is not known when the DAG is parsed: it is read from the task
    instance the triggerer gives the trigger.
    """

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, kwargs = super().serialize()
        return f"{__name__}.{type(self).__name__}", kwargs

    async def _log_startup_events(self) -> None:
        """Not here: the producer's log has dbt's versions; this would add an XCom read a second."""

    async def run(self) -> AsyncIterator[TriggerEvent]:
        if not self.run_id and self.task_instance is not None:
            self.run_id = self.task_instance.run_id
            self.map_index = self.task_instance.map_index
        async for event in super().run():
            status = event.payload.get("status")
            if status == EventStatus.SUCCESS:
                yield TaskSuccessEvent()
            elif status == EventStatus.SKIPPED:
                yield TaskSkippedEvent()
            else:
                # Failed, or no result: the worker raises Cosmos's message (or,
                # for a skipped producer, runs the node's dbt command itself).
                yield event
            return


PROGRESS_EVENTS = frozenset({"NodeStart", "NodeCompiling", "NodeExecuting"})
SUCCEEDED = frozenset({"success", "pass"})
# What a watcher reads only when its node failed: the node's dbt event (its
# error) and compiled SQL (shown with the failed task). A watcher that
# succeeds ends in the triggerer and reads neither.
FAILURE_DETAIL_SUFFIXES = ("_dbt_event", "_compiled_sql")


class _ResultOnly:
    """The producer's task instance, publishing only the result of a node that succeeded."""

    def __init__(self, ti: Any) -> None:
        self._ti = ti

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ti, name)

    def xcom_push(self, key: str, value: Any, **kwargs: Any) -> None:
        if not key.endswith(FAILURE_DETAIL_SUFFIXES):
            self._ti.xcom_push(key, value, **kwargs)


class QueuedProducer(DbtProducerWatcherOperator):
    """Cosmos's producer, publishing results from a thread of its own.

    Cosmos publishes each node's result (an XCom, a round trip to the API
    server, under one lock) from the dbt thread that ran the node, so dbt's
    threads wait on Airflow: the build took twice as long as alone. Here
    dbt's events go to a queue that one thread publishes from, in order,
    and the task ends once the queue is empty.
    """

    _events: queue.SimpleQueue | None = None

    def _make_parse_callable(self) -> Callable[[str, Any], None]:
        events = self._events
        if events is None:
            return super()._make_parse_callable()
        return lambda line, extra_kwargs: events.put((line, extra_kwargs))

    def run_dbt_runner(self, command: list[str], env: dict[str, str], cwd: str, **kwargs: Any):
        publish = super()._make_parse_callable()
        events: queue.SimpleQueue = queue.SimpleQueue()

        failures: list[BaseException] = []

        def publisher() -> None:
            while (item := events.get()) is not None:
                if failures:
                    continue  # drain: the task fails below
                try:
                    if (event := only_what_is_read(*item)) is not None:
                        publish(*event)
                except Exception as exc:  # re-raised once dbt is done
                    failures.append(exc)

        thread = threading.Thread(target=publisher, name="cosmos-results", daemon=True)
        thread.start()
        self._events = events
        try:
            result = super().run_dbt_runner(command, env, cwd, **kwargs)
        finally:
            self._events = None
            events.put(None)
            thread.join()
        if failures:
            # A result not published must not read as "not run" (a success):
            # the producer fails, and so does every watcher still waiting.
            raise failures[0]
        return result


def only_what_is_read(line: str, extra_kwargs: Any) -> tuple[str, Any] | None:
    """One dbt event for Cosmos's parser, less what no watcher reads (None: all of it)."""
    try:
        event = json.loads(line)
    except ValueError:
        return line, extra_kwargs  # Cosmos logs a line that is not an event
    # A node's start, compiling and executing events each overwrite its
    # event XCom, which only its end is read from (and log at debug level).
    if event.get("info", {}).get("name") in PROGRESS_EVENTS:
        return None
    status = event.get("data", {}).get("node_info", {}).get("node_status")
    if status in SUCCEEDED and extra_kwargs and extra_kwargs.get("context"):
        context = extra_kwargs["context"]
        extra_kwargs = {**extra_kwargs, "context": {**context, "ti": _ResultOnly(context["ti"])}}
    return line, extra_kwargs


def start_watchers_in_triggerer(dag: DAG) -> None:
    """Make every Cosmos watcher task of ``dag`` start, and succeed, in the triggerer."""
    for task in dag.tasks:
        if type(task) is DbtProducerWatcherOperator:
            # Cosmos picks the producer's class itself: only its behaviour changes.
            task.__class__ = QueuedProducer
        if not isinstance(task, BaseConsumerSensor):
            continue
        task.trigger_rule = "always"
        task.start_from_trigger = True
        task.start_trigger_args = StartTriggerArgs(
            trigger_cls=f"{__name__}.{TriggererWatcherTrigger.__name__}",
            trigger_kwargs={
                "model_unique_id": task.model_unique_id,
                "producer_task_id": task.producer_task_id,
                "dag_id": dag.dag_id,
                "run_id": "",
                "map_index": -1,
                "poke_interval": POKE_SECONDS,
                "is_test_sensor": task.is_test_sensor,
            },
            next_method="execute_complete",
            next_kwargs=None,
            timeout=None,
        )
