"""The bench tier's shared `make run` reference: used only when it is of the same run."""

from __future__ import annotations

import json
from pathlib import Path

from tests.bench.marts import run_key, save_failure, wait_for

ENV = {"DATAGEN_START_DATE": "2026-12-05", "DATAGEN_HISTORY_DAYS": "1", "DATAGEN_SCALE": "0.02"}
MARTS = {"review_mart": ["(1, 'a')"]}


def test_the_saved_marts_of_the_same_run_are_used(tmp_path: Path) -> None:
    path = tmp_path / "marts.json"
    path.write_text(json.dumps({"run": run_key(ENV), "marts": MARTS}))
    assert wait_for(path, ENV, timeout=1) == MARTS


def test_another_run_or_a_failed_one_means_building_the_reference_here(
    tmp_path: Path, capsys
) -> None:
    path = tmp_path / "marts.json"
    other = {**ENV, "DATAGEN_START_DATE": "2026-12-06"}  # the bench crossed midnight, say
    path.write_text(json.dumps({"run": run_key(other), "marts": MARTS}))
    assert wait_for(path, ENV, timeout=1) is None
    assert "another run" in capsys.readouterr().out

    failed = tmp_path / "failed.json"
    save_failure(failed, "the scaling bench stopped")
    assert wait_for(failed, ENV, timeout=1) is None
    assert "the scaling bench stopped" in capsys.readouterr().out
    save_failure(path, "too late")  # saved marts are never overwritten by a failure
    assert json.loads(path.read_text())["marts"] == MARTS

    assert wait_for(tmp_path / "never.json", ENV, timeout=0.1) is None
    assert "no reference marts" in capsys.readouterr().out
