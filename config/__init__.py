"""The project's configuration: settings read from the environment, and secret masking.

The project's own settings are in ``config.settings``; each source's are beside
its code (``loaders/<source>/settings.py``), and ``config.catalog`` finds them
all. Names are imported on first use, so ``python -m config.env_file`` (which
runs before every make command) does not pay for pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_FROM = {
    "ConfigError": "config.base",
    "Settings": "config.base",
    "redact": "config.secrets",
    **dict.fromkeys(
        (
            "DBT_PROJECT_DIR",
            "PROFILES_DIR",
            "PROJECT_ROOT",
            "AirflowSettings",
            "DatagenSettings",
            "DbtSettings",
            "HealthSettings",
            "LoaderSettings",
            "LocalSettings",
            "ReportSettings",
            "SupersetSettings",
            "WarehouseSettings",
            "advice",
            "mask_uri_password",
        ),
        "config.settings",
    ),
}
__all__ = [
    "DBT_PROJECT_DIR",
    "PROFILES_DIR",
    "PROJECT_ROOT",
    "AirflowSettings",
    "ConfigError",
    "DatagenSettings",
    "DbtSettings",
    "HealthSettings",
    "LoaderSettings",
    "LocalSettings",
    "ReportSettings",
    "Settings",
    "SupersetSettings",
    "WarehouseSettings",
    "advice",
    "mask_uri_password",
    "redact",
]

if TYPE_CHECKING:
    from config.base import ConfigError, Settings
    from config.secrets import redact
    from config.settings import (
        DBT_PROJECT_DIR,
        PROFILES_DIR,
        PROJECT_ROOT,
        AirflowSettings,
        DatagenSettings,
        DbtSettings,
        HealthSettings,
        LoaderSettings,
        LocalSettings,
        ReportSettings,
        SupersetSettings,
        WarehouseSettings,
        advice,
        mask_uri_password,
    )


def __getattr__(name: str) -> Any:
    if name not in _FROM:
        raise AttributeError(f"module 'config' has no attribute {name!r}")
    return getattr(importlib.import_module(_FROM[name]), name)
