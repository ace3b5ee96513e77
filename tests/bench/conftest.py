"""Long end-to-end runs of the bench tier, started in the background at collection.

Two runs build throwaway stacks of their own and take minutes, mostly
process start-up and dbt's fixed cost, whatever the data size:

- ``scaling_bench_output``: `tests.bench.scaling_bench` at a tiny size, a
  small stack with a day timed after one and after two days of history;
- ``airflow_days_output``: `tests.bench.airflow_days`, two simulated days
  under Airflow's real scheduler against `make run` (whose marts, when both
  run, come from the scaling bench's stack after its first two days: the
  same days, seed and size).

When a test using one of these fixtures is collected (and not deselected),
its run starts at once in the background (tests/background.py: once per test
run, whichever worker collects it first) and the test moves to the end, so
the run overlaps the rest of the tier; the test then waits for it and reads
its output. Each run removes its stacks itself; a run cut short gets SIGINT,
so it still stops its servers.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

from tests import background
from tests.bench.scaling_bench import first_day

BACKGROUND: dict[str, list[str]] = {
    "scaling_bench_output": [
        "tests.bench.scaling_bench", "--days", "1", "--scale", "2", "--datagen-scale", "0.02"
    ],
    "airflow_days_output": ["tests.bench.airflow_days", "--datagen-scale", "0.02"],
}  # fmt: skip
TIMEOUT_SECONDS = 1800
# The benches' figures go to the test run's own temporary folder, never over
# the summary of the last `make bench` (the background runs inherit this).
os.environ["BENCH_SUMMARY"] = str(Path(tempfile.gettempdir()) / "bench-summary.json")
# The scaling bench's stack runs `make run` for two days (its history and its
# 1x day) from first_day(--days * --scale), with the Airflow run's seed and size: when both
# run, the Airflow run simulates those two days, the scaling bench saves its
# marts after them, and the Airflow run compares with those instead of
# building a stack of its own for them.
_scaling = BACKGROUND["scaling_bench_output"]
_LARGE = round(
    int(_scaling[_scaling.index("--days") + 1]) * float(_scaling[_scaling.index("--scale") + 1])
)
SHARED_REFERENCE = {
    "scaling_bench_output": ["--marts-out"],
    "airflow_days_output": ["--first-day", first_day(_LARGE).isoformat(), "--reference-marts"],
}


def _background(item: pytest.Item) -> list[str]:
    return [name for name in BACKGROUND if name in getattr(item, "fixturenames", ())]


@pytest.hookimpl(trylast=True)  # after -m and -k deselected what this run leaves out
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if config.option.collectonly:
        return
    wanted = {name for item in items for name in _background(item)}
    items[:] = [i for i in items if not _background(i)] + [i for i in items if _background(i)]
    # In the run's own temporary folder (tests/clean_stop.py): removed with it.
    reference = Path(tempfile.gettempdir()) / "bench-make-run-marts.json"
    shared = wanted >= set(SHARED_REFERENCE)
    for name in sorted(wanted):
        extra = [*SHARED_REFERENCE[name], str(reference)] if shared else []
        background.start(name, [sys.executable, "-m", *BACKGROUND[name], *extra])


def _output(name: str) -> str:
    """A background run's output, once it finished; the test fails with its tail if it failed."""
    code, out, _ = background.wait(name, TIMEOUT_SECONDS)
    assert code == 0, out[-8000:]  # a failed Airflow run prints its failed tasks' logs
    return out


@pytest.fixture
def scaling_bench_output() -> str:
    return _output("scaling_bench_output")


@pytest.fixture
def airflow_days_output() -> str:
    return _output("airflow_days_output")
