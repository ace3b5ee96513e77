"""A dbt build in a child process (make run's other targets): its summary, or one clear failure."""

from __future__ import annotations

import signal
import time

from stack.dbt_build import DbtSummary, start_dbt


def test_a_summary_crosses_the_process_boundary_unchanged() -> None:
    summary = DbtSummary(
        success=True,
        counts={"model": {"success": 3}, "test": {"pass": 5, "warn": 1}},
        failures=[],
        incremental_rows={"feed_dimension_daily": 12},
        incremental={"feed_dimension_daily", "app_metrics_daily"},
        views_built=2,
        layers={"marts": [("app_metrics_daily", "marts", "app_metrics_daily")]},
        seconds=7.5,
    )
    assert DbtSummary.from_json(summary.to_json()) == summary


def test_a_build_dbt_refuses_is_a_failed_summary(tmp_path) -> None:
    child = start_dbt(["build", "--select", "no_such_model+", "--target", "no_such_target"],
                      tmp_path / "logs")  # fmt: skip
    result = child.wait()
    assert result.success is False and result.failures, result
    assert "no_such_target" in result.failures[0]
    assert not child.out.exists()  # the summary file is removed


def test_a_child_that_dies_is_one_line_and_a_stopped_one_leaves_nothing(tmp_path) -> None:
    child = start_dbt(["build"], tmp_path / "logs")
    time.sleep(0.5)
    child.proc.send_signal(signal.SIGKILL)
    result = child.wait()
    assert result.success is False
    assert result.failures == [result.failures[0]] and "dbt did not finish" in result.failures[0]
    other = start_dbt(["build"], tmp_path / "logs")
    other.stop()
    assert other.proc.returncode is not None and not other.out.exists()
