"""dbt invoked in-process, and what a build did: counts by resource type, failures, new rows."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from config import DBT_PROJECT_DIR, PROFILES_DIR, redact
from config.env_file import embedded_passwords
from loaders.core.warehouse import LoaderError
from loaders.events.settings import ClickHouseSettings


class DbtFailed(RuntimeError):
    pass


@dataclass
class DbtSummary:
    success: bool
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # resource type -> status -> n
    failures: list[str] = field(default_factory=list)
    incremental_rows: dict[str, int] = field(default_factory=dict)  # model -> rows merged
    incremental: set[str] = field(default_factory=set)  # incremental models built
    views_built: int = 0
    layers: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    seconds: float = 0.0


def run_dbt(args: list[str], log_dir: Path) -> DbtSummary:
    """Invoke dbt in-process and summarise its results (counts, failures, new rows)."""
    from dbt.cli.main import dbtRunner

    # dbt's profile reads WAREHOUSE_PASSWORD itself: empty, the embedded server's own.
    embedded_passwords(os.environ)
    started = time.monotonic()
    res = dbtRunner().invoke(
        [
            *args,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(PROFILES_DIR),
            "--log-path",
            str(log_dir),
            "--quiet",
        ]
    )
    summary = DbtSummary(success=bool(res.success), seconds=time.monotonic() - started)
    land_artifacts_of(args)
    results = getattr(res.result, "results", None)
    if results is None:
        reason = res.exception or "dbt did not run (see its log)"
        summary.failures.append(str(reason).strip().splitlines()[0])
        return summary
    for r in results:
        node = r.node
        kind = str(node.resource_type).split(".")[-1].lower()
        status = str(r.status).split(".")[-1].lower()
        summary.counts.setdefault(kind, {}).setdefault(status, 0)
        summary.counts[kind][status] += 1
        if status in ("error", "fail"):
            msg = " ".join(
                line.strip() for line in (r.message or status).splitlines() if line.strip()
            )
            summary.failures.append(f"{kind} {node.name}: {msg[:400]}")
        if kind == "model" and node.config.materialized == "incremental":
            summary.incremental.add(node.name)
            rows = (r.adapter_response or {}).get("rows_affected")
            if rows is not None:
                summary.incremental_rows[node.name] = rows
        if kind == "model" and node.config.materialized == "view":
            summary.views_built += 1
        if kind == "model" and status == "success" and len(node.fqn) > 1:
            layer = summary.layers.setdefault(node.fqn[1], [])
            layer.append((node.name, node.schema, node.alias))
    return summary


def land_artifacts_of(args: list[str]) -> None:
    """The invocation's artifacts into raw_ops (the ops models' history), unless disabled.

    A warehouse that cannot take them is a warning (they are set aside for the
    next invocation): the build itself is done.
    """
    from loaders.ops.artifacts import keep_invocation

    said = keep_invocation(args)
    if said and said.startswith("warning:"):
        print(redact(said), file=sys.stderr)


def counts_line(dbt: DbtSummary) -> str:
    """``models 8 ok, tests 20 ok / 1 warn``: what a dbt build did, by resource type."""
    parts = []
    for kind_name in ("model", "snapshot", "test", "unit_test"):
        c = dbt.counts.get(kind_name, {})
        ok = c.get("success", 0) + c.get("pass", 0)
        # Warn-level tests count bad source values that staging nulled or left out.
        warn = c.get("warn", 0)
        bad = sum(v for k, v in c.items() if k not in ("success", "pass", "warn"))
        if ok or warn or bad:
            parts.append(
                f"{kind_name}s {ok} ok"
                + (f" / {warn} warn" if warn else "")
                + (f" / {bad} not ok" if bad else "")
            )
    return ", ".join(parts)


def target_tables(target: str, dbt: DbtSummary) -> list[str]:
    """Rows in the marts a build on another target made (only ClickHouse so far)."""
    if target != "clickhouse" or not dbt.layers.get("marts"):
        return []
    from loaders.events.client import open_source

    lines = [f"{'marts tables on ' + target:<46}{'rows':>9}   built this run"]
    marts = sorted(dbt.layers["marts"], key=lambda m: (m[1], m[2]))
    try:
        with open_source(ClickHouseSettings.from_env()) as ch, ch.errors("counting the marts"):
            for name, schema, table in marts:
                n = ch.client.command(f"SELECT count() FROM `{schema}`.`{table}`")
                # dbt-clickhouse reports no row counts for incremental runs.
                kind = "incremental" if name in dbt.incremental else "table"
                lines.append(f"  {schema + '.' + table:<44}{int(n):>9,}   {kind}")
    except LoaderError as exc:  # one line, secrets masked
        lines.append(f"  (cannot count its tables: {exc})")
    return lines
