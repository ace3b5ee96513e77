"""make bench's summary: one entry per figure, replaced by name, judged against its goal."""

from __future__ import annotations

import json

from tests.bench import summary


def test_figures_merge_by_name_and_are_judged_by_direction(tmp_path, monkeypatch, capsys) -> None:
    path = tmp_path / "bench" / "summary.json"
    monkeypatch.setenv("BENCH_SUMMARY", str(path))
    summary.record("landing / baseline", 0.5, goal=0.9)
    summary.record("warm day", 18.0, "s", goal=20, direction="lower")
    summary.record("landing / baseline", 0.95, goal=0.9)  # a rerun replaces it
    summary.record("slope", 3.0, "s/M rows")
    saved = json.loads(path.read_text())["figures"]
    assert [f["name"] for f in saved] == ["warm day", "landing / baseline", "slope"]
    assert saved[1] == {"name": "landing / baseline", "value": 0.95, "unit": "ratio",
                        "goal": 0.9, "direction": "higher", "note": ""}  # fmt: skip
    figures = {f.name: f for f in summary.load()}
    assert figures["warm day"].meets() is True
    assert figures["landing / baseline"].meets() is True
    assert figures["slope"].meets() is None
    assert summary.Figure("x", 21, "s", 20, "lower").meets() is False
    assert summary.Figure("x", 0.5, goal=0.9).meets() is False
    assert "warm day: 18.0 s (goal <= 20, met)" in capsys.readouterr().out

    assert summary.main([]) == 0
    out = capsys.readouterr().out
    assert "3 figures" in out and (tmp_path / "bench" / "ratios.png").read_bytes()[:4] == b"\x89PNG"
    assert summary.main(["--markdown"]) == 0
    assert "| warm day | 18 s | <= 20 (met) |" in capsys.readouterr().out
    assert summary.main(["--reset"]) == 0 and not path.exists()


def test_a_direction_other_than_higher_or_lower_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BENCH_SUMMARY", str(tmp_path / "summary.json"))
    try:
        summary.record("x", 1.0, direction="up")
    except ValueError as exc:
        assert "direction" in str(exc)
    else:
        raise AssertionError("accepted direction 'up'")
    assert not (tmp_path / "summary.json").exists()
