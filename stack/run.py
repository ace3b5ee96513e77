"""``python -m stack.run``: one day of the whole pipeline on the configured servers.

Starts the embedded services (those EMBEDDED_SERVICES names), lets the app
simulator write the next logical day, lands what is new, runs ``dbt build``
and prints a summary (also saved under DATA_DIR/logs). The first run writes
DATAGEN_HISTORY_DAYS days and builds everything; every later run adds one day
and processes only what is new. Airflow runs the same steps as tasks.

The steps are here; the summary is ``stack.run_summary``'s, dbt invoked
in-process and what a build did ``stack.dbt_build``'s, and what the last
passing build covered (what scopes the next one) ``stack.dbt_state``'s.
"""

from __future__ import annotations

import datetime as dt
import sys
import time

from config import (
    ConfigError,
    DbtSettings,
    HealthSettings,
    LocalSettings,
    WarehouseSettings,
    redact,
)
from loaders.core.reconcile import reconcile_due
from loaders.core.warehouse import LoaderError, connect
from pipelines import OTHER_DBT_TARGETS
from pipelines.clock import next_days
from pipelines.day import land, simulate
from stack import run_summary as summary
from stack import services
from stack.dbt_build import (
    DbtFailed,
    DbtProcess,
    DbtSummary,
    import_dbt_beside,
    run_dbt,
    start_dbt,
)
from stack.dbt_state import (
    Tested,
    dbt_scope,
    dbt_scope_args,
    keep_unchanged_views_args,
    last_passed_build,
    record_passed_build,
    save_state,
    warehouse_now,
    without_health_args,
)
from stack.embedded_postgres import ServiceError
from stack.run_lock import RunLocked, run_lock


def _first_run(wh: WarehouseSettings) -> bool:
    with connect(wh) as conn:
        row = conn.execute("select to_regclass('loader.watermarks') is not null").fetchone()
        if not row or not row[0]:
            return True
        row = conn.execute("select count(*) from loader.watermarks").fetchone()
        return not row or row[0] == 0


def run() -> int:
    t0 = time.monotonic()
    local = LocalSettings.from_env()
    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    dbt_settings = DbtSettings.from_env()  # a bad DBT_* setting stops the run before any work
    health = HealthSettings.from_env()
    for line in services.up():
        say(f"service  {line}")
    # Read once the servers are up: the embedded PostgreSQL's password may be new.
    wh = WarehouseSettings.from_env()
    first = _first_run(wh)
    days = next_days()
    # step -> seconds, for the summary and make bench ("start": servers up, first-run check)
    steps: dict[str, float] = {"start": time.monotonic() - t0}
    t_step = time.monotonic()

    # 1. Each simulated source system writes the logical day(s).
    simulate(days, say)
    steps["datagen"], t_step = time.monotonic() - t_step, time.monotonic()

    # 2. The models some sources also build elsewhere (the events models on
    # ClickHouse, from the events in place) need nothing a load writes: each
    # other target builds in a child process from now on, beside the loads and
    # the warehouse's build, with its own dbt target dir so the warehouse's
    # manifest stays the one Airflow and `make dbt-changed` read. The day waits
    # for the longest, not the sum.
    tested = last_passed_build(wh, dbt_settings)  # None: the full check (every row, unit tests)
    full_check = tested is None
    children: dict[str, DbtProcess] = {}
    try:
        with dbt_scope(days[-1], tested):  # the children's environment
            for target in OTHER_DBT_TARGETS:
                target_path = str(dbt_settings.target_path / target)
                args = ["build", "--target", target, "--target-path", target_path]
                children[target] = start_dbt(
                    [*args, *dbt_scope_args(full_check)], local.logs_dir / f"dbt-{target}"
                )
        # 3. Land what is new (every day a daily source has not landed yet,
        # watermark-based sources once), dbt's import beside it.
        import_dbt_beside()
        landed = land(wh, days)
        steps["load"], t_step = time.monotonic() - t_step, time.monotonic()
        # Weekly (LOADER_FULL_CHECK_HOURS): every source compared with its raw tables,
        # what differs relanded before the build reads it.
        reconciled = reconcile_due()
        if reconciled:
            steps["reconcile"] = time.monotonic() - t_step

        # 4. Transform: every model on the warehouse.
        build_started = warehouse_now(wh)  # rows loaded before this are in this build
        keep_views = (
            [] if full_check else keep_unchanged_views_args(wh, dbt_settings, health.enabled)
        )
        selection = keep_views if health.enabled else without_health_args(keep_views)
        with dbt_scope(days[-1], tested):
            dbt = run_dbt(
                ["build", *dbt_scope_args(full_check), *selection], local.logs_dir / "dbt"
            )
    except BaseException:  # a load failed, or Ctrl-C: no build left running behind the run
        for child in children.values():
            child.stop()
        raise
    steps["dbt"] = dbt.seconds
    if dbt.success:
        save_state()
    elsewhere: dict[str, DbtSummary] = {}
    for target, child in children.items():
        elsewhere[target] = child.wait()
        steps[f"dbt {target}"] = elsewhere[target].seconds
    if dbt.success and all(d.success for d in elsewhere.values()):
        record_passed_build(wh, dbt_settings, Tested(build_started, days[-1]), full_check)

    t_step = time.monotonic()
    say()
    kind = "first run (full build)" if first else "incremental run"
    say(f"== summary: {kind} for logical day {days[-1]} ({len(days)} new day(s) of source data) ==")
    for line in summary.landed_lines(landed):
        say(line)
    for result in reconciled:
        say(result.line())
    for line in summary.dbt_lines(dbt, tested, bool(keep_views)):
        say(line)
    for line in summary.table_lines(wh, dbt):
        say(line)
    for target, other in elsewhere.items():
        for line in summary.dbt_lines(other, tested, False, target=target):
            say(line)
    steps["summary"], t_step = time.monotonic() - t_step, time.monotonic()
    if dbt.success:
        report_failure = _daily_report(days[-1], say)
    else:  # never a report of marts whose tests failed (it would count as delivered)
        report_failure = None
        say(f"report   {days[-1]}: not made, dbt build failed")
    steps["report"] = time.monotonic() - t_step
    # 5. Platform health: the alerts the ops models raise now (each sent once),
    # and the health line that ends the summary.
    t_step = time.monotonic()
    health_lines = _health() if health.enabled else []
    if health.enabled:
        steps["health"] = time.monotonic() - t_step
    for line in summary.footer_lines(steps, wh, local, time.monotonic() - t0):
        say(line)
    for line in health_lines:
        say(line)
    summary.save(lines, local.logs_dir)
    failed = [
        ("dbt build" + ("" if t == dbt_settings.target else f" --target {t}"), d)
        for t, d in [(dbt_settings.target, dbt), *elsewhere.items()]
        if not d.success
    ]
    if failed:
        raise DbtFailed(
            "; ".join(f"{what} failed: " + "; ".join(d.failures[:5]) for what, d in failed)
        )
    if report_failure:
        raise report_failure
    return 0


def _health() -> list[str]:
    """The health alerts not sent yet, then the health line (the summary's last)."""
    from reports import health

    try:
        lines = [sent.line() for sent in health.send()]
    except (LoaderError, ConfigError, OSError) as exc:  # the alerts retry next run
        lines = [redact(f"health alerts: FAILED {exc}")]
    return [*lines, health.health_line()]


def _run_failed(reason: str) -> None:
    """A failed make run is a health alert (once per run), when the warehouse answers."""
    from reports import health

    started = dt.datetime.now(dt.UTC)
    try:
        health.alert_now(
            "run_failed", f"{started:%Y-%m-%dT%H:%M:%S.%f}", f"make run failed: {reason}"
        )
    except (LoaderError, ConfigError, OSError) as exc:
        print(f"make run: the failure alert was not sent: {redact(str(exc))}", file=sys.stderr)


def _daily_report(day: dt.date, say) -> LoaderError | None:
    """The logical day's app report, delivered where REPORT_*/TELEGRAM_* say.

    A day the marts do not have (events not built) is a note; a delivery that
    fails (Telegram refusing) fails the run after the summary.
    """
    from reports import daily
    from reports.marts import MartMissing

    try:
        result = daily.send(day)
    except MartMissing as exc:
        say(f"report   {day}: not made ({exc})")
        return None
    except (LoaderError, ConfigError, OSError) as exc:
        say(redact(f"report   {day}: FAILED {exc}"))
        return exc if isinstance(exc, LoaderError) else LoaderError(f"the report failed: {exc}")
    done = "written to" if result.channel == "disk" else "sent to"
    if not result.sent:
        say(f"report   {day}: already delivered to {result.delivered_to}")
    else:
        say(f"report   {day}: {done} {result.delivered_to}")
    return None


def main() -> int:
    try:
        with run_lock(LocalSettings.from_env().data_dir):
            return run()
    except RunLocked as exc:  # another run is on: not a failure of the pipeline
        print(f"make run: {redact(str(exc))}", file=sys.stderr)
        return 1
    except (ServiceError, LoaderError, ConfigError, DbtFailed) as exc:
        print(f"make run: {redact(str(exc))}", file=sys.stderr)
        if not isinstance(exc, ServiceError):  # a server that is down cannot record it
            _run_failed(redact(str(exc))[:1000])
        return 1


if __name__ == "__main__":
    sys.exit(main())
