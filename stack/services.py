"""Start, stop and report the embedded services that EMBEDDED_SERVICES names.

A service left out of EMBEDDED_SERVICES is expected to be a real server that
WAREHOUSE_* / MONGO_URI point at; we only check that it answers.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlparse

import httpx

from config import (
    LocalSettings,
    MongoSettings,
    SalesApiSettings,
    WarehouseSettings,
    mask_uri_password,
)
from loaders.core.warehouse import LoaderError, connect
from loaders.mongo.client import mongo_database
from stack.embedded_mongo import EmbeddedMongo
from stack.embedded_postgres import EmbeddedPostgres, ServiceError
from stack.embedded_sales_api import EmbeddedSalesApi


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
    lines = [
        f"postgres  {pg_state:<8}  {pg_up:<4}  {wh.describe()}",
        f"mongo     {mg_state:<8}  {mg_up:<4}  {mongo.describe()}/{mongo.database}",
        f"sales_api {api_state:<8}  {api_up:<4}  {mask_uri_password(api_settings.url)}",
    ]
    return lines, all(state == "up" for state in (pg_up, mg_up, api_up))
