"""The MongoDB app database's settings (``MONGO_*``)."""

from __future__ import annotations

from typing import ClassVar

from config.base import URI_WITH_PASSWORD, Settings, setting
from config.settings import mask_uri_password


class MongoSettings(Settings):
    """The MongoDB app database (a source)."""

    section: ClassVar[str] = "MongoDB app database (source)"

    uri: str = setting(
        "MONGO_URI",
        "mongodb://127.0.0.1:27117",
        "its connection string (a password in it is masked in messages)",
        json_schema_extra=URI_WITH_PASSWORD,
    )
    database: str = setting("MONGO_DB", "app", "the app's database")

    def describe(self) -> str:
        """The URI with any password masked, for messages."""
        return mask_uri_password(self.uri)
