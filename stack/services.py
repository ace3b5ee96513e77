"""Start, stop and report the embedded services that EMBEDDED_SERVICES names.

A service left out of EMBEDDED_SERVICES is expected to be a real server that
WAREHOUSE_* / OLTP_* / MONGO_URI / SALES_API_URL / KAFKA_BOOTSTRAP_SERVERS point
at; we only check that it answers. The embedded PostgreSQL server holds both the
warehouse and the order system's OLTP database (when OLTP_* point at it).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import httpx
import psycopg

from config import LocalSettings, WarehouseSettings, mask_uri_password
from config.settings import EMBEDDED_POSTGRES_PASSWORD_FILE
from loaders.core.warehouse import LoaderError, connect, first_line
from loaders.events.settings import ClickHouseSettings
from loaders.kafka.settings import KafkaSettings
from loaders.mongo.client import mongo_database
from loaders.mongo.settings import MongoSettings
from loaders.oltp.settings import OltpSettings
from loaders.sales_api.settings import SalesApiSettings
from pipelines import SOURCES
from stack.embedded_clickhouse import EmbeddedClickHouse
from stack.embedded_kafka import EmbeddedKafka
from stack.embedded_mongo import EmbeddedMongo
from stack.embedded_postgres import EmbeddedPostgres, ServiceError
from stack.embedded_sales_api import EmbeddedSalesApi
from stack.superset import Superset
from stack.superset import stop as stop_superset


def embedded_postgres(local: LocalSettings, wh: WarehouseSettings) -> EmbeddedPostgres:
    """The embedded server, asking for WAREHOUSE_PASSWORD, or for the one it generated."""
    password = wh.password.get_secret_value() or generated_password(local)
    return EmbeddedPostgres(
        pgdata=local.data_dir / "postgres" / "data", port=wh.port, host=wh.host, password=password
    )


def generated_password(local: LocalSettings) -> str:
    """The embedded PostgreSQL's password when .env sets none: made once, kept 0600.

    Written whole under another name, then linked into place: a start at the same
    time (make run beside make airflow) finds either no file or the whole password,
    never an empty one.
    """
    path = local.data_dir / "postgres" / EMBEDDED_POSTGRES_PASSWORD_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, draft = tempfile.mkstemp(dir=path.parent, prefix=".password-")  # mode 0600
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_urlsafe(18) + "\n")
                file.flush()
                os.fsync(file.fileno())
            with contextlib.suppress(FileExistsError):  # the other start's is kept
                os.link(draft, path)
        finally:
            os.unlink(draft)
    password = path.read_text().strip()
    if not password:
        raise ServiceError(
            f"{path} is empty: delete it and set the password again, or set WAREHOUSE_PASSWORD"
        )
    return password


def embedded_mongo(local: LocalSettings, mongo: MongoSettings) -> EmbeddedMongo:
    parsed = urlparse(mongo.uri)
    return EmbeddedMongo(
        data_dir=local.data_dir / "mongo" / "data",
        port=parsed.port or 27017,
        host=parsed.hostname or "127.0.0.1",
    )


def embedded_sales_api(local: LocalSettings, api: SalesApiSettings) -> EmbeddedSalesApi:
    parsed = urlparse(api.url)
    return EmbeddedSalesApi(
        state_dir=local.data_dir / "sales_api",
        port=parsed.port or 80,
        host=parsed.hostname or "127.0.0.1",
        env={"SALES_API_KEY": api.api_key.get_secret_value()},
    )


def embedded_kafka(local: LocalSettings, kafka: KafkaSettings) -> EmbeddedKafka:
    host, _, port = kafka.bootstrap_servers.split(",")[0].rpartition(":")
    return EmbeddedKafka(
        state_dir=local.data_dir / "kafka", port=int(port or 9092), host=host or "127.0.0.1"
    )


def embedded_clickhouse(local: LocalSettings, ch: ClickHouseSettings) -> EmbeddedClickHouse:
    return EmbeddedClickHouse(
        data_dir=local.data_dir / "clickhouse" / "data",
        port=ch.port,
        host=ch.host,
        user=ch.user,
        password=ch.password.get_secret_value(),
    )


def _oltp_is_embedded(local: LocalSettings, wh: WarehouseSettings, oltp: OltpSettings) -> bool:
    """The OLTP database lives on the embedded server when OLTP_* point at it."""
    return "postgres" in local.embedded and (oltp.host, oltp.port) == (wh.host, wh.port)


@dataclass(frozen=True)
class Server:
    """A server the sources need: embedded here (EMBEDDED_SERVICES names it), or a real
    one its settings point at, which is only probed."""

    name: str  # the EMBEDDED_SERVICES name, and the status line's
    embedded: Callable[[LocalSettings], Any]  # the embedded server: start(), stop(), is_running()
    started: Callable[[Any], str]  # where it runs, and its data or log (make up)
    address: Callable[[], str]  # where the settings point (make status)
    answers: Callable[[], bool]  # it answers there (make status)
    stopped: str = "stopped"
    # After the embedded server started: its own set-up, and any more lines to say.
    ready: Callable[[Any, LocalSettings], list[str]] = lambda server, local: []


def _postgres_ready(pg: EmbeddedPostgres, local: LocalSettings) -> list[str]:
    """The warehouse database, and the order system's when OLTP_* point at the same server."""
    wh, oltp = WarehouseSettings.from_env(), OltpSettings.from_env()
    pg.ensure_database(wh.dbname)
    # What this process starts next (dbt reads its profile's env_var, Airflow and
    # Superset inherit the environment) gets the server's password.
    if not os.environ.get("WAREHOUSE_PASSWORD"):
        os.environ["WAREHOUSE_PASSWORD"] = pg.password or ""
    if not _oltp_is_embedded(local, wh, oltp):
        return []
    if not os.environ.get("OLTP_PASSWORD"):
        os.environ["OLTP_PASSWORD"] = pg.password or ""
    pg.ensure_database(oltp.dbname)
    return [f"oltp      embedded  {oltp.describe()}  (same server)"]


def _probe(check: Callable[[], None]) -> Callable[[], bool]:
    def answers() -> bool:
        try:
            check()
            return True
        except LoaderError:
            return False

    return answers


# In start order. A source names the ones it reads from (pipelines.SOURCES).
SERVERS: tuple[Server, ...] = (
    Server(
        "postgres",
        lambda local: embedded_postgres(local, WarehouseSettings.from_env()),
        lambda pg: f"{WarehouseSettings.from_env().describe()}  data: {pg.pgdata}",
        lambda: WarehouseSettings.from_env().describe(),
        _probe(lambda: _check_warehouse(WarehouseSettings.from_env())),
        ready=_postgres_ready,
    ),
    Server(
        "mongo",
        lambda local: embedded_mongo(local, MongoSettings.from_env()),
        lambda mg: f"{mg.uri}/{MongoSettings.from_env().database}  data: {mg.data_dir}",
        lambda: f"{MongoSettings.from_env().describe()}/{MongoSettings.from_env().database}",
        _probe(lambda: _check_mongo(MongoSettings.from_env())),
    ),
    Server(
        "sales_api",
        lambda local: embedded_sales_api(local, SalesApiSettings.from_env()),
        lambda api: f"{api.url}  log: {api.log_file}",
        lambda: mask_uri_password(SalesApiSettings.from_env().url),
        lambda: _http_answers(SalesApiSettings.from_env().url),
    ),
    Server(
        "kafka",
        lambda local: embedded_kafka(local, KafkaSettings.from_env()),
        lambda broker: f"{broker.bootstrap_servers}  (memory storage)  log: {broker.log_file}",
        lambda: (
            f"{KafkaSettings.from_env().bootstrap_servers}  topic {KafkaSettings.from_env().topic}"
        ),
        _probe(lambda: _check_kafka(KafkaSettings.from_env())),
        stopped="stopped (its topics were in memory)",
    ),
    Server(
        "clickhouse",
        lambda local: embedded_clickhouse(local, ClickHouseSettings.from_env()),
        lambda ch: f"{ch.url}  (chdb)  data: {ch.data_dir}",
        lambda: ClickHouseSettings.from_env().describe(),
        lambda: _clickhouse_answers(ClickHouseSettings.from_env()),
    ),
)
SERVERS_BY_NAME = {server.name: server for server in SERVERS}


def needed() -> list[Server]:
    """The warehouse's server and every server a source of the registry reads from."""
    names = {"postgres", *(name for source in SOURCES for name in source.servers)}
    return [server for server in SERVERS if server.name in names]


def up() -> list[str]:
    """Start every embedded server, create the warehouse database; return status lines."""
    local = LocalSettings.from_env()
    local.logs_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for server in needed():
        if server.name in local.embedded:
            running = server.embedded(local)
            running.start()
            lines.append(f"{server.name:<9} embedded  {server.started(running)}")
            lines += server.ready(running, local)
    check_reachable(WarehouseSettings.from_env(), MongoSettings.from_env())
    return lines


def down() -> list[str]:
    local = LocalSettings.from_env()
    lines = []
    if stop_superset(Superset.from_env()):  # `make dashboards`, if it is running
        lines.append("superset  stopped")
    for server in SERVERS:
        if server.name in local.embedded:
            server.embedded(local).stop()
            lines.append(f"{server.name:<9} {server.stopped}")
    return lines


def _check_warehouse(wh: WarehouseSettings) -> None:
    with connect(wh):
        pass


def _check_mongo(mongo: MongoSettings) -> None:
    client, _ = mongo_database(mongo)
    client.close()


def check_reachable(wh: WarehouseSettings, mongo: MongoSettings) -> None:
    """Fail with the loaders' one clear line if a configured server does not answer."""
    try:
        _check_warehouse(wh)
        _check_mongo(mongo)
    except LoaderError as exc:
        raise ServiceError(str(exc)) from None


def _check_oltp(oltp: OltpSettings) -> None:
    try:
        psycopg.connect(oltp.conninfo()).close()
    except psycopg.Error as exc:
        raise LoaderError(f"OLTP database at {oltp.describe()}: {first_line(exc)}") from None


def _check_kafka(kafka: KafkaSettings) -> None:
    """A metadata request: the broker speaks Kafka, not only that its port is open."""
    import logging

    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    quiet = logging.getLogger("stack.kafka_probe")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    try:
        AdminClient({**kafka.client_config(), "logger": quiet}).list_topics(timeout=5)
    except KafkaException as exc:
        raise LoaderError(f"Kafka at {kafka.bootstrap_servers}: {exc.args[0]}") from None


def _clickhouse_answers(ch: ClickHouseSettings) -> bool:
    """ClickHouse's own health check: GET /ping answers ``Ok.``."""
    try:
        return httpx.get(f"{ch.url}/ping", timeout=5).text.strip() == "Ok."
    except httpx.HTTPError:
        return False


def _http_answers(url: str) -> bool:
    """A real partner API has no /health: any HTTP answer at its URL means it is up."""
    try:
        httpx.get(url, timeout=5)
        return True
    except httpx.HTTPError:
        return False


def status() -> tuple[list[str], bool]:
    """One line per server (and the OLTP database), and whether every one of them answers."""
    local, wh = LocalSettings.from_env(), WarehouseSettings.from_env()
    oltp = OltpSettings.from_env()
    oltp_up = _probe(lambda: _check_oltp(oltp))()
    oltp_state = "embedded" if _oltp_is_embedded(local, wh, oltp) else "external"
    lines = []
    healthy = oltp_up
    warehouse_up = False
    for server in needed():
        state = "embedded" if server.name in local.embedded else "external"
        up = server.answers()
        healthy = healthy and up
        lines.append(
            f"{server.name:<9} {state:<8}  {'up' if up else 'down':<4}  {server.address()}"
        )
        if server.name == "postgres":
            lines.append(
                f"oltp      {oltp_state:<8}  {'up' if oltp_up else 'down':<4}  {oltp.describe()}"
            )
            if oltp_up:
                lines += _slot_lines(oltp, wh)
            warehouse_up = up
    if warehouse_up:
        from reports.health import health_line

        lines.append(health_line(wh))
    return lines, healthy


def _slot_lines(oltp: OltpSettings, wh: WarehouseSettings) -> list[str]:
    """The order system's replication slot: how far behind, how much WAL it holds."""
    from loaders.oltp.cdc import slot_lag

    try:
        line = slot_lag(oltp, wh.dbname)
    except LoaderError as exc:
        return [f"          {exc}"]
    return [f"          {line}"] if line else []
