"""What platform health costs `make run`'s warm day.

``python -m tests.bench.health_bench [--pairs 3]`` builds one throwaway
stack (every embedded server on free ports), lets its first ``stack.run``
write and build a day of history, then times warm days in pairs, one with
platform health and one with HEALTH_ENABLED=false, the order alternating
from pair to pair (so a machine that slows down or warms up weighs on both
alike). Health is: dbt's artifacts kept after each build, the ops views and
their tests in the warehouse build, the health alerts and the health line.

Printed figures:

- **make run warm day, with health / without**: the median of the pairs'
  ratios, and the median of their differences in seconds (target: at most
  2 s). Paired, because the machine's noise between two runs minutes apart
  is larger than what is measured;
- the parts inside the last run with health: the ops nodes' own time in
  dbt (from the kept run results) and the health step.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import psycopg

from tests.bench.marts import warehouse_conninfo
from tests.bench.scaling_bench import Stack, first_day

GOAL_SECONDS = 2.0


def ops_node_seconds(stack: Stack) -> float:
    """The ops views' and their tests' time in the last warehouse build (kept results)."""
    with psycopg.connect(warehouse_conninfo(stack.env)) as conn:
        row = conn.execute(
            """select coalesce(sum(r.execution_seconds), 0)
            from raw_ops.dbt_node_results as r
            join raw_ops.dbt_invocations as i using (invocation_id)
            join raw_ops.dbt_nodes as n
              on n.manifest_hash = i.manifest_hash and n.unique_id = r.unique_id
            where i.invocation_id = (select invocation_id from raw_ops.dbt_invocations
                                     where target <> 'clickhouse'
                                     order by started_at desc limit 1)
              and ('ops' = any(n.tags)
                   or (n.resource_type = 'test' and exists (
                       select 1 from raw_ops.dbt_nodes as m
                       where m.manifest_hash = n.manifest_hash and 'ops' = any(m.tags)
                         and m.unique_id = any(n.depends_on))))"""
        ).fetchone()
    return float(row[0])


def measure(pairs: int, datagen_scale: float, keep: bool) -> None:
    # Early enough that the last measured day is yesterday (the loaders refuse days to come).
    stack = Stack.create(1, datagen_scale, start=first_day(1 + 2 * pairs))
    try:
        seconds, _, _ = stack.make_run()
        stack.days += 1
        print(f"first run (1 day of history, full build) {seconds:.0f}s", flush=True)
        pairs_timed: list[dict[bool, float]] = []
        health_step = 0.0
        for pair in range(pairs):
            pairs_timed.append({})
            for enabled in (True, False) if pair % 2 == 0 else (False, True):
                stack.env["HEALTH_ENABLED"] = "true" if enabled else "false"
                stack.settle()
                seconds, steps, _ = stack.make_run()
                stack.days += 1
                pairs_timed[-1][enabled] = seconds
                if enabled:
                    health_step = steps.get("health", 0.0)
                label = "with health   " if enabled else "without health"
                print(f"  day {stack.days}: {label} {seconds:.1f}s", flush=True)
        stack.env["HEALTH_ENABLED"] = "true"
        ops_seconds = ops_node_seconds(stack)
    finally:
        stack.down(keep)
    ratio = statistics.median(p[True] / p[False] for p in pairs_timed)
    cost = statistics.median(p[True] - p[False] for p in pairs_timed)
    print()
    print(f"make run warm day, {pairs} pair(s): with health "
          f"{statistics.median(p[True] for p in pairs_timed):.1f}s, without "
          f"{statistics.median(p[False] for p in pairs_timed):.1f}s (medians)")  # fmt: skip
    print(f"  ratio with/without: {ratio:.3f} (median of the pairs)")
    print(f"  health's cost: {cost:+.1f}s (median of the pairs; goal <= {GOAL_SECONDS:.0f}s)")
    print(f"  inside the last run with health: ops views and tests in dbt {ops_seconds:.1f}s, "
          f"health step (alerts, health line) {health_step:.1f}s")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="health_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="warm days with and without (3)")
    parser.add_argument("--datagen-scale", type=float, default=1.0, help="DATAGEN_SCALE (1.0)")
    parser.add_argument("--keep", action="store_true", help="leave the stack and its servers up")
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    measure(args.pairs, args.datagen_scale, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
