"""The events models on both adapters: hand-worked values, identical rows, incidents.

The events go into ClickHouse (the embedded server, a database of the test's
own), the real loader lands them in the warehouse, and the same dbt models
build on both targets: the warehouse from raw_events.*, ClickHouse from the
events in place.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from clickhouse_connect.driver.client import Client

from config import DbtSettings
from datagen import events_writer
from datagen.feed_events import FEED_TABLE, MESSAGE_TABLE, Incident, midnight
from datagen.population import Population
from loaders.events.job import load_day
from loaders.events.settings import ClickHouseSettings
from stack.dbt_build import DbtSummary, run_dbt
from tests.dbt.conftest import table_rows

pytestmark = pytest.mark.e2e  # dbt builds on both adapters

DAY1 = dt.date(2026, 10, 1)
DAY2 = dt.date(2026, 10, 2)
MODELS = {  # model -> schema (the prefix is the test's own)
    "int_events_user_daily": "intermediate",
    "int_events_users_first_seen": "intermediate",
    "int_events_slice_metrics": "intermediate",
    "app_metrics_daily": "marts",
    "feed_dimension_daily": "marts",
    "feed_anomalies": "marts",
}
PROFILES = {  # user id -> (gender, age, country, city, os, source, exp_group)
    1: ("male", 25, "Russia", "Moscow", "iOS", "ads", 1),
    2: ("female", 30, "Russia", "Kazan", "Android", "organic", 2),
    3: ("female", 40, "Belarus", "Minsk", "Android", "organic", 3),
    4: ("male", 25, "Russia", "Moscow", "Android", "ads", 0),
}


@pytest.fixture
def prefix(monkeypatch: pytest.MonkeyPatch) -> str:
    """Schemas of the test's own on ClickHouse too, where databases are server-wide."""
    value = f"t{uuid.uuid4().hex[:8]}_"
    monkeypatch.setenv("DBT_SCHEMA_PREFIX", value)
    return value


@pytest.fixture
def ch(clickhouse_db: ClickHouseSettings, prefix: str) -> Iterator[Client]:
    client = events_writer.client(clickhouse_db)
    events_writer.ensure_tables(client)
    yield client
    client.close()


def at(day: dt.date, hh: int, mm: int = 0, ss: int = 0) -> dt.datetime:
    return midnight(day) + dt.timedelta(hours=hh, minutes=mm, seconds=ss)


def feed(user: int, post: int, action: str, when: dt.datetime) -> tuple:
    gender, age, country, city, os, source, group = PROFILES[user]
    return (user, post, action, when, gender, age, country, city, os, source, group)


def message(sender: int, receiver: int, when: dt.datetime) -> tuple:
    gender, age, country, city, os, source, group = PROFILES[sender]
    return (sender, receiver, when, source, group, gender, age, country, city, os)


FEED_COLUMNS = ["user_id", "post_id", "action", "time", "gender", "age", "country", "city",
                "os", "source", "exp_group"]  # fmt: skip
MESSAGE_COLUMNS = ["user_id", "receiver_id", "time", "source", "exp_group", "gender", "age",
                   "country", "city", "os"]  # fmt: skip


def write(ch: Client, feed_rows: list[tuple], message_rows: list[tuple]) -> None:
    if feed_rows:
        ch.insert(FEED_TABLE, feed_rows, column_names=FEED_COLUMNS)
    if message_rows:
        ch.insert(MESSAGE_TABLE, message_rows, column_names=MESSAGE_COLUMNS)


def build(target: str, logical_date: dt.date | None = None, full: bool = False) -> DbtSummary:
    args = [
        "build",
        "--select",
        "tag:events",
        "--target",
        DbtSettings.from_env().target_for(target),
    ]
    if target != "warehouse":  # a target dir per target, as make run: each keeps its partial parse
        args += ["--target-path", os.path.join(os.environ["DBT_TARGET_PATH"], target)]
    if full:
        args.append("--full-refresh")
    # The day by environment, as make run and Airflow give it (--vars would
    # make dbt parse the whole project again at every new day).
    with pytest.MonkeyPatch.context() as env:
        if logical_date is None:
            env.delenv("DBT_LOGICAL_DATE", raising=False)
        else:
            env.setenv("DBT_LOGICAL_DATE", logical_date.isoformat())
        summary = run_dbt(args, log_dir=_log_dir())
    assert summary.success, summary.failures
    return summary


def _log_dir():
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp(prefix="dbt-events-logs-"))


def _plain(value: object) -> object:
    """A value both adapters' drivers agree on: UTC instants, rounded floats, ints for bools."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 9)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    return value


def columns_of(conninfo: str, schema: str, table: str) -> list[str]:
    with psycopg.connect(conninfo) as conn:
        return [
            name
            for (name,) in conn.execute(
                "select column_name from information_schema.columns"
                " where table_schema = %s and table_name = %s order by ordinal_position",
                (schema, table),
            )
        ]


def warehouse_rows(conninfo: str, schema: str, table: str, columns: list[str]) -> list[tuple]:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(f"select {', '.join(columns)} from {schema}.{table}").fetchall()
    return sorted((tuple(_plain(v) for v in r) for r in rows), key=repr)


def clickhouse_rows(ch: Client, schema: str, table: str, columns: list[str]) -> list[tuple]:
    rows = ch.query(f"SELECT {', '.join(columns)} FROM `{schema}`.`{table}`").result_rows
    return sorted((tuple(_plain(v) for v in r) for r in rows), key=repr)


def assert_adapters_agree(warehouse: str, ch: Client, prefix: str) -> None:
    for model, schema in MODELS.items():
        columns = columns_of(warehouse, prefix + schema, model)
        assert columns, f"{model} not built on the warehouse"
        on_warehouse = warehouse_rows(warehouse, prefix + schema, model, columns)
        on_clickhouse = clickhouse_rows(ch, prefix + schema, model, columns)
        assert on_warehouse, f"{model} is empty"
        assert on_clickhouse == on_warehouse, model


def hand_made_days(ch: Client) -> None:
    """Two small days whose every figure is worked out by hand in the tests below."""
    d = DAY1
    write(
        ch,
        [
            feed(1, 10, "view", at(d, 10)), feed(1, 11, "view", at(d, 10, 1)),
            feed(1, 12, "view", at(d, 10, 2)), feed(1, 10, "like", at(d, 10, 3)),
            feed(2, 10, "view", at(d, 11)), feed(2, 13, "view", at(d, 11, 20)),
            feed(2, 10, "like", at(d, 11, 21)), feed(2, 13, "like", at(d, 11, 22)),
        ],
        [
            message(1, 2, at(d, 12)), message(1, 2, at(d, 12, 5)), message(1, 3, at(d, 12, 6)),
            message(2, 1, at(d, 13)), message(4, 1, at(d, 14)),
        ],
    )  # fmt: skip
    # Day 2: user 3 acts for the first time; user 1 writes to them.
    write(ch, [feed(3, 20, "view", at(DAY2, 9))], [message(1, 3, at(DAY2, 9, 30))])


def test_hand_worked_values_are_identical_on_both_adapters(
    warehouse: str, ch: Client, prefix: str, local_dirs, dbt_target
) -> None:
    hand_made_days(ch)
    for day in (DAY1, DAY2):
        load_day(day)
    for target in ("warehouse", "clickhouse"):
        build(target, DAY2)
    dim = prefix + "marts"
    rows = warehouse_rows(
        warehouse, dim, "feed_dimension_daily",
        ["event_date", "dimension", "dimension_value", "views", "likes", "messages_received",
         "messages_sent", "users_received", "users_sent"],
    )  # fmt: skip
    # Day 1: user 1 (iOS, male, 25) viewed 3, liked 1, sent 3 to 2 users, got 2
    # from 2 users; user 2 (Android, female, 30) viewed 2, liked 2, sent 1, got 2
    # from 1 user; user 4 (Android, male, 25) sent 1; user 3 only received 1
    # and had never acted: 'unknown'.
    d1, d2 = DAY1, DAY2
    assert rows == sorted([
        (d1, "age", "25", 3, 1, 2, 4, 2, 3),
        (d1, "age", "30", 2, 2, 2, 1, 1, 1),
        (d1, "age", "unknown", 0, 0, 1, 0, 1, 0),
        (d1, "gender", "female", 2, 2, 2, 1, 1, 1),
        (d1, "gender", "male", 3, 1, 2, 4, 2, 3),
        (d1, "gender", "unknown", 0, 0, 1, 0, 1, 0),
        (d1, "os", "Android", 2, 2, 2, 2, 1, 2),
        (d1, "os", "iOS", 3, 1, 2, 3, 2, 2),
        (d1, "os", "unknown", 0, 0, 1, 0, 1, 0),
        # Day 2: user 3 is known from their own view on; user 1 sent 1.
        (d2, "age", "25", 0, 0, 0, 1, 0, 1),
        (d2, "age", "40", 1, 0, 1, 0, 1, 0),
        (d2, "gender", "female", 1, 0, 1, 0, 1, 0),
        (d2, "gender", "male", 0, 0, 0, 1, 0, 1),
        (d2, "os", "Android", 1, 0, 1, 0, 1, 0),
        (d2, "os", "iOS", 0, 0, 0, 1, 0, 1),
    ], key=repr)  # fmt: skip
    daily = warehouse_rows(
        warehouse, dim, "app_metrics_daily",
        ["event_date", "dau_feed", "dau_messenger", "dau_both", "views", "likes", "ctr",
         "messages_sent", "senders", "receivers", "sent_received_ratio"],
    )  # fmt: skip
    assert daily == sorted(
        [(d1, 2, 3, 2, 5, 3, 0.6, 5, 3, 3, 1.0), (d2, 1, 1, 0, 1, 0, 0.0, 1, 1, 1, 1.0)]
    )
    assert_adapters_agree(warehouse, ch, prefix)


def test_incremental_builds_equal_a_full_refresh_on_both_adapters(
    warehouse: str, ch: Client, prefix: str, local_dirs, dbt_target
) -> None:
    """Day 1 built; then day 1's late events, days 2 and 3 landed before one build
    without a logical date (as Airflow runs it); then an older day rebuilt while
    later ones exist: every model equals a full refresh, on both adapters."""
    population = Population(seed=7, scale=0.05, start_date=DAY1)
    day3 = DAY2 + dt.timedelta(days=1)
    events_writer.write_day(ch, population, DAY1, incidents=())
    load_day(DAY1)
    for target in ("warehouse", "clickhouse"):
        build(target, DAY1)
    for d in (DAY2, day3):
        events_writer.write_day(ch, population, d, incidents=())
    # Late events of day 1, written after it was landed and built.
    write(ch, [feed(1, 99, "view", at(DAY1, 23, 59, 59))], [message(2, 1, at(DAY1, 23, 50))])
    results = load_day(DAY2) + load_day(day3)
    assert any("late" in note for r in results for note in r.notes), [r.notes for r in results]
    for target in ("warehouse", "clickhouse"):
        build(target)  # no logical date: from the day before the latest built on
        build(target, DAY2)  # an older day again, while day 3 exists
    incremental = {
        model: table_rows(warehouse, prefix + schema, model) for model, schema in MODELS.items()
    }
    on_clickhouse = {
        model: clickhouse_rows(
            ch, prefix + schema, model, columns_of(warehouse, prefix + schema, model)
        )
        for model, schema in MODELS.items()
    }
    for target in ("warehouse", "clickhouse"):
        build(target, full=True)
    for model, schema in MODELS.items():
        assert table_rows(warehouse, prefix + schema, model) == incremental[model], model
        columns = columns_of(warehouse, prefix + schema, model)
        assert clickhouse_rows(ch, prefix + schema, model, columns) == on_clickhouse[model], model
    assert_adapters_agree(warehouse, ch, prefix)
    with psycopg.connect(warehouse) as conn:
        # The late view is in day 1's figures, and every day has its slices:
        # all 96, but day 3 only those before the latest event's (not complete).
        views = conn.execute(
            f"select views from {prefix}marts.app_metrics_daily where event_date = %s", (DAY1,)
        ).fetchone()
        raw = conn.execute(
            "select count(*) from raw_events.feed_actions where action = 'view'"
            " and _event_date = %s",
            (DAY1,),
        ).fetchone()
        latest = conn.execute(
            "select max(t) from (select max(time) as t from raw_events.feed_actions"
            " union all select max(time) from raw_events.message_actions) as latest"
        ).fetchone()[0]
        slices = dict(
            conn.execute(
                f"select event_date, count(distinct slice_no)"
                f" from {prefix}intermediate.int_events_slice_metrics group by 1"
            ).fetchall()
        )
    assert views == raw
    before_latest = int((latest - midnight(day3)).total_seconds()) // 900
    assert slices == {DAY1: 96, DAY2: 96, day3: before_latest}


def test_every_injected_incident_is_flagged_and_clean_days_flag_little(
    warehouse: str, ch: Client, prefix: str, local_dirs, dbt_target
) -> None:
    population = Population(seed=42, scale=1.0, start_date=DAY1)
    day = [DAY1 + dt.timedelta(days=k) for k in range(5)]
    incidents = {
        day[1]: Incident.likes_drop(at(day[1], 15), factor=0.3),
        day[2]: Incident.messages_spike(at(day[2], 12), factor=4.0),
        day[3]: Incident.os_outage(at(day[3], 18), os="iOS"),
    }
    for d in day:
        events_writer.write_day(
            ch, population, d, incidents=[incidents[d]] if d in incidents else ()
        )
        load_day(d)
    for target in ("warehouse", "clickhouse"):
        build(target, day[-1])
    assert_adapters_agree(warehouse, ch, prefix)  # so ClickHouse flags the same slices
    affected = {
        "likes_drop": {"likes", "ctr"},
        "messages_spike": {"messages_sent", "users_messenger"},
        "os_outage": {"users_feed", "views", "likes", "users_messenger", "messages_sent"},
    }
    with psycopg.connect(warehouse) as conn:
        flagged = conn.execute(
            f"select slice_start, metric from {prefix}marts.feed_anomalies where is_anomaly"
        ).fetchall()
    for d, incident in incidents.items():
        hits = {m for start, m in flagged if incident.start <= start < incident.end}
        assert hits & affected[incident.kind], (incident.kind, d, hits)
    # Clean days (the first has no previous slices for its first 4 hours):
    # measured over 14 clean days, 4 flags a day on average across the six
    # metrics and 15 at most (feed_anomalies' docs).
    for d in (day[0], day[4]):
        n = sum(1 for start, _ in flagged if start.astimezone(dt.UTC).date() == d)
        assert n <= 15, (d, n)


def test_hostile_raw_rows_warn_and_stay_out_of_the_marts(
    warehouse: str, ch: Client, prefix: str, local_dirs, dbt_target
) -> None:
    """Rows a real ClickHouse with Nullable or free-text columns could hold: the build
    stays green, a warn test names each kind, and the marts count only the good rows."""
    hand_made_days(ch)
    load_day(DAY1)
    with psycopg.connect(warehouse) as conn:
        insert = (
            "insert into raw_events.feed_actions (user_id, post_id, action, time, gender, age,"
            " country, city, os, source, exp_group, _event_date, _batch_id)"
            " values (%s, 1, %s, %s, 'male', %s, 'Russia', 'Moscow', 'iOS', 'ads', 1, %s, 0)"
        )
        noon = at(DAY1, 12)
        conn.execute(insert, (None, "view", noon, 25, DAY1))  # no user
        conn.execute(insert, (6, "view", None, 25, DAY1))  # no time
        conn.execute(insert, (7, "view", noon, -3, DAY1))  # an impossible age
        conn.execute(
            "insert into raw_events.message_actions (user_id, receiver_id, time, source,"
            " exp_group, gender, age, country, city, os, _event_date, _batch_id)"
            " values (1, null, %s, 'ads', 1, 'male', 25, 'Russia', 'Moscow', 'iOS', %s, 0)",
            (noon, DAY1),
        )
    # An action the app never writes: refused by the raw table (as it lands, a reject).
    with pytest.raises(psycopg.errors.CheckViolation), psycopg.connect(warehouse) as conn:
        conn.execute(insert, (5, "share", at(DAY1, 12), 25, DAY1))
    summary = build("warehouse", DAY1)
    assert summary.counts["test"].get("warn", 0) == 3, summary.counts
    assert set(summary.counts["test"]) == {"pass", "warn"}
    with psycopg.connect(warehouse) as conn:
        daily = conn.execute(
            f"select dau_feed, views, messages_sent, receivers"
            f" from {prefix}marts.app_metrics_daily where event_date = %s",
            (DAY1,),
        ).fetchone()
        ages = {
            v
            for (v,) in conn.execute(
                f"select dimension_value from {prefix}marts.feed_dimension_daily"
                " where dimension = 'age'"
            )
        }
    # Hand-worked day 1 plus user 7's view (a user with a bad age is still a user;
    # the age shows as it came) and user 6's view without a time (a view of day 1:
    # only the 15-minute slices need the time). The message without a receiver
    # and the row without a user are counted nowhere.
    assert daily == (4, 7, 5, 3)
    assert ages == {"25", "30", "-3", "unknown"}


def test_a_day_relanded_by_reconciliation_reaches_the_marts(
    warehouse: str, ch: Client, prefix: str, local_dirs, dbt_target, monkeypatch
) -> None:
    """Events late beyond the loads' lookback: the reconciliation relands their day, and
    the next incremental build on the warehouse rebuilds from that day on."""
    from loaders.events.reconcile import reconcile

    monkeypatch.setenv("EVENTS_LOOKBACK_DAYS", "1")
    population = Population(seed=7, scale=0.05, start_date=DAY1)
    days = [DAY1 + dt.timedelta(days=n) for n in range(4)]
    for d in days:
        events_writer.write_day(ch, population, d, incidents=())
        load_day(d)
    build("warehouse", days[-1])
    write(ch, [feed(1, 99, "view", at(DAY1, 12))] * 3, [])  # three days late
    load_day(days[-1])  # the load's lookback does not reach day 1
    [feed_result, _] = reconcile()
    assert [d.partition for d in feed_result.differences] == [DAY1.isoformat()]
    build("warehouse", days[-1])  # incremental, as the next day's build
    incremental = table_rows(warehouse, prefix + "marts", "app_metrics_daily")
    build("warehouse", full=True)
    assert table_rows(warehouse, prefix + "marts", "app_metrics_daily") == incremental
    with psycopg.connect(warehouse) as conn:
        views = conn.execute(
            f"select views from {prefix}marts.app_metrics_daily where event_date = %s", (DAY1,)
        ).fetchone()[0]
        raw = conn.execute(
            "select count(*) from raw_events.feed_actions where action = 'view'"
            " and _event_date = %s",
            (DAY1,),
        ).fetchone()[0]
    assert views == raw
