"""dbt invoked in-process, and what a build did: counts by resource type, failures, new rows.

``start_dbt``/``DbtProcess.wait`` run the same in a child process
(``python -m stack.dbt_build``), for a build beside the in-process one: dbt
keeps global state (flags, adapters), so two builds in one process cannot
overlap.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
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

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "incremental": sorted(self.incremental)})

    @classmethod
    def from_json(cls, text: str) -> DbtSummary:
        data = json.loads(text)
        data["incremental"] = set(data["incremental"])
        data["layers"] = {k: [tuple(m) for m in v] for k, v in data["layers"].items()}
        return cls(**data)


@dataclass
class DbtProcess:
    """A dbt build running in a child process (``start_dbt``)."""

    proc: subprocess.Popen
    out: Path
    started: float

    def wait(self) -> DbtSummary:
        """Its summary once it ends; a child that died without one is a failed build."""
        _, stderr = self.proc.communicate()
        try:
            return DbtSummary.from_json(self.out.read_text())
        except (OSError, ValueError, KeyError, TypeError):
            tail = (stderr or "").strip().splitlines()[-1:] or [f"exit {self.proc.returncode}"]
            return DbtSummary(
                success=False,
                failures=[redact(f"dbt did not finish: {tail[0]}")],
                seconds=time.monotonic() - self.started,
            )
        finally:
            self.out.unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop it (the run that started it is stopping); dbt stops on SIGINT as on Ctrl-C."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.unlink(missing_ok=True)


def start_dbt(args: list[str], log_dir: Path) -> DbtProcess:
    """``run_dbt(args, log_dir)`` in a child process, started now (the environment as it is now)."""
    fd, out = tempfile.mkstemp(prefix="dbt-summary-", suffix=".json")
    os.close(fd)
    proc = subprocess.Popen(
        [sys.executable, "-m", "stack.dbt_build", "--summary", out, "--log-dir", str(log_dir),
         "--", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return DbtProcess(proc, Path(out), time.monotonic())


def import_dbt_beside() -> threading.Thread:
    """Import dbt in a thread now, so that ``run_dbt`` later finds it imported.

    dbt's import is about 1.5 s of one core; ``make run`` starts it while the
    loaders mostly wait on their servers, instead of before the build.
    """

    def load() -> None:
        import dbt.cli.main  # noqa: F401

    thread = threading.Thread(target=load, name="import-dbt", daemon=True)
    thread.start()
    return thread


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
        # dbt heads its errors with their kind alone ("Runtime Error"): the
        # line after it says what went wrong.
        said = [line.strip() for line in str(reason).splitlines() if line.strip()]
        head = said[0] if said else "dbt failed (see its log)"
        summary.failures.append(
            f"{head}: {said[1]}" if head.endswith("Error") and len(said) > 1 else head
        )
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


def main(argv: list[str] | None = None) -> int:
    """start_dbt's child: ``python -m stack.dbt_build --summary F --log-dir D -- <dbt args>``."""
    import argparse

    parser = argparse.ArgumentParser(prog="stack.dbt_build")
    parser.add_argument("--summary", type=Path, required=True)
    parser.add_argument("--log-dir", type=Path, required=True)
    parser.add_argument("dbt_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    dbt_args = args.dbt_args[1:] if args.dbt_args[:1] == ["--"] else args.dbt_args
    summary = run_dbt(dbt_args, args.log_dir)
    args.summary.write_text(summary.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
