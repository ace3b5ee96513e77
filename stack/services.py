"""Start, stop and report the embedded services that EMBEDDED_SERVICES names.

A service left out of EMBEDDED_SERVICES is expected to be a real server that
WAREHOUSE_* / OLTP_* / MONGO_URI / SALES_API_URL / KAFKA_BOOTSTRAP_SERVERS point
at; we only check that it answers. The embedded PostgreSQL server holds both the
warehouse and the order system's OLTP database (when OLTP_* point at it).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlparse

import httpx
import psycopg

from config import (
    ClickHouseSettings,
    KafkaSettings,
    LocalSettings,
    MongoSettings,
    OltpSettings,
    SalesApiSettings,
    WarehouseSettings,
    mask_uri_password,
)
from loaders.core.warehouse import LoaderError, connect, first_line
from loaders.mongo.client import mongo_database
from stack.embedded_clickhouse import EmbeddedClickHouse
from stack.embedded_kafka import EmbeddedKafka
from stack.embedded_mongo import EmbeddedMongo
from stack.embedded_postgres import EmbeddedPostgres, ServiceError
from stack.embedded_sales_api import EmbeddedSalesApi
from stack.superset import Superset
from stack.superset import stop as stop_superset


def embedded_postgres(local: LocalSettings, wh: WarehouseSettings) -> EmbeddedPostgres:
    return EmbeddedPostgres(pgdata=local.data_dir / "postgres" / "data", port=wh.port, host=wh.host)


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
        env={"SALES_API_KEY": api.api_key},
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
        password=ch.password,
    )


def _oltp_is_embedded(local: LocalSettings, wh: WarehouseSettings, oltp: OltpSettings) -> bool:
    """The OLTP database lives on the embedded server when OLTP_* point at it."""
    return "postgres" in local.embedded and (oltp.host, oltp.port) == (wh.host, wh.port)


def up() -> list[str]:
    """Start every embedded service, create the warehouse database; return status lines."""
    local, wh, mongo = (
        LocalSettings.from_env(),
        WarehouseSettings.from_env(),
        MongoSettings.from_env(),
    )
    local.logs_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    if "postgres" in local.embedded:
        pg = embedded_postgres(local, wh)
        pg.start()
        pg.ensure_database(wh.dbname)
        lines.append(f"postgres  embedded  {wh.describe()}  data: {pg.pgdata}")
        oltp = OltpSettings.from_env()
        if _oltp_is_embedded(local, wh, oltp):
            pg.ensure_database(oltp.dbname)
            lines.append(f"oltp      embedded  {oltp.describe()}  (same server)")
    if "mongo" in local.embedded:
        mg = embedded_mongo(local, mongo)
        mg.start()
        lines.append(f"mongo     embedded  {mg.uri}/{mongo.database}  data: {mg.data_dir}")
    if "sales_api" in local.embedded:
        api = embedded_sales_api(local, SalesApiSettings.from_env())
        api.start()
        lines.append(f"sales_api embedded  {api.url}  log: {api.log_file}")
    if "kafka" in local.embedded:
        broker = embedded_kafka(local, KafkaSettings.from_env())
        broker.start()
        lines.append(
            f"kafka     embedded  {broker.bootstrap_servers}  (memory storage)  "
            f"log: {broker.log_file}"
        )
    if "clickhouse" in local.embedded:
        ch = embedded_clickhouse(local, ClickHouseSettings.from_env())
        ch.start()
        lines.append(f"clickhouse embedded  {ch.url}  (chdb)  data: {ch.data_dir}")
    check_reachable(wh, mongo)
    return lines


def down() -> list[str]:
    local, wh, mongo = (
        LocalSettings.from_env(),
        WarehouseSettings.from_env(),
        MongoSettings.from_env(),
    )
    lines = []
    if stop_superset(Superset.from_env()):  # `make dashboards`, if it is running
        lines.append("superset  stopped")
    if "postgres" in local.embedded:
        embedded_postgres(local, wh).stop()
        lines.append("postgres  stopped")
    if "mongo" in local.embedded:
        embedded_mongo(local, mongo).stop()
        lines.append("mongo     stopped")
    if "sales_api" in local.embedded:
        embedded_sales_api(local, SalesApiSettings.from_env()).stop()
        lines.append("sales_api stopped")
    if "kafka" in local.embedded:
        embedded_kafka(local, KafkaSettings.from_env()).stop()
        lines.append("kafka     stopped (its topics were in memory)")
    if "clickhouse" in local.embedded:
        embedded_clickhouse(local, ClickHouseSettings.from_env()).stop()
        lines.append("clickhouse stopped")
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


def _answers(check: Callable[[], None]) -> str:
    try:
        check()
        return "up"
    except LoaderError:
        return "down"


def _http_answers(url: str) -> bool:
    """A real partner API has no /health: any HTTP answer at its URL means it is up."""
    try:
        httpx.get(url, timeout=5)
        return True
    except httpx.HTTPError:
        return False


def status() -> tuple[list[str], bool]:
    """One line per service, and whether every one of them answers."""
    local, wh, mongo = (
        LocalSettings.from_env(),
        WarehouseSettings.from_env(),
        MongoSettings.from_env(),
    )
    pg_state = "embedded" if "postgres" in local.embedded else "external"
    mg_state = "embedded" if "mongo" in local.embedded else "external"
    pg_up = _answers(lambda: _check_warehouse(wh))
    mg_up = _answers(lambda: _check_mongo(mongo))
    api_settings = SalesApiSettings.from_env()
    api_state = "embedded" if "sales_api" in local.embedded else "external"
    if "sales_api" in local.embedded:
        api_up = "up" if embedded_sales_api(local, api_settings).is_running() else "down"
    else:
        api_up = "up" if _http_answers(api_settings.url) else "down"
    oltp, kafka = OltpSettings.from_env(), KafkaSettings.from_env()
    oltp_state = "embedded" if _oltp_is_embedded(local, wh, oltp) else "external"
    oltp_up = _answers(lambda: _check_oltp(oltp))
    kafka_state = "embedded" if "kafka" in local.embedded else "external"
    kafka_up = _answers(lambda: _check_kafka(kafka))
    ch = ClickHouseSettings.from_env()
    ch_state = "embedded" if "clickhouse" in local.embedded else "external"
    ch_up = "up" if _clickhouse_answers(ch) else "down"
    lines = [
        f"postgres  {pg_state:<8}  {pg_up:<4}  {wh.describe()}",
        f"oltp      {oltp_state:<8}  {oltp_up:<4}  {oltp.describe()}",
        f"mongo     {mg_state:<8}  {mg_up:<4}  {mongo.describe()}/{mongo.database}",
        f"sales_api {api_state:<8}  {api_up:<4}  {mask_uri_password(api_settings.url)}",
        f"kafka     {kafka_state:<8}  {kafka_up:<4}  {kafka.bootstrap_servers}  "
        f"topic {kafka.topic}",
        f"clickhouse {ch_state:<7}  {ch_up:<4}  {ch.describe()}",
    ]
    states = (pg_up, oltp_up, mg_up, api_up, kafka_up, ch_up)
    return lines, all(state == "up" for state in states)
