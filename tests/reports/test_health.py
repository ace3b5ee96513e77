"""Platform health: dbt's artifacts kept once, the ops views, and each alert sent once.

Real dbt invocations and a real warehouse: a test broken on purpose (a
duplicate written into a built model), a source that stops landing, a
shrunken day, a day of rejects. The alerts go to the recording Bot API
(tests/reports/fixtures.py), or to disk where no bot is configured.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import psycopg
import pytest

from loaders.core.raw_tables import ensure_raw_tables
from loaders.core.warehouse import LoaderError
from loaders.ops.__main__ import main as ops_cli
from loaders.ops.artifacts import keep, land_artifacts
from loaders.raw_tables import all_raw_tables, ensure_all_raw_tables
from reports import health
from stack.dbt_build import run_dbt
from tests.reports.fixtures import CHAT

pytestmark = pytest.mark.e2e  # dbt invocations on the warehouse

KAFKA_MODEL = "stg_kafka__new_users_events"
UNIQUE_EMAIL = "unique_stg_kafka__new_users_events_email"


@pytest.fixture
def platform(warehouse: str, local_dirs, tmp_path: Path, monkeypatch) -> str:
    """A warehouse with the control and raw tables, and the ops views built."""
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    with psycopg.connect(warehouse) as conn:
        ensure_all_raw_tables(conn)
    summary = run_dbt(["build", "--select", "tag:ops"], tmp_path / "dbt-logs")
    assert summary.success, summary.failures
    return warehouse


def add_batches(conn: psycopg.Connection, source: str, stream: str, days: dict[int, int]) -> None:
    """Committed batches ``days ago -> rows landed`` (at noon UTC; 0: now)."""
    today = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    for ago, rows in days.items():
        at = dt.datetime.now(dt.UTC) if ago == 0 else today - dt.timedelta(days=ago)
        conn.execute(
            "insert into loader.batches (source, stream, rows_landed, committed_at)"
            " values (%s, %s, %s, %s)",
            (source, stream, rows, at),
        )


def kinds(sent: list[health.SentHealthAlert]) -> list[tuple[str, str]]:
    return [(s.alert.kind, s.alert.key.split(":")[0]) for s in sent]


def test_artifacts_are_kept_once_per_invocation_and_bad_ones_say_why(
    platform: str, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    kept = "select count(*) from raw_ops.dbt_invocations"
    with psycopg.connect(platform) as conn:
        assert conn.execute(kept).fetchone()[0] == 1  # the fixture's build
        # Landing the same folder again (a rerun, a retried task) adds nothing.
        assert land_artifacts(conn, target, "dev").invocations == 0
        assert conn.execute(kept).fetchone()[0] == 1
        # A folder without artifacts lands nothing; an unreadable one says which file.
        assert land_artifacts(conn, tmp_path / "nothing", "dev").invocations == 0
        broken = tmp_path / "broken"
        broken.mkdir()
        (broken / "run_results.json").write_text('{"metadata": ')
        with pytest.raises(LoaderError, match=r"run_results\.json cannot be read"):
            land_artifacts(conn, broken, "dev")
        (broken / "run_results.json").write_text('{"metadata": {}, "results": []}')
        with pytest.raises(LoaderError, match=r"not what dbt writes .*nothing of them was kept"):
            land_artifacts(conn, broken, "dev")
        row = conn.execute(
            "select command, target, adapter_type, success, nodes_built, tests_run"
            " from ops.fct_dbt_invocations"
        ).fetchone()
    assert row[:4] == ("build", "dev", "postgres", True) and row[4] >= 14 and row[5] >= 20
    # A second invocation is a second row, its node list shared with the first.
    summary = run_dbt(["run", "--select", "tag:ops"], tmp_path / "dbt-logs")
    assert summary.success, summary.failures
    with psycopg.connect(platform) as conn:
        assert conn.execute(kept).fetchone()[0] == 2
        lists = conn.execute("select count(distinct manifest_hash) from raw_ops.dbt_nodes")
        assert lists.fetchone()[0] == 1
    # make dbt lands what its own args say: another target folder, another target.
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(target, elsewhere)
    results = json.loads((elsewhere / "run_results.json").read_text())
    results["metadata"]["invocation_id"] = "by-hand"
    (elsewhere / "run_results.json").write_text(json.dumps(results))
    assert ops_cli(["--dbt-args", f"build -s x --target ci --target-path {elsewhere}"]) == 0
    with psycopg.connect(platform) as conn:
        row = conn.execute(
            "select target, success from raw_ops.dbt_invocations where invocation_id = 'by-hand'"
        ).fetchone()
    assert row == ("ci", True)


def test_artifacts_a_warehouse_cannot_take_are_set_aside_and_kept_next_time(
    platform: str, tmp_path: Path, local_dirs, monkeypatch
) -> None:
    first = tmp_path / "first"
    shutil.copytree(tmp_path / "target", first)
    results = json.loads((first / "run_results.json").read_text())
    results["metadata"]["invocation_id"] = "while-down"
    (first / "run_results.json").write_text(json.dumps(results))
    password = os.environ["WAREHOUSE_PASSWORD"]
    monkeypatch.setenv("WAREHOUSE_PASSWORD", "wrong-password")  # the warehouse refuses
    said = keep(first, "dev")
    assert said.startswith("warning: dbt's artifacts were not kept in raw_ops (")
    assert "wrong-password" not in said and "set aside in " in said
    [aside] = (local_dirs / "ops-pending").iterdir()
    # The next invocation overwrites its target folder; what was set aside lands with it.
    shutil.rmtree(first)
    monkeypatch.setenv("WAREHOUSE_PASSWORD", password)
    assert keep(tmp_path / "target", "dev").startswith("ops: kept 1 dbt invocation(s)")
    assert not aside.exists()
    with psycopg.connect(platform) as conn:
        ids = conn.execute("select invocation_id from raw_ops.dbt_invocations").fetchall()
    assert ("while-down",) in ids and len(ids) == 2


def test_a_test_that_starts_failing_is_alerted_once_per_streak(
    platform: str, tmp_path: Path, bot_api
) -> None:
    logs = tmp_path / "dbt-logs"
    with psycopg.connect(platform) as conn:
        ensure_raw_tables(conn, all_raw_tables())
        conn.execute(
            'insert into raw_kafka.new_users_events (topic, partition, "offset", value,'
            " message_timestamp, _batch_id) values ('t', 0, 1, %s, now(), 1)",
            (json.dumps({"email": "ann@example.com", "loyalty_status": "gold"}),),
        )
    assert run_dbt(["build", "--select", KAFKA_MODEL], logs).success
    assert health.send() == []
    # Broken on purpose: a second row for the same email in the built model.
    with psycopg.connect(platform) as conn:
        conn.execute(f"insert into staging.{KAFKA_MODEL} select * from staging.{KAFKA_MODEL}")
    failed = run_dbt(["test", "--select", KAFKA_MODEL], logs)
    assert any(UNIQUE_EMAIL in f for f in failed.failures), failed.failures
    with psycopg.connect(platform) as conn:
        history = conn.execute(
            "select tested_node, passed, failed, latest_status, last_passed_at is not null,"
            " started_failing from ops.fct_test_history where test_name = %s",
            (UNIQUE_EMAIL,),
        ).fetchall()
    assert history == [(KAFKA_MODEL, 1, 1, "fail", True, True)]
    assert health.health_line().count("failing tests 1") == 1

    sent = health.send()
    assert kinds(sent) == [("test_failing", "dev")]
    [message] = [r.fields()["text"] for r in bot_api.requests]
    assert message.startswith(f"dbt test failing on dev: {UNIQUE_EMAIL} (tests {KAFKA_MODEL})")
    assert "last passed 20" in message
    assert sent[0].delivered_to == f"Telegram chat {CHAT}"
    # Still failing on the next run: no second alert.
    run_dbt(["test", "--select", KAFKA_MODEL], logs)
    assert health.send() == [] and len(bot_api.requests) == 1
    # Mended, it passes and leaves the failing list.
    with psycopg.connect(platform) as conn:
        conn.execute(f"delete from staging.{KAFKA_MODEL} where ctid <> (select min(ctid)"
                     f" from staging.{KAFKA_MODEL})")  # fmt: skip
    assert run_dbt(["test", "--select", KAFKA_MODEL], logs).success
    assert "failing tests 0" in health.health_line()


def test_a_source_that_stops_landing_is_one_stale_alert(platform: str, local_dirs) -> None:
    with psycopg.connect(platform) as conn:
        add_batches(conn, "mongo", "user_sessions", {3: 500, 2: 480})  # then nothing: 2 days
        add_batches(conn, "mongo", "event_logs", {2: 90, 0: 0})  # a batch, but no rows
        add_batches(conn, "kafka", "new_users_events", {1: 30, 0: 12})  # landing
    sent = health.send()
    assert kinds(sent) == [("stale", "mongo")]
    text = (Path(sent[0].delivered_to) / "message.txt").read_text()
    assert text.startswith("source mongo is stale: no raw table of it landed rows since ")
    assert sent[0].delivered_to.startswith(str(local_dirs / "reports" / "health" / "stale-"))
    assert health.send() == []  # once
    assert "stalest source mongo (" in health.health_line()
    # It lands again, then stops again: a new episode, a new alert.
    with psycopg.connect(platform) as conn:
        conn.execute(
            "update loader.batches set committed_at = now() - interval '30 hours'"
            " where source = 'mongo' and stream = 'event_logs'"
        )
        conn.execute("update loader.batches set rows_landed = 5 where stream = 'event_logs'")
    assert kinds(health.send()) == [("stale", "mongo")]


def test_a_shrunken_day_is_one_volume_alert(platform: str, local_dirs) -> None:
    usual = {ago: 1000 + 17 * (ago % 5) for ago in range(9, 1, -1)}
    with psycopg.connect(platform) as conn:
        add_batches(conn, "events", "feed_actions", {**usual, 1: 310, 0: 40})
        add_batches(conn, "events", "message_actions", {**usual, 1: 1010, 0: 40})
        flagged = conn.execute(
            "select stream, landed_date, rows_landed, lower_bound > 310"
            " from ops.fct_volume_anomalies where is_anomaly"
        ).fetchall()
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    # Today is still landing: never judged.
    assert flagged == [("feed_actions", yesterday, 310, True)]
    sent = health.send()
    assert kinds(sent) == [("volume", "events.feed_actions")]
    text = (Path(sent[0].delivered_to) / "message.txt").read_text()
    assert f"events.feed_actions landed 310 row(s) on {yesterday}, below its usual" in text
    assert health.send() == []


def test_rejects_over_the_threshold_alert_once_per_table_and_day(
    platform: str, local_dirs, monkeypatch
) -> None:
    monkeypatch.setenv("HEALTH_REJECT_ALERT_ROWS", "3")
    with psycopg.connect(platform) as conn:
        add_batches(conn, "oltp", "orders", {1: 10, 0: 10})
        for i in range(4):
            conn.execute(
                "insert into loader.rejects (source, stream, record_id, record_version, reason)"
                " values ('oltp', 'orders', %s, '1', 'total_amount: not a number')",
                (str(i),),
            )
        conn.execute(
            "insert into loader.rejects (source, stream, record_id, record_version, reason)"
            " values ('oltp', 'users', '9', '1', 'email: missing')"
        )
    sent = health.send()
    assert kinds(sent) == [("rejects", "oltp.orders")]
    text = (Path(sent[0].delivered_to) / "message.txt").read_text()
    assert "oltp.orders: 4 rejected and 0 quarantined row(s)" in text
    assert "a reason: total_amount: not a number" in text
    assert health.send() == []


def test_an_alert_sent_now_is_recorded_and_never_sent_twice(platform: str, bot_api) -> None:
    first = health.alert_now("task_failed", "dag/task/run/try 1", "Airflow task failed: x")
    assert first is not None and first.delivered_to == f"Telegram chat {CHAT}"
    assert health.alert_now("task_failed", "dag/task/run/try 1", "Airflow task failed: x") is None
    assert len(bot_api.requests) == 1
    # A chat that refuses: nothing is recorded, the next call sends it.
    bot_api.answer_next(400, {"ok": False, "description": "Bad Request: chat not found"})
    with pytest.raises(LoaderError):
        health.alert_now("task_failed", "dag/task/run/try 2", "Airflow task failed: y")
    assert health.alert_now("task_failed", "dag/task/run/try 2", "y") is not None
    with psycopg.connect(platform) as conn:
        recorded = conn.execute(
            "select alert_key, delivered_to from reporting.health_alerts order by 1"
        ).fetchall()
    assert recorded == [
        ("dag/task/run/try 1", f"Telegram chat {CHAT}"),
        ("dag/task/run/try 2", f"Telegram chat {CHAT}"),
    ]


def test_health_can_be_switched_off(platform: str, local_dirs, monkeypatch) -> None:
    with psycopg.connect(platform) as conn:
        add_batches(conn, "mongo", "user_sessions", {5: 500})
    monkeypatch.setenv("HEALTH_ENABLED", "false")
    assert health.send() == []
    assert health.alert_now("run_failed", "x", "make run failed") is None
    monkeypatch.setenv("HEALTH_ENABLED", "true")
    assert kinds(health.send()) == [("stale", "mongo")]
