"""Warehouse connections with one clear line when something goes wrong."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from config import WarehouseSettings, advice, redact


class LoaderError(RuntimeError):
    """A load cannot proceed; the message is the one line shown to the user."""

    def __init__(self, message: str):
        super().__init__(redact(message))


def first_line(exc: BaseException) -> str:
    """The driver's own reason, in one line (psycopg errors span several)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


# What a server that answered says when it refuses the login or the database:
# the hint is then about the settings, not about starting the server.
_REFUSED = re.compile(
    r"password authentication failed|role \S+ does not exist|no pg_hba\.conf entry"
    r"|authentication failed|database \S+ does not exist|permission denied for database"
    r"|no password supplied"
)


def connect_failure(
    where: str, exc: psycopg.OperationalError, hint: str, variables: str = "WAREHOUSE_*"
) -> LoaderError:
    """One line for a PostgreSQL server that cannot be reached, or that refused the login
    (libpq's reason is last)."""
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1].strip()
    if (exc.sqlstate or "").startswith(("28", "3D")) or _REFUSED.search(str(exc)):
        hint = (
            f"the server is up and refused it: check the user, password and database in {variables}"
        )
    return LoaderError(f"cannot connect to {where}: {reason} ({hint})")


@contextmanager
def connect(settings: WarehouseSettings, hint: str | None = None) -> Iterator[psycopg.Connection]:
    """A warehouse connection; connection failures, now or mid-load, are one LoaderError line.

    ``hint`` says what to do when the server cannot be reached (it depends on
    whether the project runs the server itself).
    """
    hint = hint or advice("postgres", "WAREHOUSE_*")
    try:
        conn = psycopg.connect(settings.conninfo())
    except psycopg.OperationalError as exc:
        raise connect_failure(f"the warehouse at {settings.describe()}", exc, hint) from None
    try:
        yield conn
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        # The server went away (restart, network, admin kill) in the middle of
        # a load. Committed batches stay; the next run resumes after them.
        raise LoaderError(
            f"lost the connection to the warehouse at {settings.describe()} during the load: "
            f"{first_line(exc)}; committed batches are kept, rerun to resume"
        ) from None
    except psycopg.Error as exc:
        # Anything else the server refuses (a missing privilege, a table dropped
        # under a load): one line, and the transaction in flight is rolled back.
        raise LoaderError(
            f"the warehouse at {settings.describe()} refused the load: {first_line(exc)}"
        ) from None
    finally:
        conn.close()
