"""The embedded ClickHouse, through the real clients over real HTTP.

clickhouse-connect (what the loaders use) and dbt-clickhouse (what the
ClickHouse dbt target uses) are the contract: if they work against this
server, they work against a real ClickHouse the same way.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import socket
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import httpx
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from stack.embedded_clickhouse import EmbeddedClickHouse
from stack.embedded_postgres import ServiceError
from tests.conftest import free_port

START = dt.datetime(2026, 10, 1)


def connect(server: EmbeddedClickHouse, **kwargs) -> Client:
    return clickhouse_connect.get_client(
        host=server.host, port=server.port, password=server.password, **kwargs
    )


@pytest.fixture
def database(clickhouse_server: EmbeddedClickHouse) -> Iterator[str]:
    """A fresh database on the session's server."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    client = connect(clickhouse_server)
    client.command(f"CREATE DATABASE {name}")
    yield name
    client.command(f"DROP DATABASE {name}")
    client.close()


def create_events(client: Client, table: str) -> None:
    client.command(
        f"CREATE TABLE {table} (id UInt64, ts DateTime, os LowCardinality(String),"
        " score Nullable(Float64)) ENGINE = MergeTree PARTITION BY toDate(ts) ORDER BY id"
    )


def events(n: int, first: int = 0) -> list[tuple]:
    return [
        (i, START + dt.timedelta(minutes=i), ("iOS", "Android")[i % 2], None if i % 3 else i / 2)
        for i in range(first, first + n)
    ]


@pytest.mark.parametrize("compress", [True, "zstd", "gzip", False])  # True: lz4, the default
def test_insert_query_arrow_and_dataframe(
    clickhouse_server: EmbeddedClickHouse, database: str, compress: bool | str
) -> None:
    client = connect(clickhouse_server, database=database, compress=compress)
    create_events(client, "events")
    summary = client.insert("events", events(5000))
    assert summary.written_rows == 5000

    assert client.query(
        "SELECT count(), uniqExact(toDate(ts)), countIf(score IS NULL) FROM events"
    ).result_rows == [(5000, 4, 3333)]
    partitions = client.command(
        f"SELECT count() FROM system.parts WHERE database = '{database}' AND active"
    )
    assert partitions == 4  # one per day
    arrow = client.query_arrow("SELECT id, os, score FROM events ORDER BY id LIMIT 2")
    assert arrow.to_pylist() == [
        {"id": 0, "os": "iOS", "score": 0.0},
        {"id": 1, "os": "Android", "score": None},
    ]
    frame = client.query_df("SELECT os, count() AS n FROM events GROUP BY os ORDER BY os")
    assert frame.to_dict("records") == [{"os": "Android", "n": 2500}, {"os": "iOS", "n": 2500}]
    client.close()


def test_parameters_commands_and_another_database(
    clickhouse_server: EmbeddedClickHouse, database: str
) -> None:
    client = connect(clickhouse_server)
    create_events(client, f"{database}.events")
    client.insert(f"{database}.events", events(10))
    assert client.command("SELECT currentDatabase()") == "default"

    other = connect(clickhouse_server, database=database)
    assert other.command("SELECT currentDatabase()") == database
    assert other.command("SELECT count() FROM events") == 10
    # Server-side binding ({name:Type}, sent as param_*) and client-side (%(name)s).
    server_side = "SELECT count() FROM events WHERE os = {os:String} AND id < {n:UInt32}"
    assert other.query(server_side, parameters={"os": "iOS", "n": 6}).result_rows == [(3,)]
    form = connect(clickhouse_server, database=database, form_encode_query_params=True)
    assert form.query(server_side, parameters={"os": "iOS", "n": 6}).result_rows == [(3,)]
    client_side = "SELECT max(id) FROM events WHERE ts < %(ts)s"
    assert other.command(client_side, parameters={"ts": START + dt.timedelta(minutes=4)}) == 3
    # Settings travel as URL parameters, as dbt-clickhouse sends mutations_sync.
    other.command("ALTER TABLE events DELETE WHERE id >= 5", settings={"mutations_sync": 2})
    assert other.command("SELECT count() FROM events") == 5
    # The first client's database was not changed by the second one's.
    assert client.command("SELECT currentDatabase()") == "default"


def test_errors_carry_the_clickhouse_code_and_message(
    clickhouse_server: EmbeddedClickHouse, database: str
) -> None:
    client = connect(clickhouse_server, database=database)
    with pytest.raises(DatabaseError, match=r"Code: 60\..*Unknown table.*nope") as error:
        client.query("SELECT * FROM nope")
    assert error.value.code == 60
    with pytest.raises(DatabaseError, match="SYNTAX_ERROR") as error:
        client.command("SELEC 1")
    assert error.value.code == 62
    with pytest.raises(DatabaseError) as error:
        connect(clickhouse_server, database="no_such_database").command("SELECT 1")
    assert error.value.code == 81
    assert client.command("SELECT 1") == 1  # the server is fine afterwards


def test_http_interface_headers(clickhouse_server: EmbeddedClickHouse, database: str) -> None:
    assert httpx.get(f"{clickhouse_server.url}/ping").text == "Ok.\n"
    create_events(connect(clickhouse_server), f"{database}.events")
    # The query's head in the URL, the data in a gzip body, as curl users do.
    inserted = httpx.post(
        clickhouse_server.url,
        params={"database": database, "query": "INSERT INTO events (id, ts, os) FORMAT CSV"},
        content=gzip.compress(b"1,2026-10-01 00:00:00,iOS\n2,2026-10-01 00:01:00,iOS\n"),
        headers={"Content-Encoding": "gzip"},
    )
    assert inserted.status_code == 200, inserted.text
    assert json.loads(inserted.headers["X-ClickHouse-Summary"])["written_rows"] == "2"
    response = httpx.post(
        clickhouse_server.url,
        params={"query_id": "q-1", "default_format": "JSONEachRow"},
        content="SELECT 1 AS x",
    )
    assert response.status_code == 200
    assert response.json() == {"x": 1}
    assert response.headers["X-ClickHouse-Query-Id"] == "q-1"
    assert response.headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert response.headers["X-ClickHouse-Timezone"] == "UTC"
    assert "elapsed_ns" in response.headers["X-ClickHouse-Summary"]
    failed = httpx.post(clickhouse_server.url, content="SELECT nope")
    assert failed.status_code == 404
    assert failed.headers["X-ClickHouse-Exception-Code"] == "47"
    assert failed.text.startswith("Code: 47. DB::Exception: ")


def test_a_set_stays_in_its_session(clickhouse_server: EmbeddedClickHouse) -> None:
    setting = "SELECT value FROM system.settings WHERE name = 'max_threads'"
    first, second = connect(clickhouse_server), connect(clickhouse_server)
    default = second.command(setting)
    first.command("SET max_threads = 3")
    assert first.command(setting) == 3
    assert second.command(setting) == default


def test_two_clients_at_once(clickhouse_server: EmbeddedClickHouse, database: str) -> None:
    create_events(connect(clickhouse_server), f"{database}.events")
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            client = connect(clickhouse_server, database=database)
            for batch in range(5):
                client.insert("events", events(1000, first=(worker * 5 + batch) * 1000))
                assert client.command("SELECT count() > 0 FROM events") == 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    client = connect(clickhouse_server, database=database)
    assert client.query("SELECT count(), uniqExact(id), max(id) FROM events").result_rows == [
        (10_000, 10_000, 9_999)
    ]


def test_a_password_is_required_when_set_and_data_survives_a_restart(tmp_path: Path) -> None:
    server = EmbeddedClickHouse(data_dir=tmp_path / "data", port=free_port(), password="s3cret")
    server.start()
    try:
        with pytest.raises(DatabaseError, match="AUTHENTICATION_FAILED") as error:
            clickhouse_connect.get_client(host=server.host, port=server.port, password="wrong")
        assert error.value.code == 516
        assert httpx.post(server.url, content="SELECT 1").status_code == 403
        client = connect(server)
        create_events(client, "events")
        client.insert("events", events(100))
        server.stop()
        assert not server.is_running()
        server.start()
        assert connect(server).command("SELECT count() FROM events") == 100
    finally:
        server.stop()


def test_a_taken_port_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = EmbeddedClickHouse(data_dir=tmp_path / "data", port=port)
        with pytest.raises(ServiceError, match=rf"did not start on 127.0.0.1:{port}: .*in use"):
            server.start()


DBT_PROJECT = {
    "dbt_project.yml": """
        name: ch_probe
        version: "1.0"
        profile: ch_probe
        models:
          ch_probe:
            +materialized: table
    """,
    "models/events.sql": """
        {{ config(engine='MergeTree()', order_by='id', partition_by='toDate(ts)') }}
        select
            number as id,
            toDateTime('2026-10-01 00:00:00') + toIntervalHour(number) as ts,
            if(number % 2 = 0, 'iOS', 'Android') as os
        from numbers({{ var('hours') }})
    """,
    "models/daily.sql": """
        {{ config(materialized='incremental', incremental_strategy='delete+insert',
                  unique_key='day', engine='MergeTree()', order_by='day') }}
        select toDate(ts) as day, count() as events
        from {{ ref('events') }}
        {% if is_incremental() %}
        where toDate(ts) >= (select max(day) from {{ this }})
        {% endif %}
        group by day
    """,
    "models/appended.sql": """
        {{ config(materialized='incremental', incremental_strategy='append',
                  engine='MergeTree()', order_by='id') }}
        select id, os from {{ ref('events') }}
        {% if is_incremental() %}
        where id > (select max(id) from {{ this }})
        {% endif %}
    """,
    "models/schema.yml": """
        version: 2
        models:
          - name: daily
            columns:
              - name: day
                data_tests: [not_null, unique]
          - name: appended
            columns:
              - name: id
                data_tests: [not_null, unique]
    """,
}


def test_dbt_clickhouse_builds_and_increments(
    clickhouse_server: EmbeddedClickHouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dbt.cli.main import dbtRunner

    schema = f"dbt_{uuid.uuid4().hex[:8]}"
    for name, text in DBT_PROJECT.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    (tmp_path / "profiles.yml").write_text(
        textwrap.dedent(f"""
            ch_probe:
              target: dev
              outputs:
                dev:
                  type: clickhouse
                  driver: http
                  host: {clickhouse_server.host}
                  port: {clickhouse_server.port}
                  user: default
                  password: ""
                  schema: {schema}
                  threads: 2
        """)
    )
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    common = ["--project-dir", str(tmp_path), "--profiles-dir", str(tmp_path),
              "--log-path", str(tmp_path / "logs"), "--quiet"]  # fmt: skip

    assert dbtRunner().invoke(["debug", *common]).success
    for hours in (36, 60):  # day 2 is partial in the first round, completed in the second
        result = dbtRunner().invoke(["build", *common, "--vars", f"{{hours: {hours}}}"])
        assert result.success, result.exception or [r.message for r in result.result]
        statuses = {r.node.name: str(r.status) for r in result.result}
        assert len(statuses) == 7 and set(statuses.values()) <= {"success", "pass"}

    client = connect(clickhouse_server, database=schema)
    assert client.query("SELECT day, events FROM daily ORDER BY day").result_rows == [
        (dt.date(2026, 10, 1), 24),
        (dt.date(2026, 10, 2), 24),
        (dt.date(2026, 10, 3), 12),
    ]
    assert client.query("SELECT count(), uniqExact(id) FROM appended").result_rows == [(60, 60)]
    client.command(f"DROP DATABASE {schema}")
