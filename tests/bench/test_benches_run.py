"""`make bench` keeps working: every benchmark run end to end at a tiny size.

The figures themselves are printed by `make bench`; nothing here asserts a speed.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from config import PROJECT_ROOT

pytestmark = pytest.mark.bench


def run_bench(module: str, env: dict[str, str], *args: str) -> str:
    import os

    proc = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
 env={**os.environ, **env},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_loader_bench_runs() -> None:
    out = run_bench("tests.bench.loader_bench", {"BENCH_DOCS": "3000", "BENCH_REPEATS": "1"})
    assert "ratio" in out and "from embedded MongoDB" in out


def test_sales_bench_runs() -> None:
    out = run_bench(
        "tests.bench.sales_bench", {"BENCH_SALES_DAYS": "1", "BENCH_SALES_SCALE": "0.05"}
    )
    assert "per day: fetch" in out


def test_oltp_bench_runs() -> None:
    out = run_bench("tests.bench.oltp_bench", {"BENCH_OLTP_ROWS": "5000", "BENCH_REPEATS": "1"})
    assert "COPY to COPY" in out and "change capture psql pipe" in out


def test_kafka_bench_runs() -> None:
    out = run_bench(
        "tests.bench.kafka_bench", {"BENCH_KAFKA_MESSAGES": "3000", "BENCH_REPEATS": "1"}
    )
    assert "kafka landing" in out and "ratio" in out


def test_events_bench_runs() -> None:
    out = run_bench(
        "tests.bench.events_bench", {"BENCH_EVENTS_SCALE": "0.05", "BENCH_REPEATS": "1"}
    )
    assert "events loader bench" in out and "ratio" in out


def test_events_dbt_bench_runs() -> None:
    out = run_bench(
        "tests.bench.events_dbt_bench",
        {"BENCH_EVENTS_SCALE": "0.05", "BENCH_EVENTS_DAYS": "2",
         "BENCH_EVENTS_HISTORY_SCALE": "0.05", "BENCH_REPEATS": "1"},
    )  # fmt: skip
    assert "ratio PostgreSQL/ClickHouse" in out and "ratio full/incremental" in out


@pytest.mark.timeout(2400)  # waits for its background run (tests/bench/conftest.py)
def test_scaling_bench_runs(scaling_bench_output: str) -> None:
    """A tiny stack: a day timed after 1 and after 2 days of history, full refreshes after each.

    Run in the background from the start of the session (tests/bench/conftest.py).
    """
    out = scaling_bench_output
    assert "ratio make run 2x/1x" in out and "load step" in out
    assert "warehouse dbt build at 2 days: full refresh" in out
    assert "1 days: dbt full refresh on warehouse" in out  # both sizes: the crossing estimate
    assert "ratio full/incremental" in out
    assert re.search(r"python -m reports daily [\d.]+s \(drawn and written\)", out), out
    assert "reconciliation of every source:" in out and "reconciled events.feed_actions" in out
    # the day's reads, counted in the warehouse's statistics at both sizes
    read = re.search(r"read during the day: ([\d,]+) by full scans and ([\d,]+) by index", out)
    assert read and int(read.group(1).replace(",", "")) > 0, out


def test_volume_sweep_runs(tmp_path) -> None:
    """Two tiny scales, a stack each: the table, the slopes and the chart."""
    summary = tmp_path / "summary.json"
    out = run_bench("tests.bench.volume_sweep", {"BENCH_SUMMARY": str(summary)},
                    "--scales", "0.02,0.04")  # fmt: skip
    assert re.search(r"rows landed +[\d,]+ +[\d,]+", out), out
    assert "volume sweep: load, seconds per million rows:" in out
    assert (tmp_path / "scaling.png").read_bytes()[:4] == b"\x89PNG"


def test_dag_parse_bench_runs() -> None:
    out = run_bench("tests.bench.dag_parse_bench", {"BENCH_REPEATS": "1"})
    assert re.search(r"DAG folder parse / dbt ls: [\d.]+ x \(goal <= 0.5", out), out


def test_health_bench_runs() -> None:
    """One pair of warm days, with and without platform health, on a tiny stack."""
    out = run_bench("tests.bench.health_bench", {}, "--pairs", "1", "--datagen-scale", "0.02")
    assert "ratio with/without" in out and "health's cost" in out
    assert re.search(r"ops views and tests in dbt [\d.]+s", out)
