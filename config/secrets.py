"""Keep secrets out of every message the project prints.

Error texts from drivers can quote a connection string or a URL; before a
message reaches the console or a log, every configured secret in it is masked.
What is a secret follows from the settings classes: every ``SecretStr`` field,
and the password inside every field marked ``uri_with_password``.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from pydantic import SecretStr

from config.catalog import all_variables

# Airflow's own, not one of the project's settings.
AIRFLOW_URIS = ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",)
MASK = "***"


def secret_variables() -> tuple[list[str], list[str]]:
    """(variables whose whole value is a secret, URI variables that may carry a password)."""
    whole, uris = [], list(AIRFLOW_URIS)
    for var, (cls, name) in all_variables().items():
        field = cls.model_fields[name]
        if field.annotation is SecretStr:
            whole.append(var)
        elif (field.json_schema_extra or {}).get("uri_with_password"):  # type: ignore[union-attr]
            uris.append(var)
    return whole, uris


def _secrets() -> list[str]:
    whole, uris = secret_variables()
    values = [os.environ.get(name, "") for name in whole]
    for name in uris:
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
