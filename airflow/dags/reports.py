"""Airflow: the daily app report (REPORT_TIME in REPORT_TIMEZONE) and its anomaly alerts.

Both read the marts only, and deliver to Telegram or, without a bot, to REPORT_DIR.
"""

from __future__ import annotations

from include.reports import anomaly_alerts_dag, daily_report_dag

daily_report = daily_report_dag()
anomaly_alerts = anomaly_alerts_dag()
