"""Airflow under its real scheduler in a throwaway stack: start, drive, read its runs, stop.

Used by the Airflow bench (``tests.bench.airflow_bench``) and the two-day
scheduler test (``tests/airflow_scheduler``). Every port is a free one, so it
runs beside a developer's own `make airflow`.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import psycopg

from config import PROJECT_ROOT
from tests.bench.marts import warehouse_conninfo
from tests.bench.scaling_bench import Stack
from tests.conftest import free_port

UP = "Airflow is up"


@dataclass(frozen=True)
class Run:
    dag_id: str
    run_id: str
    day: str | None  # the partition key
    state: str
    seconds: float | None


class AirflowStack:
    """``python -m stack.airflow`` in ``stack``'s environment, on free ports."""

    def __init__(self, stack: Stack, **settings: str) -> None:
        self.stack = stack
        self.stack.env.update(
            {
                "AIRFLOW_UI_PORT": str(free_port()),
                "AIRFLOW_WORKER_LOG_PORT": str(free_port()),
                "AIRFLOW_TRIGGERER_LOG_PORT": str(free_port()),
                "AIRFLOW_ADMIN_PASSWORD": "bench-only",
                **settings,
            }
        )
        self.console = stack.folder / "airflow-console.txt"
        self.process: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        # Not the caller's own Airflow settings (a test session's SQLite home, say).
        inherited = {
            k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_HOME"))
        }
        env = {k: v for k, v in {**inherited, **self.stack.env}.items() if v != ""}
        # `airflow` must be on PATH for the components' own children.
        env["PATH"] = f"{os.path.dirname(sys.executable)}:{env.get('PATH', '')}"
        return env

    def start(self, timeout: float = 300) -> float:
        """Start Airflow; the seconds until every component was healthy."""
        started = time.monotonic()
        with self.console.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "stack.airflow"], cwd=PROJECT_ROOT, env=self.env(),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        while time.monotonic() - started < timeout:
            text = self.console.read_text(errors="replace")
            if UP in text:
                return time.monotonic() - started
            if self.process.poll() is not None:
                raise RuntimeError(f"make airflow stopped:\n{text[-3000:]}")
            time.sleep(1)
        raise RuntimeError(f"Airflow not up after {timeout:.0f}s:\n{self.console.read_text()}")

    def airflow(self, *args: str) -> str:
        """Any airflow command in this Airflow's environment."""
        proc = subprocess.run(
            [sys.executable, "-m", "stack.airflow", *args], cwd=PROJECT_ROOT, env=self.env(),
            capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)}: {proc.stderr[-2000:]}")
        return proc.stdout

    def metadata(self) -> psycopg.Connection:
        return psycopg.connect(warehouse_conninfo(self.stack.env, "airflow"))

    def runs(self) -> list[Run]:
        with self.metadata() as conn:
            rows = conn.execute(
                "select dag_id, run_id, partition_key, state,"
                " extract(epoch from end_date - start_date) from dag_run order by id"
            ).fetchall()
        return [Run(d, r, k, s, float(x) if x is not None else None) for d, r, k, s, x in rows]

    def retried_or_failed(self) -> list[tuple]:
        """Task instances that needed a second try or did not succeed (skips are fine)."""
        with self.metadata() as conn:
            return conn.execute(
                "select dag_id, task_id, partition_key, try_number, ti.state"
                " from task_instance ti join dag_run using (dag_id, run_id)"
                " where try_number > 1 or ti.state in"
                " ('failed', 'upstream_failed', 'up_for_retry')"
            ).fetchall()

    def trigger(self, dag_id: str, timeout: float = 1800) -> Run:
        """Trigger ``dag_id`` by hand and wait for that run to end (in success or failure)."""
        before = {r.run_id for r in self.runs() if r.dag_id == dag_id}
        self.airflow("dags", "trigger", dag_id)

        def ours(runs: list[Run]) -> list[Run]:
            return [r for r in runs if r.dag_id == dag_id and r.run_id not in before]

        self.wait_until(
            lambda runs: any(r.state in ("success", "failed") for r in ours(runs)),
            timeout,
            f"the run of {dag_id}",
        )
        [run] = ours(self.runs())
        return run

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        with self.metadata() as conn:
            rows = conn.execute(
                "select task_id, state from task_instance where dag_id = %s and run_id = %s",
                (dag_id, run_id),
            ).fetchall()
        return {task: state for task, state in rows}

    def failure(self, run: Run, lines: int = 25) -> str:
        """A failed run's failed tasks, each with the end of its last log."""
        failed = sorted(
            t for t, s in self.task_states(run.dag_id, run.run_id).items() if s == "failed"
        )
        logs = self.stack.folder / "data" / "airflow" / "logs" / f"dag_id={run.dag_id}"
        said = [
            f"{run.dag_id} {run.run_id} failed; its failed tasks: {', '.join(failed) or 'none'}"
        ]
        for task in failed:
            found = sorted(logs.glob(f"run_id={run.run_id}/task_id={task}/*.log"))
            tail = found[-1].read_text(errors="replace").splitlines()[-lines:] if found else []
            said += [f"--- {task}", *tail]
        return "\n".join(said)

    def timeline(self, dag_id: str, run_id: str) -> list[tuple[str, str, float, float]]:
        """Each task of a run: (task, state, seconds from the run's start to its start and end)."""
        with self.metadata() as conn:
            rows = conn.execute(
                "select task_id, ti.state, extract(epoch from ti.start_date - r.start_date),"
                " extract(epoch from ti.end_date - r.start_date)"
                " from task_instance ti join dag_run r using (dag_id, run_id)"
                " where dag_id = %s and run_id = %s order by ti.end_date",
                (dag_id, run_id),
            ).fetchall()
        return [(t, s, float(a or 0), float(b or 0)) for t, s, a, b in rows]

    def wait_until(self, done, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done(self.runs()):
                return
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"Airflow stopped while waiting for {what}")
            time.sleep(3)
        pending = [r for r in self.runs() if r.state not in ("success", "failed")]
        raise TimeoutError(f"{what}: not done after {timeout:.0f}s; pending {pending}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # SIGTERM, which `make airflow` handles as Ctrl-C: SIGINT is ignored by a
        # process started from a background job of a non-interactive shell.
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def days_ago(n: int) -> str:
    return (dt.date.today() - dt.timedelta(days=n)).isoformat()
