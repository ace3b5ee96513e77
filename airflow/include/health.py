"""Platform health in Airflow: every DAG's failure alert, and dbt's artifacts kept.

``task_failed`` is every task's ``on_failure_callback`` (``DEFAULT_ARGS``): a
task that failed for good (its retries spent) sends one health alert through
the report's delivery, recorded so that a callback run twice sends nothing
more. ``keep_artifacts`` is the Cosmos operators' ``callback``: after each
dbt invocation, its run results, node list and freshness results go to
raw_ops (``loaders/ops/artifacts.py``), once per invocation.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from config import ConfigError, redact
from loaders.core.warehouse import LoaderError

log = logging.getLogger(__name__)


def task_failed(context: dict[str, Any]) -> None:
    """One alert per failed task try; a callback never fails the task a second time."""
    from reports.health import alert_now

    ti = context["ti"]
    error = context.get("exception")
    reason = " ".join(str(error).split())[:500] if error else "no exception recorded"
    map_index = getattr(ti, "map_index", -1)
    task = ti.task_id + (f"[{map_index}]" if map_index is not None and map_index >= 0 else "")
    key = f"{ti.dag_id}/{task}/{ti.run_id}/try {ti.try_number}"
    text = f"Airflow task failed: {ti.dag_id}.{task} (run {ti.run_id}, try {ti.try_number})\n"
    try:
        sent = alert_now("task_failed", key, text + redact(reason))
    except (LoaderError, ConfigError, OSError) as exc:
        log.error("the failure alert was not sent: %s", redact(str(exc)))
        return
    if sent:
        log.info("%s", sent.line())


def keep_artifacts(project_dir: str, context: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Cosmos's callback: the invocation's artifacts into raw_ops (set aside if they cannot)."""
    from loaders.ops.artifacts import keep_invocation

    day = None
    if context is not None and context.get("dag_run") is not None:
        day = getattr(context["dag_run"], "partition_key", None) or None
    said = keep_invocation([], Path(project_dir) / "target", kwargs.get("target"), day)
    if said is not None:
        (log.warning if said.startswith("warning:") else log.info)("%s", redact(said))
