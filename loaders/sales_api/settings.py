"""The partner sales API's settings (``SALES_API_*``, ``SALES_STORAGE_DIR``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import SecretStr

from config.base import URI_WITH_PASSWORD, BaseUrl, Settings, setting
from config.settings import LocalSettings, anchored


class SalesApiSettings(Settings):
    """The partner sales API: where it is, and how patiently to wait for it."""

    section: ClassVar[str] = "Partner sales API (source: daily sales increments)"

    url: BaseUrl = setting(
        "SALES_API_URL",
        "http://127.0.0.1:8090",
        "its base URL",
        json_schema_extra=URI_WITH_PASSWORD,
    )
    api_key: SecretStr = setting("SALES_API_KEY", SecretStr("local-dev-key"), "its X-API-KEY")
    # Between report status checks (the specified interval is 10 s).
    poll_seconds: float = setting(
        "SALES_API_POLL_SECONDS", 1.0, "between report status checks", gt=0
    )
    deadline_seconds: float = setting(
        "SALES_API_DEADLINE_SECONDS", 300.0, "give up on a report not ready by then", gt=0
    )
    timeout_seconds: float = setting("SALES_API_TIMEOUT_SECONDS", 30.0, "per request", gt=0)
    attempts: int = setting(
        "SALES_API_ATTEMPTS", 5, "per request, on 5xx and timeouts, with backoff", ge=1
    )
    backoff_seconds: float = setting(
        "SALES_API_BACKOFF_SECONDS", 1.0, "the first wait between attempts; it doubles", ge=0
    )
    report_seconds: float = setting(
        "SALES_API_REPORT_SECONDS", 2.0, "the embedded API's report preparation time", ge=0
    )
    storage: Path | None = setting(
        "SALES_STORAGE_DIR",
        None,
        "where increments are saved (date=YYYY-MM-DD folders); default DATA_DIR/sales_api",
    )

    @property
    def storage_dir(self) -> Path:
        return anchored(self.storage) or LocalSettings.from_env().data_dir / "sales_api"
