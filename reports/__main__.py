"""``python -m reports``: the daily report and the anomaly alerts.

python -m reports daily                     # yesterday (REPORT_TIMEZONE), once per channel
python -m reports daily --date 2026-10-07   # that UTC day of the marts
python -m reports daily --latest            # the latest day app_metrics_daily has
python -m reports daily --force             # deliver again, even if it was delivered
python -m reports alerts                    # every flag of the last hours not alerted yet
python -m reports health                    # health alerts not sent yet, then the health line

Without TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID everything is written under
REPORT_DIR (default DATA_DIR/reports) and the command says where.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from config import ConfigError, ReportSettings, WarehouseSettings, redact
from loaders.core.warehouse import LoaderError, connect


def _daily(args: argparse.Namespace) -> int:
    from reports import daily
    from reports.marts import latest_metrics_day

    if args.latest:
        with connect(WarehouseSettings.from_env()) as conn:
            day = latest_metrics_day(conn)
        if day is None:
            raise LoaderError("app_metrics_daily has no day yet: run `make run` first")
    else:
        now = dt.datetime.now(dt.UTC)
        day = args.date or daily.report_day(now, ReportSettings.from_env().timezone)
    print(daily.send(day, force=args.force).line())
    return 0


def _alerts() -> int:
    from reports import alerts

    sent = alerts.send()
    for alert in sent:
        print(alert.line())
    if not sent:
        print("alerts: no new flagged slice")
    return 0


def _health() -> int:
    from reports import health

    for sent in health.send():
        print(sent.line())
    print(health.health_line())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="reports", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    daily = sub.add_parser("daily", help="the daily app report (text + one PNG)")
    when = daily.add_mutually_exclusive_group()
    when.add_argument("--date", type=dt.date.fromisoformat, help="the UTC day to report on")
    when.add_argument("--latest", action="store_true", help="the latest day in the mart")
    daily.add_argument("--force", action="store_true", help="send even if already delivered")
    sub.add_parser("alerts", help="alerts for newly flagged 15-minute slices")
    sub.add_parser("health", help="platform health alerts (ops models), and the health line")
    args = parser.parse_args(argv)
    commands = {"daily": lambda: _daily(args), "alerts": _alerts, "health": _health}
    try:
        return commands[args.command]()
    except (LoaderError, ConfigError) as exc:
        print(f"reports {args.command}: {redact(str(exc))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
