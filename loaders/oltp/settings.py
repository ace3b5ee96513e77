"""The order system's OLTP settings (``OLTP_*``): the server, and how changes are captured."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import SecretStr

from config.base import Settings, setting
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


class OltpCaptureSettings(Settings):
    """How the loader follows the order system's changes (``OLTP_CAPTURE``, ``OLTP_SLOT*``).

    ``cdc`` reads a logical replication slot (``pgoutput``): every insert, update,
    delete and truncate lands, in commit order, exactly once. It needs a user with
    the REPLICATION attribute that owns the tables (or a superuser), and a server
    with ``wal_level=logical``. ``keyset`` reads rows by their ``updated_at``
    watermark with a lookback: any read-only user, but deletes and updates stamped
    behind the watermark are not seen (see docs/architecture.md).
    """

    section: ClassVar[str] = "Order system: how changes are captured"

    capture: Literal["cdc", "keyset"] = setting(
        "OLTP_CAPTURE", "cdc", "`cdc` (logical replication slot) or `keyset` (updated_at watermark)"
    )
    slot: str = setting(
        "OLTP_SLOT",
        "",
        "the replication slot's name; empty: `dwh_` and the warehouse database's name",
    )
    publication: str = setting(
        "OLTP_PUBLICATION", "dwh_oltp", "the publication of the replicated tables (made if missing)"
    )
    lag_warn_bytes: int = setting(
        "OLTP_SLOT_LAG_WARN_BYTES",
        1 << 30,
        "WAL the slot holds on the source past which a load and `make status` warn",
        gt=0,
    )

    def slot_name(self, warehouse_db: str) -> str:
        """The slot's name: set, or one per warehouse (a slot is one reader's position)."""
        if self.slot:
            return self.slot
        return ("dwh_" + re.sub(r"[^a-z0-9_]", "_", warehouse_db.lower()))[:63]
