"""The scaling bench's smoke run, started in the background at the start of the session.

`tests.bench.scaling_bench` builds two small stacks end to end and times a
day in each (about four minutes, mostly dbt's fixed cost, whatever the data
size). When its test is collected, this conftest starts it at once in a
background process and moves the test to the end of the run, so the bench
overlaps the rest of the suite on the second core; the test then waits for
it and reads its output. The bench removes its stacks itself; a run cut
short gets SIGINT, so it still stops its servers.
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

SCALING_ARGS = ["--days", "1", "--scale", "2", "--datagen-scale", "0.02"]
TIMEOUT_SECONDS = 1200

_run: tuple[subprocess.Popen, Path] | None = None


def _is_scaling_smoke(item: pytest.Item) -> bool:
    return "scaling_bench_output" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    global _run
    ours = [item for item in items if _is_scaling_smoke(item)]
    if not ours or _run is not None or config.option.collectonly:
        return
    items[:] = [item for item in items if not _is_scaling_smoke(item)] + ours
    log = Path(tempfile.mkstemp(prefix="scaling-bench-", suffix=".log")[1])
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.scaling_bench", *SCALING_ARGS],
            cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    _run = (process, log)


@pytest.fixture
def scaling_bench_output() -> str:
    """The smoke run's output, once it finished; the test fails with its tail if it failed."""
    assert _run is not None, "the scaling bench was not started at collection"
    process, log = _run
    try:
        code = process.wait(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the scaling bench took over {TIMEOUT_SECONDS} s; see {log}")
    out = log.read_text(errors="replace")
    assert code == 0, out[-2000:]
    return out


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _run
    if _run is None:
        return
    (process, log), _run = _run, None
    if process.poll() is None:  # cut short: let it (and the make run it waits on) stop its servers
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log.unlink(missing_ok=True)
