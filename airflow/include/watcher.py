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
names the model or test. A second try of a watcher (retried, or cleared in
the UI) waits for its upstream tasks, then runs its node's dbt command on a
worker, as Cosmos's watchers do. Each run's producer state is read once a
second for all of its watchers; when the producer ends, every watcher still
waiting reads its result at once, so the run ends with its build.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import queue
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

from airflow.sdk import DAG
from airflow.triggers.base import (
    StartTriggerArgs,
    TaskFailedEvent,
    TaskSkippedEvent,
    TaskSuccessEvent,
    TriggerEvent,
)
from asgiref.sync import sync_to_async
from cosmos.listeners.dag_run_listener import EventStatus
from cosmos.operators._watcher.base import BaseConsumerSensor
from cosmos.operators._watcher.state import (
    is_dbt_node_status_failed,
    is_dbt_node_status_skipped,
    is_dbt_node_status_success,
)
from cosmos.operators._watcher.triggerer import WatcherEventReason, WatcherTrigger
from cosmos.operators.watcher import DbtProducerWatcherOperator

# How often a watcher asks for its node's result: each ask is a read through
# the API server, for every node still waiting. The first wait is
# POKE_SECONDS, each next one POKE_GROWTH times longer, up to POKE_MAX_SECONDS:
# a node that ends early is seen at once, one at the end of a long build is
# asked about ten times rather than every two seconds (with thirty nodes
# waiting, polling at a fixed 2 s kept the triggerer and the API server busier
# than the build).
POKE_SECONDS = 2.0
POKE_GROWTH = 1.5
POKE_MAX_SECONDS = 15.0
# The producer's state is read by one task per DAG run, every PRODUCER_SECONDS,
# for all of that run's watchers in this triggerer (one read a second, not one
# per watcher per poke). When the producer ends, every waiting watcher asks at
# once: its result is published by then, so a run no longer ends up to
# POKE_MAX_SECONDS after its build.
PRODUCER_SECONDS = 1.0
PRODUCER_ENDED = frozenset({"success", "failed", "skipped"})
# A watcher whose producer never reports (its worker lost, say) fails then.
WATCH_TIMEOUT = dt.timedelta(hours=24)


class _RunWatch:
    """The producer's state for one DAG run, shared by that run's watchers in this triggerer."""

    runs: ClassVar[dict[tuple[str, str], _RunWatch]] = {}

    def __init__(self, trigger: TriggererWatcherTrigger) -> None:
        self.state: str | None = None  # the producer's, once it ended
        self.ended = asyncio.Event()
        self.watchers = 0
        self.task = asyncio.get_running_loop().create_task(self._poll(trigger))

    @classmethod
    def join(cls, trigger: TriggererWatcherTrigger) -> _RunWatch:
        key = (trigger.dag_id, trigger.run_id)
        if key not in cls.runs:
            cls.runs[key] = cls(trigger)
        watch = cls.runs[key]
        watch.watchers += 1
        return watch

    def leave(self, trigger: TriggererWatcherTrigger) -> None:
        self.watchers -= 1
        if self.watchers == 0:
            self.task.cancel()
            self.runs.pop((trigger.dag_id, trigger.run_id), None)

    async def _poll(self, trigger: TriggererWatcherTrigger) -> None:
        while (state := await trigger._get_producer_task_status()) not in PRODUCER_ENDED:
            await asyncio.sleep(PRODUCER_SECONDS)
        self.state = state
        self.ended.set()

    async def wait(self, seconds: float) -> None:
        """``seconds``, or less if the producer ends meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ended.wait(), seconds)


class TriggererWatcherTrigger(WatcherTrigger):
    """Cosmos's watcher trigger, started without a worker and ending the task on success.

    The run id is not known when the DAG is parsed: it is read from the task
    instance the triggerer gives the trigger. A second try (a retry, or a
    task cleared in the UI) does not read the build's result again: once
    its upstream tasks have succeeded, it goes to a worker, where Cosmos
    runs the node's own dbt command (its fallback when the producer did not
    run the node), so cleared tasks rebuild in dbt's order.
    """

    def __init__(self, *, upstream_task_ids: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.upstream_task_ids = sorted(upstream_task_ids or [])

    @property
    def poke_interval(self) -> float:
        """The next wait: Cosmos's loop reads this once before each sleep."""
        wait = self._next_poke
        self._next_poke = min(wait * POKE_GROWTH, max(POKE_MAX_SECONDS, self._first_poke))
        return wait

    @poke_interval.setter
    def poke_interval(self, seconds: float) -> None:
        self._first_poke = self._next_poke = seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, kwargs = super().serialize()
        kwargs["poke_interval"] = self._first_poke  # not a wait the loop would then skip
        kwargs["upstream_task_ids"] = self.upstream_task_ids
        return f"{__name__}.{type(self).__name__}", kwargs

    async def _log_startup_events(self) -> None:
        """Not here: the producer's log has dbt's versions; this would add an XCom read a second."""

    async def get_xcom_val(self, key: str) -> Any | None:
        """Cosmos's read without its INFO line for every read of every waiting node."""
        return await self.get_xcom_val_af3(key)

    async def _get_producer_task_status(self) -> str | None:
        # Cosmos waits for failed, skipped or success: a producer that never
        # ran because its own upstream failed would keep the watchers waiting.
        state = await super()._get_producer_task_status()
        return "failed" if state in ("upstream_failed", "removed") else state

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Cosmos's watch of one node, the producer's state read once per run (``_RunWatch``).

        Succeeded or skipped: the task ends here. Failed, or a producer that
        ended without the node's result: the event goes to a worker, where
        Cosmos raises its message (or, for a skipped producer, runs the node's
        dbt command itself).
        """
        ti = self.task_instance
        if not self.run_id and ti is not None:
            self.run_id, self.map_index = ti.run_id, ti.map_index
        if ti is not None and (getattr(ti, "try_number", 1) or 1) > 1:
            yield await self._after_upstream()
            return
        watch = _RunWatch.join(self)
        try:
            while True:
                producer = watch.state  # read before the result: results precede its end
                status, compiled_sql = await self._parse_dbt_node_status_and_compiled_sql()
                if is_dbt_node_status_success(status):
                    yield TaskSuccessEvent()
                elif is_dbt_node_status_skipped(status):
                    yield TaskSkippedEvent()
                elif is_dbt_node_status_failed(status):
                    event = _failed(WatcherEventReason.NODE_FAILED)
                    if compiled_sql:  # shown with the failed task
                        event.payload["compiled_sql"] = compiled_sql
                    yield event
                elif producer == "failed":
                    yield _failed(WatcherEventReason.PRODUCER_FAILED)
                elif producer == "skipped":
                    yield _failed(WatcherEventReason.PRODUCER_SKIPPED)
                elif producer == "success":  # ended without running this node
                    yield TaskSuccessEvent()
                else:
                    await watch.wait(self.poke_interval)
                    continue
                return
        finally:
            watch.leave(self)

    async def _after_upstream(self) -> TriggerEvent:
        """Once every upstream task succeeded (or was skipped): the node's own dbt run."""
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        while True:
            states = await sync_to_async(RuntimeTaskInstance.get_task_states)(
                dag_id=self.dag_id, task_ids=self.upstream_task_ids, run_ids=[self.run_id]
            )
            upstream = states.get(self.run_id, {})
            if any(s in ("failed", "upstream_failed") for s in upstream.values()):
                return TaskFailedEvent()
            if all(upstream.get(t) in ("success", "skipped") for t in self.upstream_task_ids):
                # Cosmos's execute_complete runs the node's dbt command for this reason.
                return TriggerEvent(
                    {"status": EventStatus.FAILED, "reason": WatcherEventReason.PRODUCER_SKIPPED}
                )
            await asyncio.sleep(self.poke_interval)


def _failed(reason: WatcherEventReason) -> TriggerEvent:
    return TriggerEvent({"status": EventStatus.FAILED, "reason": reason})


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
                "upstream_task_ids": sorted(task.upstream_task_ids),
            },
            next_method="execute_complete",
            next_kwargs=None,
            timeout=WATCH_TIMEOUT,
        )
