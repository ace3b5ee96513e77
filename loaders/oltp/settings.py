"""The order system's OLTP PostgreSQL settings (``OLTP_*``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr

from config.base import setting
from config.settings import PostgresSettings


class OltpSettings(PostgresSettings):
    """The order system's OLTP PostgreSQL: a source, read-only for the loader.

    Locally a separate database (``oltp``) on the embedded PostgreSQL server;
    ``OLTP_*`` point at a real one (use a replica or a read-only user).
    """

    section: ClassVar[str] = "Order system: OLTP PostgreSQL (source, read by the loader)"

    # Default: the warehouse's server (the embedded one locally).
    host: str = setting(("OLTP_HOST", "WAREHOUSE_HOST"), "127.0.0.1", "its host")
    port: int = setting(("OLTP_PORT", "WAREHOUSE_PORT"), 54329, "its port")
    user: str = setting("OLTP_USER", "postgres", "a read-only user for a real system")
    password: SecretStr = setting(
        "OLTP_PASSWORD",
        SecretStr(""),
        "that user's password; empty, on the embedded server: the one it generated",
    )
    dbname: str = setting("OLTP_DB", "oltp", "the order system's database")
    sslmode: str = setting("OLTP_SSLMODE", "prefer", "libpq's sslmode")
