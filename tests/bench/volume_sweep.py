"""How `make run`'s day grows with the day's volume: DATAGEN_SCALE 1, 5, 10 and 20.

``python -m tests.bench.volume_sweep [--scales 1,5,10,20] [--history-days 1]``
builds one throwaway stack per scale, one after the other (the simulator
keeps one population per stack, so a scale is a stack of its own): its first
``stack.run`` writes and builds ``--history-days`` days, then the next day is
measured, step by step (``steps`` of the run's summary), with the rows every
loader landed that day (``loader.batches``) and the events among them.

Printed and recorded, per step: the slope in seconds per million rows landed
and the fixed cost (a least-squares line through every scale), and whether it
stays linear: the slope between the two largest scales against the slope
between the two smallest (1 is a straight line; above 1 the step grows faster
than the volume). Drawn as ``scaling.png`` beside the bench summary (seconds
per step against the rows landed).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.bench.scaling_bench import Stack, first_day
from tests.bench.summary import record, summary_path

ROWS_SQL = """
select coalesce(sum(rows_landed), 0),
       coalesce(sum(rows_landed) filter (where stream in ('feed_actions', 'message_actions')), 0)
from loader.batches where committed_at >= %s::timestamptz
"""


@dataclass
class Point:
    scale: float
    seconds: float
    steps: dict[str, float]
    rows: int  # landed by every loader during the measured day
    events: int  # of which feed and messenger events


def warehouse_query(stack: Stack, sql: str, *params: str) -> list:
    code = (
        "import json, sys, psycopg; from config import WarehouseSettings; "
        "c = psycopg.connect(WarehouseSettings.from_env().conninfo()); "
        "print(json.dumps(c.execute(sys.argv[1], sys.argv[2:]).fetchone(), default=str))"
    )
    _, out = stack.python("-c", code, sql, *params)
    return json.loads(out.strip().splitlines()[-1])


def measure(scale: float, history_days: int, keep: bool) -> Point:
    stack = Stack.create(history_days, scale, start=first_day(history_days))
    try:
        seconds, _, _ = stack.make_run()
        stack.days += 1
        print(f"scale {scale:g}: {history_days} day(s) of history in {seconds:.0f}s", flush=True)
        stack.settle()
        (started,) = warehouse_query(stack, "select now()")
        seconds, steps, out = stack.make_run()
        stack.days += 1
        rows, events = warehouse_query(stack, ROWS_SQL, started)
        line = next(ln for ln in out.splitlines() if ln.startswith("steps"))
        print(f"scale {scale:g}: the day in {seconds:.1f}s, {rows:,} rows landed "
              f"({events:,} events)\n  {line}", flush=True)  # fmt: skip
        return Point(scale, seconds, steps, int(rows), int(events))
    finally:
        stack.down(keep)


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares: (slope, intercept)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return slope, my - slope * mx


def curvature(xs: list[float], ys: list[float]) -> float:
    """The slope between the two largest points over the slope between the two smallest."""
    first = (ys[1] - ys[0]) / (xs[1] - xs[0]) if xs[1] != xs[0] else 0.0
    last = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2]) if xs[-1] != xs[-2] else 0.0
    return last / first if first > 0 else float("nan")


def draw(points: list[Point], steps: list[str], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p.rows / 1e6 for p in points]
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.plot(xs, [p.seconds for p in points], "o-", color="black", label="make run (whole day)")
    for step in steps:
        ax.plot(xs, [p.steps.get(step, 0.0) for p in points], "o-", label=step)
    for p, x in zip(points, xs, strict=True):
        ax.annotate(f"scale {p.scale:g}", (x, p.seconds), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize=8)  # fmt: skip
    ax.set_xlabel("rows landed in the day (millions)")
    ax.set_ylabel("seconds")
    ax.set_title("make run's day against its volume (DATAGEN_SCALE)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def report(points: list[Point]) -> None:
    points = sorted(points, key=lambda p: p.rows)
    steps = [s for s in points[0].steps if s != "start"]
    xs = [p.rows / 1e6 for p in points]
    print()
    print(f"== volume sweep: make run's day at DATAGEN_SCALE "
          f"{', '.join(f'{p.scale:g}' for p in points)} ==")  # fmt: skip
    header = "".join(f"{f'scale {p.scale:g}':>12}" for p in points)
    print(f"{'':<22}{header}")
    print(f"{'rows landed':<22}" + "".join(f"{p.rows:>12,}" for p in points))
    print(f"{'  of which events':<22}" + "".join(f"{p.events:>12,}" for p in points))
    for name in ["make run", *steps]:
        ys = [p.seconds if name == "make run" else p.steps.get(name, 0.0) for p in points]
        print(f"{name:<22}" + "".join(f"{y:>11.1f}s" for y in ys))
    print()
    for name in ["make run", *steps]:
        ys = [p.seconds if name == "make run" else p.steps.get(name, 0.0) for p in points]
        slope, fixed = fit(xs, ys)
        bend = curvature(xs, ys) if len(points) > 2 else float("nan")
        print(f"{name:<22}{slope:7.2f} s per million rows, fixed {fixed:5.1f}s, "
              f"last/first slope {bend:.2f}")  # fmt: skip
        record(f"volume sweep: {name}, seconds per million rows", slope, "s/M rows")
        if math.isfinite(bend):  # no bend where the smallest scales' slope is not positive
            record(f"volume sweep: {name}, last/first slope", bend, "x")
    chart = draw(points, steps, summary_path().with_name("scaling.png"))
    print(f"chart: {chart}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="volume_sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,5,10,20", help="DATAGEN_SCALEs (1,5,10,20)")
    parser.add_argument("--history-days", type=int, default=1, help="days before the day (1)")
    parser.add_argument("--keep", action="store_true", help="leave each stack and servers up")
    args = parser.parse_args(argv)
    scales = [float(s) for s in args.scales.split(",")]
    if len(scales) < 2 or any(s <= 0 for s in scales):
        parser.error("--scales: at least two positive scales")
    report([measure(scale, args.history_days, args.keep) for scale in scales])
    return 0


if __name__ == "__main__":
    sys.exit(main())
