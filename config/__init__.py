"""The project's configuration: settings read from the environment, and secret masking."""

from config.secrets import redact
from config.settings import (
    DBT_PROJECT_DIR,
    PROFILES_DIR,
    PROJECT_ROOT,
    AirflowSettings,
    ClickHouseSettings,
    ConfigError,
    DatagenSettings,
    DbtSettings,
    KafkaSettings,
    LoaderSettings,
    LocalSettings,
    MongoSettings,
    OltpSettings,
    SalesApiSettings,
    WarehouseSettings,
    advice,
    mask_uri_password,
)

__all__ = [
    "DBT_PROJECT_DIR",
    "PROFILES_DIR",
    "PROJECT_ROOT",
    "AirflowSettings",
    "ClickHouseSettings",
    "ConfigError",
    "DatagenSettings",
    "DbtSettings",
    "KafkaSettings",
    "LoaderSettings",
    "LocalSettings",
    "MongoSettings",
    "OltpSettings",
    "SalesApiSettings",
    "WarehouseSettings",
    "advice",
    "mask_uri_password",
    "redact",
]
