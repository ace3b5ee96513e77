"""The project's configuration: settings read from the environment, and secret masking."""

from config.secrets import redact
from config.settings import (
    PROJECT_ROOT,
    ConfigError,
    DatagenSettings,
    LoaderSettings,
    LocalSettings,
    MongoSettings,
    SalesApiSettings,
    WarehouseSettings,
    advice,
    mask_uri_password,
)

__all__ = [
    "PROJECT_ROOT",
    "ConfigError",
    "DatagenSettings",
    "LoaderSettings",
    "LocalSettings",
    "MongoSettings",
    "SalesApiSettings",
    "WarehouseSettings",
    "advice",
    "mask_uri_password",
    "redact",
]
