"""Real servers for the tests: ephemeral PostgreSQL, MongoDB wire server, Kafka broker, ClickHouse.

Each is started once per test session in a temporary folder on free ports and
removed at the end; every test gets its own database on each, so tests are
independent. Settings reach the code under test through the same environment
variables a user sets (WAREHOUSE_*, MONGO_*).
"""

from __future__ import annotations

import os
import random
import secrets
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import httpx
import psycopg
import pytest
from pymongo import MongoClient
from pymongo.database import Database

from loaders.events.settings import ClickHouseSettings
from stack.embedded_clickhouse import EmbeddedClickHouse
from stack.embedded_kafka import EmbeddedKafka
from stack.embedded_mongo import EmbeddedMongo
from stack.embedded_postgres import EmbeddedPostgres
from stack.embedded_sales_api import EmbeddedSalesApi

# The clean stop on SIGTERM or Ctrl-C and the run's own temporary folder; the
# long set-ups shared by every worker; the recording Telegram Bot API and
# hand-made report marts (reports and Airflow tests).
pytest_plugins = ["tests.clean_stop", "tests.background", "tests.reports.fixtures"]


# Ports handed out by free_port, across every process of every test session
# (the background benches run their stacks beside pytest's): one file per port.
# Outside the run's own temporary folder (tests/clean_stop.py), which
# TEST_PORTS_DIR names for the processes that inherit it.
PORT_RESERVATIONS = (
    Path(os.environ.get("TEST_PORTS_DIR") or tempfile.gettempdir()) / "store-analytics-test-ports"
)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A free port on 127.0.0.1, below the kernel's ephemeral range and handed out once.

    A port the kernel picks (bind to 0) lies in the ephemeral range, where any
    outgoing connection may take it as its own before the server that was
    given it binds: a test's server then fails with "address already in use".
    Ports below that range are only ever bound on purpose, and a reservation
    file keeps two processes from being handed the same one.
    """
    PORT_RESERVATIONS.mkdir(exist_ok=True)
    stale = time.time() - 86400
    for old in PORT_RESERVATIONS.iterdir():
        try:
            if old.stat().st_mtime < stale:
                old.unlink()
        except FileNotFoundError:
            pass  # another process cleaned it first
    for _ in range(1000):
        port = random.randint(15000, _ephemeral_low() - 1)
        try:
            os.close(os.open(PORT_RESERVATIONS / str(port), os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port below the ephemeral range")


# The test server's password: quotes, a backslash and a space, so that every path that
# passes it on (libpq, dbt's profile, Airflow's and Superset's URIs) is tried with them.
PG_PASSWORD = "s3cr3t-'quote\\back slash-pw-" + secrets.token_urlsafe(6)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    # A password over TCP, as the project's own embedded server asks for one.
    server = EmbeddedPostgres(
        pgdata=tmp_path_factory.mktemp("pg") / "data", port=free_port(), password=PG_PASSWORD
    )
    server.start()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedMongo]:
    server = EmbeddedMongo(data_dir=tmp_path_factory.mktemp("mongo") / "data", port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def warehouse(pg_server: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh warehouse database; WAREHOUSE_* point at it. Yields its conninfo."""
    name = f"wh_{uuid.uuid4().hex[:10]}"
    pg_server.ensure_database(name)
    for key, value in {
        "WAREHOUSE_HOST": pg_server.host,
        "WAREHOUSE_PORT": str(pg_server.port),
        "WAREHOUSE_USER": pg_server.superuser,
        "WAREHOUSE_PASSWORD": pg_server.password or "",
        "WAREHOUSE_DB": name,
    }.items():
        monkeypatch.setenv(key, value)
    yield pg_server.conninfo(name)
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def mongo_db(mongo_server: EmbeddedMongo, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """A fresh app database; MONGO_URI / MONGO_DB point at it."""
    name = f"app_{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("MONGO_URI", mongo_server.uri)
    monkeypatch.setenv("MONGO_DB", name)
    client: MongoClient = MongoClient(mongo_server.uri)
    yield client[name]
    client.drop_database(name)
    client.close()


@pytest.fixture
def oltp(pg_server: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh OLTP (order system) database with its schema; OLTP_* point at it.

    Yields its conninfo. It lives on the same server as the test's warehouse,
    as the embedded default does, but in its own database.
    """
    from datagen.oltp_schema import create_schema

    name = f"oltp_{uuid.uuid4().hex[:10]}"
    pg_server.ensure_database(name)
    for key, value in {
        "OLTP_HOST": pg_server.host,
        "OLTP_PORT": str(pg_server.port),
        "OLTP_USER": pg_server.superuser,
        "OLTP_PASSWORD": pg_server.password or "",
        "OLTP_DB": name,
    }.items():
        monkeypatch.setenv(key, value)
    with psycopg.connect(pg_server.conninfo(name)) as conn:
        create_schema(conn)
    yield pg_server.conninfo(name)
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def kafka_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedKafka]:
    server = EmbeddedKafka(state_dir=tmp_path_factory.mktemp("kafka"), port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def kafka_topic(kafka_server: EmbeddedKafka, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh topic name on the session's broker; KAFKA_* point at it (not created yet)."""
    topic = f"new_users_{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_server.bootstrap_servers)
    monkeypatch.setenv("KAFKA_NEW_USERS_TOPIC", topic)
    monkeypatch.setenv("KAFKA_PARTITIONS", "3")
    return topic


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedClickHouse]:
    """The project's ClickHouse HTTP server over chdb, on a free port, no password."""
    server = EmbeddedClickHouse(
        data_dir=tmp_path_factory.mktemp("clickhouse") / "data", port=free_port()
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def clickhouse_db(
    clickhouse_server: EmbeddedClickHouse, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ClickHouseSettings]:
    """A database of this test's own on the session's ClickHouse; CLICKHOUSE_* point at it.

    Not created here: the code under test creates it (``events_writer.client``).
    Dropped afterwards, with the databases a ``dbt build --target clickhouse``
    made (under the DBT_SCHEMA_PREFIX in effect).
    """
    database = f"t_events_{uuid.uuid4().hex[:10]}"
    for name, value in {
        "CLICKHOUSE_HOST": clickhouse_server.host,
        "CLICKHOUSE_PORT": str(clickhouse_server.port),
        "CLICKHOUSE_USER": "default",
        "CLICKHOUSE_PASSWORD": "",
        "CLICKHOUSE_DB": database,
        "CLICKHOUSE_SECURE": "false",
    }.items():
        monkeypatch.setenv(name, value)
    yield ClickHouseSettings.from_env()
    admin = clickhouse_connect.get_client(host=clickhouse_server.host, port=clickhouse_server.port)
    # And the databases dbt built the events models in (--target clickhouse):
    # server-wide, unlike the warehouse's schemas in the test's own database.
    prefix = os.environ.get("DBT_SCHEMA_PREFIX", "")
    for name in (database, *(prefix + s for s in ("staging", "intermediate", "marts", "audit"))):
        admin.command(f"DROP DATABASE IF EXISTS `{name}`")
    admin.close()


@pytest.fixture
def local_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep run logs of the code under test out of the project tree."""
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "local"))
    monkeypatch.setenv("EMBEDDED_SERVICES", "none")
    return tmp_path / "local"


SALES_KEY = "test-key"
SALES_START = "2026-10-01"


@pytest.fixture(scope="session")
def sales_server(  # the project's own sales API, a real HTTP server on a free port
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EmbeddedSalesApi]:
    server = EmbeddedSalesApi(
        state_dir=tmp_path_factory.mktemp("sales-api"),
        port=free_port(),
        env={"SALES_API_KEY": SALES_KEY, "SALES_API_REPORT_SECONDS": "0.3", "DATAGEN_SCALE": "0.05",
             "DATAGEN_SEED": "42", "DATAGEN_START_DATE": SALES_START},
    )  # fmt: skip
    server.start()
    yield server
    server.stop()


def set_faults(server: EmbeddedSalesApi, report_seconds: float = 0.3, **faults) -> None:
    """Make the server misbehave on purpose (see datagen/sales_api_server.py's Faults)."""
    body = {"faults": faults, "report_seconds": report_seconds}
    httpx.post(
        f"{server.url}/_faults", json=body, headers={"X-API-KEY": SALES_KEY}
    ).raise_for_status()


@pytest.fixture
def api(
    sales_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EmbeddedSalesApi]:
    """The session's sales API with no faults; SALES_API_* and the file storage point at it."""
    for key, value in {
        "SALES_API_URL": sales_server.url, "SALES_API_KEY": SALES_KEY,
        "SALES_API_POLL_SECONDS": "0.1",
        "SALES_API_DEADLINE_SECONDS": "10", "SALES_API_TIMEOUT_SECONDS": "2",
        "SALES_API_ATTEMPTS": "3", "SALES_API_BACKOFF_SECONDS": "0.05",
        "SALES_STORAGE_DIR": str(tmp_path / "sales"),
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    set_faults(sales_server)
    yield sales_server
    set_faults(sales_server)


def pytest_configure(config: pytest.Config) -> None:
    # dbt and the loaders must never fall back to a developer's running services.
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    # The tests build on the dev target, unprefixed, whatever a developer's .env
    # says (a test that needs a prefix or another target sets it itself).
    os.environ["DBT_TARGET"] = "dev"
    os.environ.pop("DBT_SCHEMA_PREFIX", None)
    # dbt writes every statement and event to logs/dbt.log at debug level: a
    # fourteenth of its time on a build here, for a file no test reads but the
    # one that sets it back (tests/dbt/test_orders_marts.py).
    os.environ["DBT_LOG_LEVEL_FILE"] = "none"
