"""Fixtures for the OLTP loader's tests: the source database as a connection, other encodings."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from datagen.oltp_schema import create_schema
from stack.embedded_postgres import EmbeddedPostgres


@pytest.fixture(autouse=True)
def keyset_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    """Most tests here pin the keyset mode's rules; the change capture's tests set ``cdc``."""
    monkeypatch.setenv("OLTP_CAPTURE", "keyset")


@pytest.fixture
def src(oltp: str) -> Iterator[psycopg.Connection]:
    """An autocommit session on the test's OLTP database (UTC), to write source rows with SQL."""
    with psycopg.connect(oltp, autocommit=True) as conn:
        conn.execute("set timezone to 'UTC'")
        yield conn


@pytest.fixture
def oltp_encoded(
    pg_server: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], psycopg.Connection]]:
    """A factory: a fresh OLTP database in the given server encoding (SQL_ASCII, LATIN1, ...).

    OLTP_* point at it; returns an autocommit session on it.
    """
    created: list[tuple[str, psycopg.Connection]] = []

    def make(encoding: str) -> psycopg.Connection:
        name = f"oltp_{encoding.lower()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(pg_server.conninfo(), autocommit=True) as admin:
            admin.execute(
                f"create database \"{name}\" encoding '{encoding}' locale 'C' template template0"
            )
        for key, value in {
            "OLTP_HOST": pg_server.host,
            "OLTP_PORT": str(pg_server.port),
            "OLTP_USER": pg_server.superuser,
            "OLTP_PASSWORD": pg_server.password or "",
            "OLTP_DB": name,
        }.items():
            monkeypatch.setenv(key, value)
        conn = psycopg.connect(pg_server.conninfo(name), autocommit=True)
        create_schema(conn)
        conn.autocommit = True
        conn.execute("set timezone to 'UTC'")
        created.append((name, conn))
        return conn

    yield make
    for name, conn in created:
        conn.close()
        with psycopg.connect(pg_server.conninfo(), autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')
