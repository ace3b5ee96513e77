"""Anomaly alerts: each flagged slice once, grouped by slice, with the band and a chart."""

from __future__ import annotations

import datetime as dt

import clickhouse_connect
import psycopg
import pytest

from reports import alerts
from tests.reports.fixtures import CHAT, TOKEN
from tests.reports.test_daily import png_size

pytestmark = pytest.mark.e2e

T0 = dt.datetime(2026, 10, 8, 12, 0)
METRICS = ("users_feed", "views", "likes", "ctr", "users_messenger", "messages_sent")


def slices(n: int, flagged: dict[tuple[int, str], float]) -> list[tuple]:
    """``n`` slices from T0 of every metric: value 100 in a band 80..120, except ``flagged``."""
    rows = []
    for k in range(n):
        start = T0 + dt.timedelta(minutes=15 * k)
        for metric in METRICS:
            value = flagged.get((k, metric), 100.0)
            rows.append((start.date(), start, metric, value, 80.0, 120.0, not 80 <= value <= 120))
    return rows


@pytest.fixture
def pg_anomalies(warehouse: str, local_dirs, monkeypatch):
    """``marts.feed_anomalies`` on the warehouse, alerts reading it; returns an insert function."""
    monkeypatch.setenv("ALERTS_DBT_TARGET", "warehouse")
    with psycopg.connect(warehouse) as conn:
        conn.execute(
            "create schema marts; create table marts.feed_anomalies (event_date date,"
            " slice_start timestamp, metric text, value double precision,"
            " lower_bound double precision, upper_bound double precision, is_anomaly boolean)"
        )

    def insert(rows: list[tuple]) -> None:
        with psycopg.connect(warehouse) as conn, conn.cursor() as cur:
            cur.executemany(
                "insert into marts.feed_anomalies values (%s, %s, %s, %s, %s, %s, %s)", rows
            )

    return insert


def test_each_flagged_slice_is_one_message_and_one_chart_and_never_sent_twice(
    cli, pg_anomalies, bot_api, warehouse
) -> None:
    # Slice 20: likes and ctr below the band; slice 30: messages above it.
    pg_anomalies(slices(32, {(20, "likes"): 40.0, (20, "ctr"): 60.0, (30, "messages_sent"): 150.0}))
    result = cli("alerts")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"alert 2026-10-08 17:00 UTC: ctr, likes -> Telegram chat {CHAT}",
        f"alert 2026-10-08 19:30 UTC: messages_sent -> Telegram chat {CHAT}",
    ]
    assert [r.method for r in bot_api.requests] == ["sendMessage", "sendPhoto"] * 2
    first = bot_api.requests[0].fields()["text"]
    assert first.splitlines()[0] == (
        "Anomaly in the 15-minute slice 2026-10-08 17:00 UTC (20:00 Europe/Moscow)"
    )
    assert "- likes: 40, expected 80 .. 120 (below the band by 40, -50.0%)" in first
    assert "- CTR: 6000.00%, expected 8000.00% .. 12000.00%" in first  # ctr shown as a share
    assert "Dashboard: http://localhost:8088/superset/dashboard/app-metrics/" in first
    second = bot_api.requests[2].fields()["text"]
    assert "- messages sent: 150, expected 80 .. 120 (above the band by 30, +25.0%)" in second
    _, kind, png = bot_api.requests[1].fields()["photo"]
    assert kind == "image/png" and png_size(png) == (1000, 640)  # two panels: likes, ctr
    assert png_size(bot_api.requests[3].fields()["photo"][2]) == (1000, 320)

    # Again: nothing new. Then a new flag in a later slice: only that one goes out.
    assert cli("alerts").stdout.strip() == "alerts: no new flagged slice"
    assert len(bot_api.requests) == 4
    later = T0 + dt.timedelta(minutes=15 * 32)
    pg_anomalies([(later.date(), later, "views", 5.0, 80.0, 120.0, True)])
    assert (
        cli("alerts").stdout.strip() == f"alert 2026-10-08 20:00 UTC: views -> Telegram chat {CHAT}"
    )
    assert len(bot_api.requests) == 6
    with psycopg.connect(warehouse) as conn:
        recorded = conn.execute(
            "select slice_start, metric, value, lower_bound, upper_bound, delivered_to"
            " from reporting.anomaly_alerts order by slice_start, metric"
        ).fetchall()
    assert [(r[0], r[1]) for r in recorded] == [
        (T0 + dt.timedelta(minutes=300), "ctr"),
        (T0 + dt.timedelta(minutes=300), "likes"),
        (T0 + dt.timedelta(minutes=450), "messages_sent"),
        (T0 + dt.timedelta(minutes=480), "views"),
    ]
    assert recorded[1][2:] == (40.0, 80.0, 120.0, f"Telegram chat {CHAT}")
    assert all(TOKEN not in r.path.replace(f"/bot{TOKEN}/", "/") for r in bot_api.requests)


def test_a_failed_send_records_nothing_and_the_next_run_sends_it(
    cli, pg_anomalies, bot_api
) -> None:
    pg_anomalies(slices(4, {(2, "views"): 300.0}))
    bot_api.answer_next(403, {"ok": False, "description": "Forbidden: bot was kicked"})
    failed = cli("alerts")
    assert failed.returncode == 1
    assert failed.stderr.startswith("reports alerts: the Telegram Bot API at ")
    assert "Forbidden: bot was kicked" in failed.stderr and TOKEN not in failed.stderr
    again = cli("alerts")
    assert again.returncode == 0 and "views" in again.stdout
    assert [r.method for r in bot_api.requests] == ["sendMessage", "sendMessage", "sendPhoto"]


def test_flags_older_than_the_max_age_are_not_alerted(
    cli, pg_anomalies, bot_api, monkeypatch
) -> None:
    monkeypatch.setenv("ALERT_MAX_AGE_HOURS", "2")
    # 20 slices = 5 hours; slice 1 is 4h45 before the latest, slice 15 is 1h15 before.
    pg_anomalies(slices(20, {(1, "views"): 300.0, (15, "likes"): 0.0}))
    result = cli("alerts")
    assert result.stdout.splitlines() == [
        f"alert 2026-10-08 15:45 UTC: likes -> Telegram chat {CHAT}"
    ]


def test_without_a_token_alerts_are_written_to_disk(
    cli, pg_anomalies, monkeypatch, local_dirs
) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    pg_anomalies(slices(4, {(3, "users_feed"): 10.0}))
    result = cli("alerts")
    folder = local_dirs / "reports" / "alerts" / "2026-10-08T1245-users_feed"
    assert result.stdout.strip() == f"alert 2026-10-08 12:45 UTC: users_feed -> {folder}"
    assert "feed users: 10, expected 80 .. 120" in (folder / "message.txt").read_text()
    assert png_size((folder / "chart.png").read_bytes()) == (1000, 320)


def test_alerts_read_the_clickhouse_marts(
    cli, clickhouse_db, warehouse, bot_api, local_dirs
) -> None:
    admin = clickhouse_connect.get_client(host=clickhouse_db.host, port=clickhouse_db.port)
    # The events database (the loader's) exists on a real server; the marts beside it.
    admin.command(f"CREATE DATABASE IF NOT EXISTS `{clickhouse_db.database}`")
    admin.command("CREATE DATABASE IF NOT EXISTS marts")
    admin.command(
        "CREATE TABLE marts.feed_anomalies (event_date Date, slice_start DateTime('UTC'),"
        " metric String, value Nullable(Float64), lower_bound Nullable(Float64),"
        " upper_bound Nullable(Float64), is_anomaly Bool) ENGINE = MergeTree ORDER BY slice_start"
    )
    admin.insert(
        "marts.feed_anomalies",
        slices(8, {(5, "messages_sent"): 500.0}),
        column_names=["event_date", "slice_start", "metric", "value", "lower_bound",
                      "upper_bound", "is_anomaly"],
    )  # fmt: skip
    result = cli("alerts")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"alert 2026-10-08 13:15 UTC: messages_sent -> Telegram chat {CHAT}"
    )
    assert (
        "messages sent: 500, expected 80 .. 120 (above the band by 380"
        in (bot_api.requests[0].fields()["text"])
    )
    assert cli("alerts").stdout.strip() == "alerts: no new flagged slice"
    admin.close()


def test_deviation_against_the_crossed_bound() -> None:
    from reports.marts import Flag

    below = Flag(T0, "views", 50.0, 100.0, 200.0, True)
    above = Flag(T0, "views", 260.0, 100.0, 200.0, True)
    assert alerts.deviation(below) == "below the band by 50, -50.0%"
    assert alerts.deviation(above) == "above the band by 60, +30.0%"
    assert alerts.deviation(Flag(T0, "views", 5.0, None, None, False)) == "no band"


def test_odd_rows_in_the_mart_still_alert_without_breaking_the_others(
    cli, pg_anomalies, bot_api
) -> None:
    """A metric this code does not know, a null value, NaN bounds: each slice still goes out."""
    pg_anomalies(slices(4, {(1, "views"): 300.0}))
    start = T0 + dt.timedelta(minutes=30)
    pg_anomalies([
        (start.date(), start, "shares", 7.0, 1.0, 2.0, True),
        (start.date(), start, "likes", None, 80.0, 120.0, True),
        (start.date(), start, "ctr", 0.5, float("nan"), float("nan"), True),
    ])  # fmt: skip
    result = cli("alerts")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"alert 2026-10-08 12:15 UTC: views -> Telegram chat {CHAT}",
        f"alert 2026-10-08 12:30 UTC: ctr, likes, shares -> Telegram chat {CHAT}",
    ]
    text = bot_api.requests[2].fields()["text"]
    assert "- shares: 7, expected 1 .. 2 (above the band by 5, +250.0%)" in text
    assert "- likes: n/a, expected 80 .. 120 (no band)" in text
    assert "- CTR: 50.00%, expected n/a .. n/a (no band)" in text


def test_a_warehouse_session_in_another_time_zone_reads_the_same_utc_slices(
    cli, warehouse, bot_api, local_dirs, monkeypatch
) -> None:
    """dbt builds slice_start as timestamptz on PostgreSQL: UTC either way."""
    monkeypatch.setenv("ALERTS_DBT_TARGET", "warehouse")
    with psycopg.connect(warehouse, autocommit=True) as conn:
        name = conn.info.dbname
        conn.execute(f"alter database \"{name}\" set timezone = 'Asia/Tokyo'")
    with psycopg.connect(warehouse) as conn, conn.cursor() as cur:
        cur.execute(
            "create schema marts; create table marts.feed_anomalies (event_date date,"
            " slice_start timestamptz, metric text, value double precision,"
            " lower_bound double precision, upper_bound double precision, is_anomaly boolean)"
        )
        cur.executemany(
            "insert into marts.feed_anomalies values (%s, %s, %s, %s, %s, %s, %s)",
            [
                (d, t.replace(tzinfo=dt.UTC), *rest)
                for d, t, *rest in slices(40, {(39, "views"): 9.0})
            ],
        )
    result = cli("alerts")
    assert result.stdout.strip() == f"alert 2026-10-08 21:45 UTC: views -> Telegram chat {CHAT}"
    # The chart shows the 6 hours up to and including the flagged slice: 25 slices.
    from reports.marts import open_anomalies

    with psycopg.connect(warehouse) as conn, open_anomalies("warehouse", conn) as mart:
        end = T0 + dt.timedelta(minutes=15 * 39)
        history = mart.history(["views"], end - dt.timedelta(hours=6), end)
    assert history[-1].slice_start == end and len(history) == 25


def test_a_far_future_slice_does_not_hide_the_real_flags(cli, pg_anomalies, bot_api) -> None:
    """An event with a bad clock (year 2100) makes a slice; the latest real slice is still 'now'."""
    pg_anomalies(slices(8, {(6, "likes"): 1.0}))
    future = dt.datetime(2100, 1, 1)
    pg_anomalies([(future.date(), future, "views", 100.0, None, None, False)])
    result = cli("alerts")
    assert result.stdout.strip() == f"alert 2026-10-08 13:30 UTC: likes -> Telegram chat {CHAT}"


def test_an_alert_that_failed_half_way_sends_only_the_missing_part(
    cli, pg_anomalies, bot_api
) -> None:
    pg_anomalies(slices(4, {(2, "views"): 300.0}))
    bot_api.answer_next(200, {"ok": True, "result": {}})  # the text went out
    for _ in range(3):  # the chart did not, on every attempt
        bot_api.answer_next(500, {"ok": False, "description": "Internal Server Error"})
    assert cli("alerts").returncode == 1
    again = cli("alerts")
    assert again.returncode == 0 and "views" in again.stdout
    assert [r.method for r in bot_api.requests] == ["sendMessage"] + ["sendPhoto"] * 4
    assert cli("alerts").returncode == 0 and len(bot_api.requests) == 5  # nothing more


def test_the_alert_chart_reads_from_zero_and_shows_the_ctr_as_a_percentage() -> None:
    from reports.charts import alert_figure
    from reports.marts import Flag

    start = dt.datetime(2026, 10, 5, 12, 0)
    history = [
        Flag(start + dt.timedelta(minutes=15 * k), metric, value, 0.0, upper, k == 3)
        for k in range(4)
        for metric, value, upper in (("views", 900.0 + k, 1000.0), ("ctr", 0.1 + k / 100, 0.3))
    ]
    figure = alert_figure(start + dt.timedelta(minutes=45), history, ["views", "ctr"])
    views, ctr = figure.axes
    assert views.get_ylim()[0] == 0 and ctr.get_ylim()[0] == 0
    assert ctr.yaxis.get_major_formatter()(0.12, None).endswith("%")
