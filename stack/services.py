"""Start, stop and report the embedded services that EMBEDDED_SERVICES names.

A service left out of EMBEDDED_SERVICES is expected to be a real server that
WAREHOUSE_* / MONGO_URI point at; we only check that it answers.
"""

from __future__ import annotations

from urllib.parse import urlparse

import psycopg
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from loaders.settings import LocalSettings, MongoSettings, SalesApiSettings, WarehouseSettings
from stack.mongo import EmbeddedMongo
from stack.postgres import EmbeddedPostgres, ServiceError
from stack.sales_api import EmbeddedSalesApi


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
    if "mongo" in local.embedded:
        mg = embedded_mongo(local, mongo)
        mg.start()
        lines.append(f"mongo     embedded  {mg.uri}/{mongo.database}  data: {mg.data_dir}")
    if "sales_api" in local.embedded:
        api = embedded_sales_api(local, SalesApiSettings.from_env())
        api.start()
        lines.append(f"sales_api embedded  {api.url}  log: {api.log_file}")
    check_reachable(wh, mongo)
    return lines


def down() -> list[str]:
    local, wh, mongo = (
        LocalSettings.from_env(),
        WarehouseSettings.from_env(),
        MongoSettings.from_env(),
    )
    lines = []
    if "postgres" in local.embedded:
        embedded_postgres(local, wh).stop()
        lines.append("postgres  stopped")
    if "mongo" in local.embedded:
        embedded_mongo(local, mongo).stop()
        lines.append("mongo     stopped")
    if "sales_api" in local.embedded:
        embedded_sales_api(local, SalesApiSettings.from_env()).stop()
        lines.append("sales_api stopped")
    return lines


def check_reachable(wh: WarehouseSettings, mongo: MongoSettings) -> None:
    """Fail with one clear line if a configured server does not answer."""
    try:
        with psycopg.connect(wh.conninfo()) as conn:
            conn.execute("select 1")
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ServiceError(
            f"cannot reach the warehouse at {wh.describe()}: {first}. "
            "Run `make up` for the embedded server or fix WAREHOUSE_* in .env"
        ) from None
    client: MongoClient = MongoClient(mongo.uri, serverSelectionTimeoutMS=3000)
    try:
        client.admin.command("ping")
    except PyMongoError:
        raise ServiceError(
            f"cannot reach MongoDB at {mongo.uri}. "
            "Run `make up` for the embedded server or fix MONGO_URI in .env"
        ) from None
    finally:
        client.close()


def status() -> list[str]:
    local, wh, mongo = (
        LocalSettings.from_env(),
        WarehouseSettings.from_env(),
        MongoSettings.from_env(),
    )
    pg_state = "embedded" if "postgres" in local.embedded else "external"
    mg_state = "embedded" if "mongo" in local.embedded else "external"
    try:
        with psycopg.connect(wh.conninfo()) as conn:
            conn.execute("select 1")
        pg_up = "up"
    except psycopg.OperationalError:
        pg_up = "down"
    client: MongoClient = MongoClient(mongo.uri, serverSelectionTimeoutMS=1000)
    try:
        client.admin.command("ping")
        mg_up = "up"
    except PyMongoError:
        mg_up = "down"
    finally:
        client.close()
    api_settings = SalesApiSettings.from_env()
    api = embedded_sales_api(local, api_settings)
    api_state = "embedded" if "sales_api" in local.embedded else "external"
    return [
        f"postgres  {pg_state:<8}  {pg_up:<4}  {wh.describe()}",
        f"mongo     {mg_state:<8}  {mg_up:<4}  {mongo.uri}/{mongo.database}",
        f"sales_api {api_state:<8}  {'up' if api.is_running() else 'down':<4}  {api_settings.url}",
    ]
