"""The embedded PostgreSQL asks for a password over TCP, as a real server does.

Each test starts a real server of its own (DATA_DIR in a temporary folder), as
`make up` starts it: through stack.services.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator

import psycopg
import pytest
from pydantic import SecretStr

from config import LocalSettings, WarehouseSettings
from loaders.core.warehouse import LoaderError, connect
from stack import services
from stack.embedded_postgres import EmbeddedPostgres, ServiceError
from tests.conftest import free_port


@pytest.fixture
def stack_env(tmp_path, monkeypatch) -> Iterator[LocalSettings]:
    """DATA_DIR in tmp_path, the embedded PostgreSQL on a free port, no password set."""
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "local"))
    monkeypatch.setenv("EMBEDDED_SERVICES", "postgres")
    monkeypatch.setenv("WAREHOUSE_PORT", str(free_port()))
    monkeypatch.delenv("WAREHOUSE_PASSWORD", raising=False)
    monkeypatch.delenv("OLTP_PASSWORD", raising=False)
    monkeypatch.setattr(os, "environ", os.environ.copy())  # _postgres_ready exports to it
    local = LocalSettings.from_env()
    yield local
    services.embedded_postgres(local, WarehouseSettings.from_env()).stop()


def start(local: LocalSettings) -> EmbeddedPostgres:
    pg = services.embedded_postgres(local, WarehouseSettings.from_env())
    pg.start()
    services._postgres_ready(pg, local)
    return pg


def refused(wh: WarehouseSettings) -> str:
    with pytest.raises(LoaderError) as caught, connect(wh):
        pass
    return str(caught.value)


def test_a_new_server_generates_its_password_and_refuses_any_other(stack_env) -> None:
    start(stack_env)
    path = stack_env.data_dir / "postgres" / "password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    generated = path.read_text().strip()
    assert len(generated) >= 20

    wh = WarehouseSettings.from_env()  # WAREHOUSE_PASSWORD empty: the generated one
    assert wh.password.get_secret_value() == generated
    with connect(wh) as conn:
        assert conn.execute("select current_user").fetchone() == ("postgres",)
    # What make passes on to dbt and Airflow (they read the variable themselves).
    assert os.environ["WAREHOUSE_PASSWORD"] == generated

    for wrong in ("", "wrong"):
        message = refused(wh.model_copy(update={"password": SecretStr(wrong)}))
        assert "\n" not in message and "make up" not in message
        if wrong:
            assert "password authentication failed" in message
            assert "the server is up and refused it" in message

    # A restart keeps the password; a different WAREHOUSE_PASSWORD is refused, not adopted.
    pg = services.embedded_postgres(stack_env, wh)
    pg.stop()
    start(stack_env)
    assert path.read_text().strip() == generated
    os.environ["WAREHOUSE_PASSWORD"] = "another"
    assert "password authentication failed" in refused(WarehouseSettings.from_env())


def test_a_password_in_env_is_used_and_nothing_is_generated(stack_env) -> None:
    os.environ["WAREHOUSE_PASSWORD"] = "chosen-in-.env"
    start(stack_env)
    assert not (stack_env.data_dir / "postgres" / "password").exists()
    with connect(WarehouseSettings.from_env()) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_a_cluster_an_older_release_made_without_a_password_gets_one(stack_env) -> None:
    wh = WarehouseSettings.from_env()
    # The last release's server: trust over TCP, no password; a table in the warehouse.
    old = EmbeddedPostgres(
        pgdata=stack_env.data_dir / "postgres" / "data", port=wh.port, host=wh.host
    )
    old.start()
    old.ensure_database(wh.dbname)
    with psycopg.connect(old.conninfo(wh.dbname)) as conn:
        conn.execute("create table kept as select 1 as n")
    old.stop()

    start(stack_env)
    # Asks for the password now, and the data is still there.
    assert "no password supplied" in refused(wh)
    with connect(WarehouseSettings.from_env()) as conn:
        assert conn.execute("select n from kept").fetchone() == (1,)
    hba = (stack_env.data_dir / "postgres" / "data" / "pg_hba.conf").read_text()
    host_rules = [line.split() for line in hba.splitlines() if line.startswith("host")]
    assert host_rules and all(rule[-1] == "scram-sha-256" for rule in host_rules)


def test_a_data_folder_too_deep_for_a_socket_uses_a_folder_of_its_own(tmp_path) -> None:
    deep = tmp_path.joinpath(*["a-folder-name-of-some-length"] * 4) / "data"
    pg = EmbeddedPostgres(pgdata=deep, port=free_port(), password="pw-deep")
    assert pg.socket_dir != deep and len(str(pg.socket_dir)) < 40
    # Someone else's folder there first (any mode but the server's own 0700): refused.
    pg.socket_dir.mkdir(mode=0o777)
    os.chmod(pg.socket_dir, 0o777)
    try:
        with pytest.raises(ServiceError, match="is not the server's own"):
            pg.start()
    finally:
        pg.socket_dir.rmdir()
    pg.start()
    try:
        with psycopg.connect(pg.conninfo()) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        assert stat.S_IMODE(os.lstat(pg.socket_dir).st_mode) == 0o700
    finally:
        pg.destroy()
        shutil.rmtree(pg.socket_dir, ignore_errors=True)


def test_the_generated_password_is_whole_once_made_and_never_empty(stack_env) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:  # starts at the same time agree on one password
        made = set(pool.map(lambda _: services.generated_password(stack_env), range(8)))
    assert len(made) == 1 and len(made.pop()) >= 20
    folder = stack_env.data_dir / "postgres"
    assert [p.name for p in folder.iterdir()] == ["password"]  # no drafts left
    (folder / "password").write_text("")  # an empty file is not "no password": refused
    with pytest.raises(ServiceError, match="is empty"):
        services.generated_password(stack_env)
    (folder / "password").unlink()
    with pytest.raises(ServiceError, match="empty password"):
        EmbeddedPostgres(pgdata=folder / "data", port=free_port(), password="").start()
