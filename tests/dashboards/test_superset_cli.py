"""`make dashboards`'s own rules, without starting Superset: secrets, its environment, errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from config import PROJECT_ROOT
from stack import superset as superset_module
from stack.superset import Superset, admin_password, secret_key, superset_env
from tests.conftest import free_port


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "local"))
    monkeypatch.setenv("SUPERSET_PORT", str(free_port()))  # nothing listens there
    for name in (
        "SUPERSET_ADMIN_PASSWORD",
        "SUPERSET_SECRET_KEY",
        "SUPERSET_HOST",
        "SUPERSET_VENV",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "local" / "superset"


def test_an_unset_admin_password_is_generated_once_kept_private_and_shown_once(home) -> None:
    password, told = admin_password(Superset.from_env())
    path = home / "admin-password"
    assert password in told and str(path) in told
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, told_again = admin_password(Superset.from_env())
    assert again == password and password not in told_again and str(path) in told_again


def test_a_configured_admin_password_is_used_and_never_shown(home, monkeypatch) -> None:
    monkeypatch.setenv("SUPERSET_ADMIN_PASSWORD", "chosen-Pa55")
    password, told = admin_password(Superset.from_env())
    assert password == "chosen-Pa55" and "chosen-Pa55" not in told
    assert not (home / "admin-password").exists()


def test_the_secret_key_is_generated_once_unless_configured(home, monkeypatch) -> None:
    key = secret_key(Superset.from_env())
    assert len(key) >= 40 and secret_key(Superset.from_env()) == key
    assert stat.S_IMODE((home / "secret-key").stat().st_mode) == 0o600
    monkeypatch.setenv("SUPERSET_SECRET_KEY", "configured-key")
    assert secret_key(Superset.from_env()) == "configured-key"


def test_superset_gets_none_of_the_projects_secrets(home, monkeypatch) -> None:
    monkeypatch.setenv("WAREHOUSE_PASSWORD", "wh-secret")
    monkeypatch.setenv("SUPERSET_ADMIN_PASSWORD", "admin-secret")
    env = superset_env(Superset.from_env())
    assert "wh-secret" not in env.values() and "admin-secret" not in env.values()
    assert env["SUPERSET_HOME"] == str(home)
    assert env["SUPERSET_CONFIG_PATH"] == str(PROJECT_ROOT / "dashboards" / "superset_config.py")
    assert env["PATH"].startswith(str(home / "venv" / "bin"))


def test_a_configured_environment_is_used_in_place_of_the_data_dirs(home, monkeypatch) -> None:
    monkeypatch.setenv("SUPERSET_VENV", "/opt/superset-venv")
    env = superset_env(Superset.from_env())
    assert env["VIRTUAL_ENV"] == "/opt/superset-venv"
    assert env["PATH"].startswith("/opt/superset-venv/bin")
    assert env["SUPERSET_HOME"] == str(home)  # its metadata stays in DATA_DIR


@pytest.mark.parametrize("command", ["import", "up"])
def test_failures_are_one_line_without_secrets(home, monkeypatch, capsys, command) -> None:
    monkeypatch.setenv("SUPERSET_ADMIN_PASSWORD", "admin-secret")
    monkeypatch.setenv("WAREHOUSE_PASSWORD", "wh-secret")
    # `up` would install and start Superset first: make that fail fast, like a broken install.
    monkeypatch.setattr(superset_module, "_uv", lambda: "/nonexistent/uv")
    assert superset_module.main([command]) == 1
    err = capsys.readouterr().err
    assert err.startswith("make dashboards: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "secret" not in err
    if command == "import":
        assert "does not answer" in err and "run `make dashboards`" in err
    else:
        assert "installing Superset's environment (uv sync) failed" in err


def test_status_and_down_when_not_running(home, capsys) -> None:
    assert superset_module.main(["status"]) == 1
    assert capsys.readouterr().out.startswith("superset  down")
    assert superset_module.main(["down"]) == 0
    assert "was not running" in capsys.readouterr().out
