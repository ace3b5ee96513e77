"""The daily report's and the alerts' DAGs: when they run and what they wait for.

``daily_report``: at REPORT_TIME in REPORT_TIMEZONE (a cron timetable in that
zone, so it follows daylight saving), for the day before that local date. A
sensor first waits, rescheduling itself, until app_metrics_daily holds that
day: the report never goes out on half-built marts, and a late transform
only delays it.

``anomaly_alerts``: runs whenever the events' models on the alerts' dbt
target have been built (the 15-minute ``dbt_anomalies_clickhouse`` DAG and
the daily transform both emit that asset), so every alert reads slices that
have just been judged.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import DAG, CronTriggerTimetable, task

from config import ReportSettings
from include.assets import transform_asset
from include.defaults import DEFAULT_ARGS, SIMULATION_START
from include.tasks import one_line

REPORT_WAIT = dt.timedelta(hours=12)  # then the run fails, naming the missing day


def _report_day() -> dt.date:
    """The day the run reports on: the day before its trigger time's local date."""
    from airflow.sdk import get_current_context

    from reports.daily import report_day

    context = get_current_context()
    # A manual run may have no logical date: then the time it was asked to run.
    when = context.get("logical_date") or context["dag_run"].run_after
    return report_day(when, ReportSettings.from_env().timezone)


def daily_report_dag() -> DAG:
    settings = ReportSettings.from_env()
    hour, minute = settings.report_time.split(":")
    with DAG(
        dag_id="daily_report",
        description=(
            f"Seed 003's daily app report at {settings.report_time} {settings.timezone}, "
            "for the day before, to Telegram (or REPORT_DIR)"
        ),
        schedule=CronTriggerTimetable(
            f"{int(minute)} {int(hour)} * * *", timezone=settings.timezone
        ),
        start_date=pendulum.instance(SIMULATION_START),
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
    built = transform_asset("events" if target == "warehouse" else f"events_{target}")
    with DAG(
        dag_id="anomaly_alerts",
        description=f"Seed 003's anomaly alerts, after feed_anomalies is built on {target}",
        schedule=[built],
        start_date=pendulum.instance(SIMULATION_START),
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
