"""The daily report: its numbers are the mart's, it goes out once, errors are one line."""

from __future__ import annotations

import datetime as dt
import re
import struct
import subprocess
import sys

import psycopg
import pytest

from config import PROJECT_ROOT, DbtSettings
from reports import charts, daily
from reports.marts import METRICS
from tests.reports.fixtures import CHAT, DAY, TOKEN

pytestmark = pytest.mark.e2e

COLUMN_INDEX = {c: i + 1 for i, c in enumerate(
    ["dau_feed", "dau_messenger", "dau_both", "views", "likes", "ctr", "messages_sent",
     "senders", "receivers", "sent_received_ratio"]
)}  # fmt: skip


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def expected_line(label: str, column: str, rows: dict) -> str:
    def pct(a: float, b: float) -> str:
        return f"{(a - b) / b:+.1%}"

    value = rows[DAY][COLUMN_INDEX[column]]
    before = rows[DAY - dt.timedelta(days=1)][COLUMN_INDEX[column]]
    week = rows[DAY - dt.timedelta(days=7)][COLUMN_INDEX[column]]
    shown = (
        f"{value:.2%}"
        if column == "ctr"
        else f"{value:.3f}"
        if column == "sent_received_ratio"
        else f"{value:,.0f}"
    )
    return f"  {label}: {shown}  (d/d {pct(value, before)}, w/w {pct(value, week)})"


def test_the_report_is_one_message_and_one_png_with_the_marts_numbers(
    cli, app_metrics, bot_api
) -> None:
    result = cli("daily", "--date", str(DAY))
    assert result.returncode == 0, result.stderr
    assert f"report {DAY}: delivered to Telegram chat {CHAT}" in result.stdout
    assert [r.method for r in bot_api.requests] == ["sendMessage", "sendPhoto"]
    assert all(r.path == f"/bot{TOKEN}/{r.method}" for r in bot_api.requests)

    message = bot_api.requests[0].fields()
    assert message["chat_id"] == CHAT
    text = message["text"]
    for column, label, _ in METRICS:
        assert expected_line(label, column, app_metrics) in text.splitlines(), (column, text)
    assert "Dashboard: http://localhost:8088/superset/dashboard/app-metrics/" in text
    assert "Data: quarantined in the last 24 hours: none." in text.splitlines()

    photo = bot_api.requests[1]
    assert photo.content_type.startswith("multipart/form-data")
    fields = photo.fields()
    assert fields["chat_id"] == CHAT
    filename, content_type, png = fields["photo"]
    assert content_type == "image/png" and filename.endswith(".png")
    assert png_size(png) == (1200, 1200)
    assert "7 days to 08.10.2026" in fields["caption"]
    assert TOKEN not in result.stdout + result.stderr


def test_the_chart_has_one_panel_per_metric_over_seven_days(app_metrics, warehouse) -> None:
    with psycopg.connect(warehouse) as conn:
        report = daily.build(conn, DAY)
        days = {
            d: {c: row[COLUMN_INDEX[c]] for c, _, _ in METRICS} for d, row in app_metrics.items()
        }
    figure = charts.daily_figure(DAY, days)
    titles = sorted(axes.get_title() for axes in figure.axes)
    assert len(figure.axes) == len(METRICS) == 8
    assert sum(t.startswith("Feed: ") for t in titles) == 4
    assert sum(t.startswith("Messenger: ") for t in titles) == 3
    likes = next(a for a in figure.axes if a.get_title() == "Feed: Likes")
    xs, ys = likes.lines[0].get_data()
    assert len(xs) == 7  # the day and the six before it, not the week-ago comparison day
    assert list(ys) == [app_metrics[DAY - dt.timedelta(days=6 - k)][5] for k in range(7)]
    assert png_size(report.png) == (1200, 1200)
    # Every panel reads from zero: a dip is never drawn as a fall to nothing.
    assert {axes.get_ylim()[0] for axes in figure.axes} == {0.0}


def test_a_report_is_drawn_only_when_sent(app_metrics, warehouse) -> None:
    """matplotlib is imported when a chart is drawn, and a report is drawn when delivered."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, reports.daily, reports.alerts, reports.health; "
         "print('matplotlib' in sys.modules, 'httpx' in sys.modules); import stack.run; "
         "print('matplotlib' in sys.modules)"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    # httpx (Telegram's client) neither, when the report goes to disk
    assert loaded.stdout.split() == ["False", "False", "False"]
    with psycopg.connect(warehouse) as conn:
        report = daily.build(conn, DAY)
    assert "png" not in vars(report)  # composed, not drawn
    assert png_size(report.png) == (1200, 1200)


def test_a_rerun_does_not_send_twice_unless_forced(cli, app_metrics, bot_api, warehouse) -> None:
    assert cli("daily", "--date", str(DAY)).returncode == 0
    again = cli("daily", "--date", str(DAY))
    assert again.returncode == 0
    assert "already delivered" in again.stdout and "--force" in again.stdout
    assert len(bot_api.requests) == 2
    forced = cli("daily", "--date", str(DAY), "--force")
    assert forced.returncode == 0 and "delivered to Telegram" in forced.stdout
    assert [r.method for r in bot_api.requests] == ["sendMessage", "sendPhoto"] * 2
    with psycopg.connect(warehouse) as conn:
        rows = conn.execute(
            "select report_date, channel, delivered_to from reporting.daily_reports"
        ).fetchall()
    assert rows == [(DAY, f"telegram:{CHAT}", f"Telegram chat {CHAT}")]


def test_server_errors_and_rate_limits_are_retried(cli, app_metrics, bot_api) -> None:
    bot_api.answer_next(502, {"ok": False, "description": "Bad Gateway"})
    bot_api.answer_next(
        429,
        {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
         "parameters": {"retry_after": 1}},
    )  # fmt: skip
    result = cli("daily", "--date", str(DAY))
    assert result.returncode == 0, result.stderr
    assert [r.method for r in bot_api.requests] == ["sendMessage"] * 3 + ["sendPhoto"]


def test_the_wait_a_429_asks_for_is_honoured(bot_api) -> None:
    from config import ReportSettings
    from reports.telegram import TelegramClient

    waits: list[float] = []
    bot_api.answer_next(429, {"ok": False, "parameters": {"retry_after": 7}})
    bot_api.answer_next(429, {"ok": False}, {"Retry-After": "3"})
    with TelegramClient(ReportSettings.from_env(), sleep=waits.append) as client:
        client.send_message("hello")
    assert waits == [7.0, 3.0]
    assert len(bot_api.requests) == 3


@pytest.mark.parametrize(
    ("status", "description", "hint"),
    [
        (401, "Unauthorized", "check TELEGRAM_BOT_TOKEN"),
        (400, "Bad Request: chat not found", "check TELEGRAM_CHAT_ID"),
    ],
)
def test_a_4xx_is_one_line_not_retried_and_not_recorded(
    cli, app_metrics, bot_api, warehouse, status, description, hint
) -> None:
    bot_api.answer_next(status, {"ok": False, "error_code": status, "description": description})
    result = cli("daily", "--date", str(DAY))
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert description in result.stderr and hint in result.stderr
    assert "Traceback" not in result.stderr and TOKEN not in result.stderr
    assert len(bot_api.requests) == 1  # a 4xx is not retried
    with psycopg.connect(warehouse) as conn:
        assert conn.execute("select count(*) from reporting.daily_reports").fetchone()[0] == 0
    # Fixed (the recorder now answers ok): the next run sends it.
    assert cli("daily", "--date", str(DAY)).returncode == 0
    assert len(bot_api.requests) == 3


def test_an_unreachable_api_is_one_line_without_the_token(
    app_metrics, bot_api, monkeypatch
) -> None:
    """As a real process: one line on stderr, exit 1, no traceback, no token."""
    monkeypatch.setenv("TELEGRAM_API_URL", "http://127.0.0.1:9")  # nothing listens on port 9
    # Retried (a refused connection is transient), but without the default waits.
    monkeypatch.setenv("TELEGRAM_ATTEMPTS", "2")
    monkeypatch.setenv("TELEGRAM_BACKOFF_SECONDS", "0.01")
    result = subprocess.run(
        [sys.executable, "-m", "reports", "daily", "--date", str(DAY)],
        capture_output=True, text=True, cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("reports daily: cannot reach the Telegram Bot API")
    assert len(result.stderr.strip().splitlines()) == 1
    assert TOKEN not in result.stderr and "Traceback" not in result.stderr


def test_without_a_token_the_report_is_written_to_a_dated_folder(
    cli, app_metrics, monkeypatch, local_dirs
) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    result = cli("daily", "--date", str(DAY))
    assert result.returncode == 0, result.stderr
    folder = local_dirs / "reports" / str(DAY)
    assert f"delivered to {folder}" in result.stdout
    text = (folder / "message.txt").read_text()
    assert expected_line("Likes", "likes", app_metrics) in text.splitlines()
    assert png_size((folder / "chart.png").read_bytes()) == (1200, 1200)


def test_a_day_without_data_is_a_clear_message_and_sends_nothing(cli, app_metrics, bot_api) -> None:
    result = cli("daily", "--date", "2026-10-20")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "reports daily: no app metrics for 2026-10-20 in app_metrics_daily yet (latest day "
        f"there: {DAY}); the report is made once that day's events are landed and built"
    )
    assert bot_api.requests == []


def test_missing_comparison_days_say_n_a(warehouse, app_metrics) -> None:
    with psycopg.connect(warehouse) as conn:
        conn.execute("delete from marts.app_metrics_daily where event_date < %s", (DAY,))
        text = daily.build(conn, DAY).text
    assert re.search(r"  Views: 13,500  \(d/d n/a, w/w n/a\)", text), text


def test_the_report_day_is_yesterday_in_the_report_time_zone() -> None:
    # 23:30 UTC on the 7th is already 02:30 on the 8th in Moscow: the report is for the 7th.
    late = dt.datetime(2026, 10, 7, 23, 30, tzinfo=dt.UTC)
    assert daily.report_day(late, "Europe/Moscow") == dt.date(2026, 10, 7)
    assert daily.report_day(late, "UTC") == dt.date(2026, 10, 6)


def test_a_token_echoed_by_a_wrong_server_is_masked(cli, app_metrics, bot_api) -> None:
    bot_api.answer_next(404, {"ok": False, "description": f"Cannot POST /bot{TOKEN}/sendMessage"})
    result = cli("daily", "--date", str(DAY))
    assert result.returncode == 1
    assert "Cannot POST /bot***/sendMessage" in result.stderr and TOKEN not in result.stderr


def test_an_unusable_api_url_is_one_line(cli, app_metrics, bot_api, monkeypatch) -> None:
    monkeypatch.setenv("TELEGRAM_API_URL", "http://127.0.0.1:notaport")
    result = cli("daily", "--date", str(DAY))
    assert result.returncode == 1
    assert result.stderr.startswith("reports daily: the Telegram Bot API at ")
    assert "is not a usable URL" in result.stderr and TOKEN not in result.stderr


def test_a_delivery_that_failed_half_way_sends_only_the_missing_part(
    cli, app_metrics, bot_api, warehouse
) -> None:
    """The text went out, the chart did not (the API answered 500 every time): the next
    run sends the chart alone, so the chat never gets the text twice."""
    bot_api.answer_next(200, {"ok": True, "result": {}})  # sendMessage
    for _ in range(3):  # every attempt of sendPhoto (TELEGRAM_ATTEMPTS=3)
        bot_api.answer_next(500, {"ok": False, "description": "Internal Server Error"})
    failed = cli("daily", "--date", str(DAY))
    assert failed.returncode == 1 and failed.stderr.count("\n") == 1
    assert [r.method for r in bot_api.requests] == ["sendMessage"] + ["sendPhoto"] * 3
    again = cli("daily", "--date", str(DAY))
    assert again.returncode == 0, again.stderr
    assert [r.method for r in bot_api.requests] == ["sendMessage"] + ["sendPhoto"] * 4
    third = cli("daily", "--date", str(DAY))
    assert "already delivered" in third.stdout and len(bot_api.requests) == 5


def test_the_report_says_how_many_rows_were_quarantined_and_is_still_sent(
    cli, app_metrics, bot_api, warehouse
) -> None:
    audit = DbtSettings.from_env().audit_schema
    with psycopg.connect(warehouse) as conn:
        # The quarantine as dbt's on-run-start makes it (its columns the report reads).
        conn.execute(f'create schema if not exists "{audit}"')
        conn.execute(
            f'create table "{audit}".quarantined_rows (model text, rule text, row_key text,'
            " row jsonb, quarantined_at timestamptz not null default now())"
        )
        conn.execute(
            f'insert into "{audit}".quarantined_rows (model, rule, row_key, row, quarantined_at)'
            " values ('stg_oltp__orders', 'total_amount_not_negative', '2', '{\"id\": 2}', now()),"
            # order 3 breaks two rules: one row held out
            " ('stg_oltp__orders', 'status_known', '3', '{\"id\": 3}', now()),"
            " ('stg_oltp__orders', 'total_amount_not_negative', '3', '{\"id\": 3}', now()),"
            " ('stg_kafka__new_users_events', 'loyalty_status_known', 'e', '{\"id\": 1}', now()),"
            # held out two days ago: not in the last 24 hours
            " ('stg_oltp__products', 'price_not_negative', '9', '{\"id\": 9}',"
            "  now() - interval '2 days')"
        )
    result = cli("daily", "--date", str(DAY))
    assert result.returncode == 0, result.stderr
    assert [r.method for r in bot_api.requests] == ["sendMessage", "sendPhoto"]
    assert (
        "Data: quarantined in the last 24 hours: 3 row(s) (stg_kafka__new_users_events 1,"
        f" stg_oltp__orders 2); see {audit}.quarantined_rows."
    ) in bot_api.requests[0].fields()["text"].splitlines()
