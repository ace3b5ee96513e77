"""`make bench`'s figures, one machine-readable file: ``.local/bench/summary.json``.

Each bench calls :func:`record` for every figure it measures: the figure is
printed as ``name: value unit (goal)`` at once and merged into the summary
(by name, so a bench run again replaces its own figures). ``make bench`` starts
with ``python -m tests.bench.summary --reset`` and ends with ``python -m
tests.bench.summary``, which prints every figure again with whether it meets
its goal and draws ``ratios.png`` (each figure against its goal) beside the
summary.

BENCH_SUMMARY=path writes elsewhere (the bench tier's tests do, so a test run
never clobbers the figures of the last `make bench`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from config import PROJECT_ROOT


def summary_path() -> Path:
    return Path(
        os.environ.get("BENCH_SUMMARY") or PROJECT_ROOT / ".local" / "bench" / "summary.json"
    )


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str = "ratio"  # "ratio", "s", "x", "s/M rows", ...
    goal: float | None = None
    direction: str = "higher"  # "higher" or "lower" is better; the goal is the bound
    note: str = ""

    def meets(self) -> bool | None:
        if self.goal is None:
            return None
        return self.value >= self.goal if self.direction == "higher" else self.value <= self.goal

    def goal_text(self) -> str:
        if self.goal is None:
            return "no goal"
        return f"goal {'>=' if self.direction == 'higher' else '<='} {self.goal:g}"

    def line(self) -> str:
        unit = "" if self.unit == "ratio" else f" {self.unit}"
        value = f"{self.value:.3f}" if abs(self.value) < 10 else f"{self.value:.1f}"
        verdict = {True: ", met", False: ", NOT met", None: ""}[self.meets()]
        return f"{self.name}: {value}{unit} ({self.goal_text()}{verdict})"


def load(path: Path | None = None) -> list[Figure]:
    path = path or summary_path()
    if not path.exists():
        return []
    return [Figure(**f) for f in json.loads(path.read_text())["figures"]]


def record(
    name: str,
    value: float,
    unit: str = "ratio",
    goal: float | None = None,
    direction: str = "higher",
    note: str = "",
) -> Figure:
    """Print one figure and keep it in the summary (replacing one of the same name)."""
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower', not {direction!r}")
    figure = Figure(name, round(float(value), 4), unit, goal, direction, note)
    path = summary_path()
    figures = [f for f in load(path) if f.name != name] + [figure]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"figures": [asdict(f) for f in figures]}, indent=1) + "\n")
    tmp.replace(path)
    print(figure.line(), flush=True)
    return figure


def draw_ratios(figures: list[Figure], out: Path) -> Path | None:
    """Every figure with a goal as a bar of value/goal (1 = on the goal; right of it is better)."""
    with_goal = [f for f in figures if f.goal]
    if not with_goal:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Scored so that >= 1 always means "meets the goal", whichever way is better.
    scores = [f.value / f.goal if f.direction == "higher" else f.goal / max(f.value, 1e-9)
              for f in with_goal]  # fmt: skip
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(with_goal) + 1.2))
    colors = ["#2a9d8f" if s >= 1 else "#e76f51" for s in scores]
    ax.barh([f.name for f in with_goal], scores, color=colors)
    ax.axvline(1.0, color="black", linewidth=1)
    for y, (f, s) in enumerate(zip(with_goal, scores, strict=True)):
        ax.text(s, y, f"  {f.value:.3g} ({f.goal_text()})", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("value against its goal (>= 1 meets it)")
    ax.set_xlim(0, max(max(scores) * 1.6, 1.6))
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tests.bench.summary", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--reset", action="store_true", help="start a new summary (make bench)")
    parser.add_argument("--markdown", action="store_true", help="print a table (for the docs)")
    args = parser.parse_args(argv)
    path = summary_path()
    if args.reset:
        path.unlink(missing_ok=True)
        return 0
    figures = load(path)
    if args.markdown:
        print("| figure | value | goal |\n|---|---|---|")
        for f in figures:
            value = f"{f.value:.3g}" if abs(f.value) < 100 else f"{f.value:,.0f}"
            unit = "" if f.unit in ("ratio", "x") else f" {f.unit}"
            mark = {True: " (met)", False: " (**not met**)", None: ""}[f.meets()]
            goal = "" if f.goal is None else f.goal_text().removeprefix("goal ") + mark
            print(f"| {f.name} | {value}{unit} | {goal} |")
        return 0
    print(f"\n== make bench: {len(figures)} figures ({path}) ==")
    for figure in figures:
        print(figure.line())
    chart = draw_ratios(figures, path.with_name("ratios.png"))
    if chart:
        print(f"chart of every figure against its goal: {chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
