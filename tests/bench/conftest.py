"""Long end-to-end runs started in the background at the start of the session.

Two runs build throwaway stacks of their own and take minutes, mostly
process start-up and dbt's fixed cost, whatever the data size:

- ``scaling_bench_output``: `tests.bench.scaling_bench` at a tiny size, two
  small stacks with a day timed in each (about four minutes);
- ``airflow_days_output``: `tests.bench.airflow_days`, two simulated days
  under Airflow's real scheduler against `make run` (about ten minutes).

When a test using one of these fixtures is collected, this conftest starts
its run at once in a background process and moves the test to the end of
the session, so the run overlaps the rest of the suite on the second core;
the test then waits for it and reads its output. Each run removes its
stacks itself; a run cut short gets SIGINT, so it still stops its servers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from config import PROJECT_ROOT

BACKGROUND: dict[str, list[str]] = {
    "scaling_bench_output": [
        "tests.bench.scaling_bench", "--days", "1", "--scale", "2", "--datagen-scale", "0.02"
    ],
    "airflow_days_output": ["tests.bench.airflow_days", "--datagen-scale", "0.02"],
}  # fmt: skip
TIMEOUT_SECONDS = 1800

_runs: dict[str, tuple[subprocess.Popen, Path]] = {}


def _background(item: pytest.Item) -> list[str]:
    return [name for name in BACKGROUND if name in getattr(item, "fixturenames", ())]


@pytest.hookimpl(trylast=True)  # after -m and -k deselected what this run leaves out
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if config.option.collectonly:
        return
    wanted = {name for item in items for name in _background(item)}
    if not wanted:
        return
    items[:] = [i for i in items if not _background(i)] + [i for i in items if _background(i)]
    for name in sorted(wanted - set(_runs)):
        log = Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log")[1])
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", *BACKGROUND[name]],
                cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        _runs[name] = (process, log)


def _output(name: str) -> str:
    """A background run's output, once it finished; the test fails with its tail if it failed."""
    assert name in _runs, f"{name} was not started at collection"
    process, log = _runs[name]
    try:
        code = process.wait(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{BACKGROUND[name][0]} took over {TIMEOUT_SECONDS} s; see {log}")
    out = log.read_text(errors="replace")
    assert code == 0, out[-3000:]
    return out


@pytest.fixture
def scaling_bench_output() -> str:
    return _output("scaling_bench_output")


@pytest.fixture
def airflow_days_output() -> str:
    return _output("airflow_days_output")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    runs = list(_runs.values())
    _runs.clear()
    for process, log in runs:
        if process.poll() is None:  # cut short: let it (and what it waits on) stop its servers
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.unlink(missing_ok=True)
