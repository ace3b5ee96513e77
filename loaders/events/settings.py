"""The events' ClickHouse settings (``CLICKHOUSE_*``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr

from config.base import Settings, setting


class ClickHouseSettings(Settings):
    """ClickHouse (the feed and messenger events' store), over its HTTP interface.

    Locally the project's own small HTTP server over the chdb engine
    (``stack/embedded_clickhouse.py``); ``CLICKHOUSE_*`` point at a real server.
    """

    section: ClassVar[str] = "ClickHouse: the feed and messenger events, over HTTP"

    host: str = setting("CLICKHOUSE_HOST", "127.0.0.1", "its host")
    port: int = setting("CLICKHOUSE_PORT", 18123, "its HTTP port (8443 for HTTPS on most)")
    user: str = setting("CLICKHOUSE_USER", "default", "the user")
    password: SecretStr = setting("CLICKHOUSE_PASSWORD", SecretStr(""), "its password")
    database: str = setting("CLICKHOUSE_DB", "events", "the events' database")
    secure: bool = setting("CLICKHOUSE_SECURE", False, "HTTPS (ClickHouse Cloud, managed servers)")

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.host}:{self.port}"

    def describe(self) -> str:
        """Where the server is, without the password, for messages."""
        return f"{self.url} (user {self.user}, database {self.database})"
