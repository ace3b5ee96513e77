"""Keep secrets out of every message the project prints.

Error texts from drivers can quote a connection string or a URL; before a
message reaches the console or a log, every configured secret in it is masked.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

# Variables whose whole value is a secret, and URIs that may carry a password.
SECRET_VARIABLES = (
    "WAREHOUSE_PASSWORD",
    "SALES_API_KEY",
    "TELEGRAM_BOT_TOKEN",
    "OLTP_PASSWORD",
    "KAFKA_SASL_PASSWORD",
    "CLICKHOUSE_PASSWORD",
    "AIRFLOW_ADMIN_PASSWORD",
    "SUPERSET_ADMIN_PASSWORD",
    "SUPERSET_SECRET_KEY",
)
URI_VARIABLES = ("MONGO_URI", "SALES_API_URL", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
MASK = "***"


def _secrets() -> list[str]:
    values = [os.environ.get(name, "") for name in SECRET_VARIABLES]
    for name in URI_VARIABLES:
        try:
            values.append(urlsplit(os.environ.get(name, "")).password or "")
        except ValueError:
            continue
    # Longest first, so a secret containing another is masked whole. One- and
    # two-character "secrets" are left alone: masking them would garble every
    # message and protect nothing.
    return sorted({v for v in values if len(v) >= 3}, key=len, reverse=True)


def redact(message: str) -> str:
    """``message`` with every configured secret replaced by ``***``."""
    for secret in _secrets():
        message = message.replace(secret, MASK)
    return message
