"""Settings from the environment: secrets reach servers unchanged and never reach messages."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from config import PROJECT_ROOT, WarehouseSettings, mask_uri_password, redact
from loaders.core.warehouse import LoaderError, connect
from loaders.mongo.settings import MongoSettings

# Quote, backslash, space, double quote and equals: everything a conninfo string escapes.
PASSWORD = 'it\'s a \\ "hard" = one'


@pytest.fixture(scope="module")
def password_user(pg_server) -> str:
    """A role that must authenticate with PASSWORD (scram), on the session's test server."""
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
        conn.execute("drop role if exists pw_user")
        conn.execute(
            psycopg.sql.SQL("create role pw_user login password {}").format(
                psycopg.sql.Literal(PASSWORD)
            )
        )
    hba = pg_server.pgdata / "pg_hba.conf"
    original = hba.read_text()
    hba.write_text("host all pw_user 127.0.0.1/32 scram-sha-256\n" + original)
    pg_server._run("pg_ctl", "-D", str(pg_server.pgdata), "reload")
    yield "pw_user"
    hba.write_text(original)
    pg_server._run("pg_ctl", "-D", str(pg_server.pgdata), "reload")


def settings(pg_server, password: str) -> WarehouseSettings:
    return WarehouseSettings(
        host=pg_server.host, port=pg_server.port, user="pw_user", password=password,
        dbname="postgres", sslmode="disable",
    )  # fmt: skip


def test_a_password_with_quotes_and_backslashes_reaches_the_server_unchanged(
    pg_server, password_user
) -> None:
    with connect(settings(pg_server, PASSWORD)) as conn:
        assert conn.execute("select current_user").fetchone()[0] == "pw_user"
    # A password that differs by one character is refused: nothing was "fixed" on the way.
    with (
        pytest.raises(LoaderError, match="password authentication failed"),
        connect(settings(pg_server, PASSWORD.replace("\\", ""))),
    ):
        pass


def test_a_refused_password_is_not_printed(pg_server, password_user, monkeypatch) -> None:
    wrong = "wr0ng'pass\\word"
    monkeypatch.setenv("WAREHOUSE_PASSWORD", wrong)
    with pytest.raises(LoaderError) as caught, connect(settings(pg_server, wrong)):
        pass
    assert wrong not in str(caught.value) and "pass\\word" not in str(caught.value)
    assert "make up" not in str(caught.value)


def test_the_cli_never_prints_the_password(pg_server, password_user, mongo_db, monkeypatch) -> None:
    env = {"WAREHOUSE_HOST": pg_server.host, "WAREHOUSE_PORT": str(pg_server.port),
           "WAREHOUSE_USER": "pw_user", "WAREHOUSE_PASSWORD": "wrong-" + PASSWORD,
           "WAREHOUSE_DB": "postgres"}  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    proc = subprocess.run(
        [sys.executable, "-m", "loaders", "mongo"],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "password authentication failed" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "hard" not in proc.stdout + proc.stderr
    # The server is up: the hint is about the settings, not about starting it.
    assert "make up" not in proc.stderr and "check the user, password and database" in proc.stderr


def test_a_mongo_uri_password_is_masked_in_errors(monkeypatch) -> None:
    from loaders.mongo.client import mongo_database

    uri = "mongodb://app:s3cr3t-pw@127.0.0.1:1/?authSource=admin"
    monkeypatch.setenv("MONGO_URI", uri)
    with pytest.raises(LoaderError) as caught:
        mongo_database(MongoSettings.from_env())
    assert "s3cr3t-pw" not in str(caught.value)
    assert "mongodb://app:***@127.0.0.1:1" in str(caught.value)


def test_redact_masks_every_configured_secret(monkeypatch) -> None:
    monkeypatch.setenv("SALES_API_KEY", "key-123456")
    monkeypatch.setenv("MONGO_URI", "mongodb://u:pw-789@h:1")
    assert redact("got key-123456 and pw-789") == "got *** and ***"
    assert mask_uri_password("mongodb://h:1/db") == "mongodb://h:1/db"
