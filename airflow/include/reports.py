"""The daily report's and the alerts' DAGs: when they run and what they wait for.

``daily_report``: one run per day, the day its partition key names. On real
systems at REPORT_TIME in REPORT_TIMEZONE (a cron timetable in that zone, so
it follows daylight saving), for the day before that local date; in the
simulation once the warehouse has built the day's events marts. A sensor
first waits, rescheduling itself, until app_metrics_daily holds that day:
the report never goes out on half-built marts, and a late transform only
delays it.

``anomaly_alerts``: runs whenever the events' slices on the alerts' dbt
target have been built, so every alert reads slices that have just been
judged: on ClickHouse by the 15-minute ``dbt_anomalies_clickhouse`` DAG, on
the warehouse by the daily transform (then a run per day).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, CronPartitionTimetable, task

from config import ReportSettings
from include.assets import transform_asset
from include.clock import DAY_FORMAT, after, simulating
from include.defaults import DEFAULT_ARGS, START_DATE
from include.tasks import one_line

REPORT_WAIT = dt.timedelta(hours=12)  # then the run fails, naming the missing day


def _report_day() -> dt.date:
    """The day the run reports on: its partition key (see ``report_schedule``).

    A manual run without one reports on the day before its local date.
    """
    from airflow.sdk import get_current_context

    from reports.daily import report_day

    context = get_current_context()
    if key := context["dag_run"].partition_key:
        return dt.date.fromisoformat(key)
    # A manual run may have no logical date: then the time it was asked to run.
    when = context.get("logical_date") or context["dag_run"].run_after
    return report_day(when, ReportSettings.from_env().timezone)


def report_schedule(settings: ReportSettings):
    """Simulated days: each day once the warehouse has built its events marts. Real
    days: at REPORT_TIME (local, so it follows daylight saving), for the day before."""
    if simulating():
        return after(transform_asset("events"))
    hour, minute = settings.report_time.split(":")
    return CronPartitionTimetable(
        f"{int(minute)} {int(hour)} * * *",
        timezone=settings.timezone,
        run_offset=-1,  # the key is the day before the run's
        key_format=DAY_FORMAT,
    )


def daily_report_dag() -> DAG:
    settings = ReportSettings.from_env()
    with DAG(
        dag_id="daily_report",
        description=(
            f"The daily app report at {settings.report_time} {settings.timezone}, "
            "for the day before, to Telegram (or REPORT_DIR)"
        ),
        schedule=report_schedule(settings),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["report", "events"],
    ) as dag:

        @task.sensor(
            task_id="marts_have_the_day",
            poke_interval=600,
            timeout=REPORT_WAIT.total_seconds(),
            mode="reschedule",
        )
        def marts_have_the_day():
            from airflow.sdk import PokeReturnValue

            from config import WarehouseSettings
            from loaders.core.warehouse import connect
            from reports.marts import MartMissing, app_metrics

            def has_day() -> bool:
                with connect(WarehouseSettings.from_env()) as conn:
                    try:
                        return day in app_metrics(conn, day, day)
                    except MartMissing:  # not built yet on a fresh deployment: wait
                        return False

            day = one_line(_report_day)
            found = one_line(has_day)
            print(f"app_metrics_daily {'has' if found else 'does not have yet'} {day}")
            return PokeReturnValue(is_done=found, xcom_value=str(day))

        @task(task_id="send_report")
        def send_report(day: str) -> str:
            from reports import daily

            result = one_line(lambda: daily.send(dt.date.fromisoformat(day)))
            print(result.line())
            return result.delivered_to

        send_report(marts_have_the_day())
    return dag


def anomaly_alerts_dag() -> DAG:
    target = ReportSettings.from_env().alerts_target
    with DAG(
        dag_id="anomaly_alerts",
        description=f"Anomaly alerts on the app metrics, after feed_anomalies is built on {target}",
        # On the warehouse only the daily transform builds the slices (a day at a time).
        schedule=(
            after(transform_asset("events"))
            if target == "warehouse"
            else [transform_asset(f"events_{target}")]
        ),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["report", "events", "alerts"],
    ) as dag:

        @task(task_id="send_alerts")
        def send_alerts() -> int:
            from reports import alerts

            sent = one_line(alerts.send)
            for alert in sent:
                print(alert.line())
            print(f"{len(sent)} alert(s) sent")
            return len(sent)

        send_alerts()
    return dag
