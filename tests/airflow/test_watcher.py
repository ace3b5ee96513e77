"""The watcher-mode pieces of ``include/watcher.py``, one at a time.

The success path runs for real under the scheduler (tests/bench/
test_airflow_scheduler.py: every transform in watcher mode, two days, no
retry). Here the parts a passing build never reaches: what a trigger does
with a failed or skipped node, and which results the producer publishes.
Cosmos's reads of the producer's XComs and state are replaced by scripted
answers (they need a triggerer talking to an API server), and the producer's
task instance by one that records its pushes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from types import SimpleNamespace

import pytest
from airflow.triggers.base import TaskFailedEvent, TaskSkippedEvent, TaskSuccessEvent, TriggerEvent
from cosmos.operators._watcher.triggerer import WatcherTrigger

from include.watcher import QueuedProducer, TriggererWatcherTrigger


def started_trigger(try_number: int, **kwargs) -> TriggererWatcherTrigger:
    """The trigger as the triggerer starts it: with its task instance (the fields read here)."""
    trigger = TriggererWatcherTrigger(
        model_unique_id="model.store_analytics.review_mart",
        producer_task_id="dbt_producer_watcher",
        dag_id="dbt_transform_mongo",
        run_id="",
        map_index=-1,
        **kwargs,
    )
    trigger._task_instance = SimpleNamespace(
        run_id="manual__2026-10-09", map_index=-1, try_number=try_number
    )
    return trigger


def events_of(trigger: TriggererWatcherTrigger) -> list:
    async def collect() -> list:
        return [event async for event in trigger.run()]

    return asyncio.run(collect())


def scripted(monkeypatch, nodes: list, producers: list, reads: list[str]) -> None:
    """Cosmos's reads of a node's result and of the producer's state, scripted (each list's
    last value repeats); each read is recorded in ``reads``."""
    from include import watcher

    node_results, producer_states = iter(nodes), iter(producers)
    last: dict[str, object] = {}

    async def status(self):
        reads.append("node")
        last["node"] = next(node_results, last.get("node"))
        return last["node"], None

    async def producer(self):
        reads.append("producer")
        last["producer"] = next(producer_states, last.get("producer"))
        return last["producer"]

    monkeypatch.setattr(WatcherTrigger, "_parse_dbt_node_status_and_compiled_sql", status)
    monkeypatch.setattr(WatcherTrigger, "_get_producer_task_status", producer)
    monkeypatch.setattr(watcher, "PRODUCER_SECONDS", 0.001)


def watch(monkeypatch, nodes: list, producers: list) -> tuple[list, list[str]]:
    """A watcher over scripted node results and producer states: its events, and its reads."""
    reads: list[str] = []
    scripted(monkeypatch, nodes, producers, reads)
    return events_of(started_trigger(try_number=1, poke_interval=0.001)), reads


def test_a_node_that_succeeded_or_was_skipped_ends_in_the_triggerer(monkeypatch) -> None:
    [event], _ = watch(monkeypatch, [None, None, "success"], ["running"])
    assert isinstance(event, TaskSuccessEvent)
    [event], _ = watch(monkeypatch, ["skipped"], ["running"])
    assert isinstance(event, TaskSkippedEvent)


@pytest.mark.parametrize(
    ("node", "producer", "reason"),
    [("failed", "running", "node_failed"), (None, "failed", "producer_failed"),
     (None, "upstream_failed", "producer_failed"), (None, "skipped", "producer_skipped")],
)  # fmt: skip
def test_a_failed_node_goes_to_a_worker_to_fail_with_cosmos_message(
    monkeypatch, node, producer, reason
) -> None:
    [event], _ = watch(monkeypatch, [node], ["running", producer])
    assert type(event) is TriggerEvent
    assert event.payload == {"status": "failed", "reason": reason}


def test_a_producer_that_ended_without_the_nodes_result_means_not_run(monkeypatch) -> None:
    [event], reads = watch(monkeypatch, [None], ["running", "running", "success"])
    assert isinstance(event, TaskSuccessEvent)
    # The node's result was read again after the producer's end was seen.
    last_producer_read = len(reads) - 1 - reads[::-1].index("producer")
    assert "node" in reads[last_producer_read:]


def test_the_trigger_serializes_as_itself() -> None:
    path, kwargs = TriggererWatcherTrigger(
        model_unique_id="m", producer_task_id="p", dag_id="d", run_id="", map_index=-1
    ).serialize()
    assert path == "include.watcher.TriggererWatcherTrigger"
    assert kwargs["model_unique_id"] == "m"


def test_a_waiting_watcher_asks_less_often_as_the_build_goes_on(monkeypatch) -> None:
    """Growing waits between asks, capped, while the producer runs."""
    from include import watcher

    waits: list[float] = []

    async def wait(self, seconds: float) -> None:
        waits.append(seconds)

    scripted(monkeypatch, [None] * 11 + ["success"], ["running"], [])  # ends at the 12th ask
    monkeypatch.setattr(watcher._RunWatch, "wait", wait)
    trigger = started_trigger(try_number=1, poke_interval=watcher.POKE_SECONDS)
    [event] = events_of(trigger)
    assert isinstance(event, TaskSuccessEvent)
    assert len(waits) == 11 and waits[0] == watcher.POKE_SECONDS
    assert all(
        b == min(a * watcher.POKE_GROWTH, watcher.POKE_MAX_SECONDS)
        for a, b in itertools.pairwise(waits)
    )
    assert waits[-1] == watcher.POKE_MAX_SECONDS
    # Serialized (the triggerer's copy of the trigger) with its first wait, not a later one.
    assert trigger.serialize()[1]["poke_interval"] == watcher.POKE_SECONDS


def test_one_producer_read_per_run_and_its_end_wakes_every_watcher(monkeypatch) -> None:
    """A run's watchers share one read of the producer's state; when it ends they all ask at
    once, not after their (long) waits: the run ends with its build."""
    from include import watcher

    reads: list[str] = []
    scripted(monkeypatch, [None], ["running"] * 5 + ["success"], reads)
    monkeypatch.setattr(watcher, "PRODUCER_SECONDS", 0.01)

    async def run_all() -> list:
        async def one(model: str) -> list:
            trigger = started_trigger(try_number=1, poke_interval=3600.0)
            trigger.model_unique_id = model
            return [event async for event in trigger.run()]

        # Without the wake-up these would wait an hour: the timeout fails the test first.
        return await asyncio.wait_for(asyncio.gather(*(one(f"m{k}") for k in range(5))), 30)

    results = asyncio.run(run_all())
    assert all(len(r) == 1 and isinstance(r[0], TaskSuccessEvent) for r in results)
    assert reads.count("producer") == 6  # one poller for the five watchers
    assert reads.count("node") == 10  # each: one ask at the start, one once the producer ended
    assert watcher._RunWatch.runs == {}  # the run's watch is gone with its last watcher


def test_reading_a_result_logs_nothing(monkeypatch, caplog) -> None:
    """Cosmos logs each XCom read at INFO: two lines a poke for every waiting node."""

    async def read(self, key: str):
        return {"status": "success"}

    monkeypatch.setattr(WatcherTrigger, "get_xcom_val_af3", read)
    trigger = started_trigger(try_number=1)
    with caplog.at_level("DEBUG"):
        assert asyncio.run(trigger.get_xcom_val("model__p__m_status")) == {"status": "success"}
    assert not [r for r in caplog.records if r.name.startswith(("cosmos", "include"))]


def test_the_producer_publishes_in_order_and_only_what_watchers_read(monkeypatch) -> None:
    pushed: list[tuple[str, object]] = []
    threads: set[str] = set()

    def xcom_push(key: str, value: object, **_) -> None:
        threads.add(threading.current_thread().name)
        pushed.append((key, value))

    context = {"ti": SimpleNamespace(xcom_push=xcom_push)}

    def event(name: str, status: str | None = None) -> str:
        node = {"unique_id": "model.p.m", "node_status": status} if status else {}
        return json.dumps({"info": {"name": name}, "data": {"node_info": node}})

    def cosmos_parse(self):
        # Cosmos's parser, as far as this matters: each event's XComs.
        def parse(line: str, extra_kwargs: dict) -> None:
            data = json.loads(line)
            status = data["data"]["node_info"].get("node_status")
            ti = extra_kwargs["context"]["ti"]
            ti.xcom_push(key="model__p__m_dbt_event", value=data["info"]["name"])
            if status:
                ti.xcom_push(key="model__p__m_status", value=status)
                ti.xcom_push(key="model__p__m_compiled_sql", value="select 1")

        return parse

    def dbt_build(self, command, env, cwd, **kwargs):
        # dbt calling its callback from its threads, as Cosmos wires it.
        parse = self._make_parse_callable()
        for line in (event("NodeStart"), event("NodeExecuting"), event("NodeFinished", "success"),
                     event("NodeFinished", "error")):  # fmt: skip
            parse(line, {"context": context})
        return "result"

    from cosmos.operators.watcher import DbtProducerWatcherOperator

    monkeypatch.setattr(DbtProducerWatcherOperator, "_make_parse_callable", cosmos_parse)
    monkeypatch.setattr(DbtProducerWatcherOperator, "run_dbt_runner", dbt_build)
    from include.dbt_profile import profile_config

    producer = QueuedProducer(project_dir="/tmp", profile_config=profile_config())
    assert producer.run_dbt_runner(["build"], {}, "/tmp") == "result"
    assert threads == {"cosmos-results"}  # never from dbt's own threads
    assert pushed == [
        # The success: its result only (no progress events, no event or SQL).
        ("model__p__m_status", "success"),
        # The failure: everything a failed watcher shows.
        ("model__p__m_dbt_event", "NodeFinished"),
        ("model__p__m_status", "error"),
        ("model__p__m_compiled_sql", "select 1"),
    ]


def test_a_result_that_cannot_be_published_fails_the_producer(monkeypatch) -> None:
    """Not a silent "not run" (which its watcher would read as a success)."""
    from cosmos.operators.watcher import DbtProducerWatcherOperator

    from include.dbt_profile import profile_config

    def cosmos_parse(self):
        def parse(line: str, extra_kwargs: dict) -> None:
            raise ConnectionError("the API server is gone")

        return parse

    def dbt_build(self, command, env, cwd, **kwargs):
        line = json.dumps({"info": {"name": "NodeFinished"}, "data": {"node_info": {}}})
        self._make_parse_callable()(line, {"context": {"ti": None}})
        return "result"

    monkeypatch.setattr(DbtProducerWatcherOperator, "_make_parse_callable", cosmos_parse)
    monkeypatch.setattr(DbtProducerWatcherOperator, "run_dbt_runner", dbt_build)
    producer = QueuedProducer(project_dir="/tmp", profile_config=profile_config())
    with pytest.raises(ConnectionError, match="API server is gone"):
        producer.run_dbt_runner(["build"], {}, "/tmp")


def second_try(monkeypatch, upstream_states: list[dict[str, str]]) -> list:
    """What a watcher's second try yields while its upstream goes through ``upstream_states``."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    states = iter(upstream_states)
    monkeypatch.setattr(
        RuntimeTaskInstance,
        "get_task_states",
        staticmethod(lambda dag_id, task_ids, run_ids: {run_ids[0]: next(states)}),
    )
    trigger = started_trigger(
        try_number=2, poke_interval=0.01, upstream_task_ids=["stg_mongo__moderation_queue.test"]
    )
    return events_of(trigger)


def test_a_cleared_watcher_runs_its_node_once_its_upstream_succeeded(monkeypatch) -> None:
    up = "stg_mongo__moderation_queue.test"
    [event] = second_try(monkeypatch, [{up: "running"}, {}, {up: "success"}])
    # To a worker, where Cosmos runs the node's own dbt command.
    assert type(event) is TriggerEvent
    assert event.payload == {"status": "failed", "reason": "producer_skipped"}
    [event] = second_try(monkeypatch, [{up: "running"}, {up: "upstream_failed"}])
    assert isinstance(event, TaskFailedEvent)


def test_a_producer_that_never_ran_ends_the_wait(monkeypatch) -> None:
    """Cosmos waits only for failed, skipped or success; upstream_failed would hang the run."""

    async def producer_state(self):
        return "upstream_failed"

    monkeypatch.setattr(WatcherTrigger, "_get_producer_task_status", producer_state)
    trigger = TriggererWatcherTrigger(
        model_unique_id="m", producer_task_id="p", dag_id="d", run_id="r", map_index=-1
    )
    assert asyncio.run(trigger._get_producer_task_status()) == "failed"


def test_the_cosmos_internals_the_watchers_rely_on() -> None:
    """include/watcher.py is the one module that uses Cosmos's private _watcher API;
    this pins what it relies on, so a Cosmos upgrade that moves it fails here, by name."""
    import inspect

    from cosmos.operators._watcher.base import BaseConsumerSensor
    from cosmos.operators._watcher.triggerer import WatcherEventReason
    from cosmos.operators.watcher import DbtProducerWatcherOperator

    from include import watcher

    trigger_kwargs = set(inspect.signature(WatcherTrigger.__init__).parameters)
    assert {"model_unique_id", "producer_task_id", "dag_id", "run_id", "map_index",
            "poke_interval", "is_test_sensor"} <= trigger_kwargs  # fmt: skip
    for method in ("run", "serialize", "get_xcom_val", "_get_producer_task_status",
                   "_log_startup_events", "_parse_dbt_node_status_and_compiled_sql"):  # fmt: skip
        assert callable(getattr(WatcherTrigger, method, None)), method
    assert WatcherEventReason.PRODUCER_SKIPPED
    for method in ("_make_parse_callable", "run_dbt_runner"):
        assert callable(getattr(DbtProducerWatcherOperator, method, None)), method
    assert {"execute_complete", "poke"} <= set(dir(BaseConsumerSensor))
    consumer_args = set(inspect.signature(BaseConsumerSensor.__init__).parameters)
    assert {"producer_task_id"} <= consumer_args or "kwargs" in consumer_args
    # Nothing else in the project imports Cosmos's private modules.
    from config import PROJECT_ROOT

    users = {
        path.relative_to(PROJECT_ROOT).as_posix()
        for folder in ("airflow", "stack", "pipelines", "loaders", "reports")
        for path in (PROJECT_ROOT / folder).rglob("*.py")
        if "cosmos.operators._" in path.read_text()
    }
    assert users == {"airflow/include/watcher.py"}
    assert watcher.QueuedProducer.__mro__[1] is DbtProducerWatcherOperator
