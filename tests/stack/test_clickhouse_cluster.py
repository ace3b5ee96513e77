"""docs/scaling/clickhouse_cluster.sql against a real ClickHouse engine with a cluster.

The embedded ClickHouse (chdb behind stack/clickhouse_http.py) is started with
a server config of its own: a cluster of one shard on this host (its
``tcp_port``, so the shard is the local server and a Distributed table reads
and writes it without a network hop), the ``{cluster}``/``{shard}``/``{replica}``
macros, and ClickHouse's in-process test keeper as ZooKeeper.

What chdb (clickhouse-local's engine) cannot do, and so what is not checked
here: ``ON CLUSTER`` (no distributed DDL worker runs in it; "Replicated DDL
queries are disabled"), and writing to a ReplicatedMergeTree (its replica stays
read-only: replication needs the interserver HTTP endpoint only a
clickhouse-server has). So the file is checked three ways: every statement
parses as written; the statements run without ``ON CLUSTER``, replicated tables
and all, and register in the keeper at the paths the macros make; and with
plain MergeTree local tables, rows go in and come out through the Distributed
tables.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import pytest
import yaml
from clickhouse_connect.driver.client import Client

from datagen import events_writer
from stack.embedded_clickhouse import EmbeddedClickHouse
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
DDL = ROOT / "docs" / "scaling" / "clickhouse_cluster.sql"
MARTS_YML = ROOT / "dbt_project" / "models" / "marts" / "events" / "_events__models.yml"
CLUSTER = "events_cluster"
RAW = ("feed_actions", "message_actions")
MARTS = ("app_metrics_daily", "feed_dimension_daily", "feed_anomalies")
DAY = dt.date(2026, 10, 1)


def statements() -> list[str]:
    lines = [ln for ln in DDL.read_text().splitlines() if not ln.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def without_on_cluster(sql: str) -> str:
    return re.sub(r"\s+ON CLUSTER '\{cluster\}'", "", sql)


def with_plain_merge_tree(sql: str) -> str:
    return re.sub(r"ReplicatedMergeTree\([^)]*\)", "MergeTree", sql)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedClickHouse]:
    home = tmp_path_factory.mktemp("clickhouse-cluster")
    tcp_port = free_port()  # nothing listens on it: it only makes the shard this server
    config = home / "config.xml"
    config.write_text(f"""<clickhouse>
  <tcp_port>{tcp_port}</tcp_port>
  <remote_servers>
    <{CLUSTER}>
      <shard><replica><host>127.0.0.1</host><port>{tcp_port}</port></replica></shard>
    </{CLUSTER}>
  </remote_servers>
  <macros><cluster>{CLUSTER}</cluster><shard>01</shard><replica>r1</replica></macros>
  <zookeeper><implementation>testkeeper</implementation></zookeeper>
</clickhouse>
""")
    server = EmbeddedClickHouse(data_dir=home / "data", port=free_port(), config_file=config)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ch(server: EmbeddedClickHouse) -> Iterator[Client]:
    client = clickhouse_connect.get_client(host=server.host, port=server.port)
    for db in ("events", "marts", "project"):
        client.command(f"DROP DATABASE IF EXISTS {db} SYNC")
    yield client
    client.close()


def run(ch: Client, sqls: list[str]) -> None:
    for sql in sqls:
        ch.command(sql)


def columns(ch: Client, database: str, table: str) -> list[tuple[str, str]]:
    return [
        (name, type_)
        for name, type_ in ch.query(
            "SELECT name, type FROM system.columns WHERE database = {d:String}"
            " AND table = {t:String} ORDER BY position",
            parameters={"d": database, "t": table},
        ).result_rows
    ]


def test_the_cluster_is_one_local_shard(ch: Client) -> None:
    rows = ch.query(
        "SELECT shard_num, is_local FROM system.clusters WHERE cluster = {c:String}",
        parameters={"c": CLUSTER},
    ).result_rows
    assert rows == [(1, 1)]


def test_every_statement_parses_as_written(ch: Client) -> None:
    sqls = statements()
    assert len(sqls) == 12  # two databases, five local tables, five Distributed ones
    for sql in sqls:
        formatted = ch.query("SELECT formatQuery({q:String})", parameters={"q": sql}).result_rows
        assert "ON CLUSTER" in formatted[0][0]


def test_replicated_tables_register_in_the_keeper_at_the_macros_paths(ch: Client) -> None:
    run(ch, [without_on_cluster(s) for s in statements()])
    replicas = ch.query(
        "SELECT database, table, zookeeper_path, replica_name FROM system.replicas"
        " WHERE database IN ('events', 'marts') ORDER BY database, table"
    ).result_rows
    expected = [("events", f"{t}_local") for t in RAW] + [("marts", f"{t}_local") for t in MARTS]
    assert [(db, t) for db, t, _, _ in replicas] == sorted(expected)
    for db, table, path, replica in replicas:
        assert (path, replica) == (f"/clickhouse/tables/01/{db}/{table}", "r1")
    engines = dict(
        ch.query(
            "SELECT name, engine_full FROM system.tables WHERE database IN ('events', 'marts')"
            " AND engine = 'Distributed'"
        ).result_rows
    )
    assert sorted(engines) == sorted(RAW + MARTS)
    assert all(f"Distributed('{CLUSTER}'" in e or "Distributed('{cluster}'" in e
               for e in engines.values())  # fmt: skip


def test_the_raw_tables_are_the_projects_and_the_marts_have_the_models_columns(
    ch: Client,
) -> None:
    run(ch, [with_plain_merge_tree(without_on_cluster(s)) for s in statements()])
    # The project's own raw tables, as the simulator creates them.
    ch.command("CREATE DATABASE project")
    for ddl in (events_writer.FEED_DDL, events_writer.MESSAGE_DDL):
        ch.command(ddl.replace("IF NOT EXISTS ", "IF NOT EXISTS project.", 1))
    for table in RAW:
        assert columns(ch, "events", table) == columns(ch, "project", table)
        assert columns(ch, "events", f"{table}_local") == columns(ch, "project", table)
    models = {m["name"]: m for m in yaml.safe_load(MARTS_YML.read_text())["models"]}
    for table in MARTS:
        names = [c["name"] for c in models[table]["columns"]]
        assert [n for n, _ in columns(ch, "marts", table)] == names


def test_rows_go_in_and_come_out_through_the_distributed_tables(ch: Client) -> None:
    run(ch, [with_plain_merge_tree(without_on_cluster(s)) for s in statements()])
    when = dt.datetime(2026, 10, 1, 9, 30)
    feed = [(u, 10 + u, "view" if u % 3 else "like", when, "male", 25, "Russia", "Moscow",
             "iOS", "ads", 1) for u in range(1, 101)]  # fmt: skip
    settings = {"distributed_foreground_insert": 1}  # synchronous: rows are in when it returns
    ch.insert("events.feed_actions", feed, settings=settings)
    ch.insert(
        "events.message_actions",
        [(u, u + 1, when, "ads", 1, "female", 30, "Russia", "Moscow", "Android")
         for u in range(1, 21)],
        settings=settings,
    )  # fmt: skip
    day = {"d": DAY}
    # What the events loader asks for: a UTC day of each table.
    assert ch.query(
        "SELECT count(), uniqExact(user_id) FROM events.feed_actions WHERE toDate(time) = {d:Date}",
        parameters=day,
    ).result_rows == [(100, 100)]
    assert ch.command("SELECT count() FROM events.feed_actions_local") == 100
    assert ch.command("SELECT count() FROM events.message_actions") == 20
    ch.insert(
        "marts.app_metrics_daily",
        [(DAY, 100, 20, 20, 66, 34, 34 / 66, 20, 20, 20, 1.0)],
        settings=settings,
    )
    assert ch.query(
        "SELECT event_date, dau_feed, ctr FROM marts.app_metrics_daily"
    ).result_rows == [(DAY, 100, pytest.approx(34 / 66))]
    # A day replaced whole, as dbt's insert_overwrite does, on the local table.
    ch.command("CREATE TABLE marts.app_metrics_daily_new AS marts.app_metrics_daily_local")
    ch.insert("marts.app_metrics_daily_new", [(DAY, 99, 20, 20, 66, 34, 34 / 66, 20, 20, 20, 1.0)])
    ch.command(
        f"ALTER TABLE marts.app_metrics_daily_local REPLACE PARTITION '{DAY}'"
        " FROM marts.app_metrics_daily_new"
    )
    assert ch.command("SELECT sum(dau_feed) FROM marts.app_metrics_daily") == 99
