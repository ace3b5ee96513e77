"""`make airflow`'s environment: loopback, ports from settings, an admin password from config."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from config import AirflowSettings, LocalSettings, WarehouseSettings, redact
from loaders.mongo.settings import MongoSettings
from stack.airflow import admin_password, airflow_env


def env_for(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **settings: str) -> dict[str, str]:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return airflow_env(
        LocalSettings.from_env(), WarehouseSettings.from_env(), MongoSettings.from_env()
    )


def test_the_api_server_listens_on_loopback_on_the_configured_ports(monkeypatch, tmp_path) -> None:
    for name in ("AIRFLOW_HOST", "AIRFLOW_UI_PORT", "AIRFLOW__API__PORT"):
        monkeypatch.delenv(name, raising=False)
    env = env_for(monkeypatch, tmp_path)
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__API__PORT"] == "8080"
    assert env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == "8793"
    assert env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] == "8794"
    assert env["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] == "False"

    env = env_for(
        monkeypatch, tmp_path, AIRFLOW_HOST="0.0.0.0", AIRFLOW_UI_PORT="18080",
        AIRFLOW_WORKER_LOG_PORT="18793", AIRFLOW_TRIGGERER_LOG_PORT="18794",
        AIRFLOW_ADMIN_USER="ops",
    )  # fmt: skip
    assert env["AIRFLOW__API__HOST"] == "0.0.0.0"
    assert env["AIRFLOW__API__PORT"] == "18080"
    assert env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == "18793"
    assert env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] == "18794"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "ops:admin"


def test_airflows_own_port_variable_is_honoured(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("AIRFLOW_UI_PORT", raising=False)
    assert env_for(monkeypatch, tmp_path, AIRFLOW__API__PORT="9090")["AIRFLOW__API__PORT"] == "9090"


def test_an_unset_password_is_generated_once_and_then_only_pointed_at(
    monkeypatch, tmp_path
) -> None:
    monkeypatch.delenv("AIRFLOW_ADMIN_PASSWORD", raising=False)
    settings = AirflowSettings.from_env()
    password, told = admin_password(settings, tmp_path)
    assert len(password) >= 16 and password != "admin"
    assert password in told  # shown the first time
    kept = tmp_path / "admin-password"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    again, told_again = admin_password(settings, tmp_path)
    assert again == password
    assert password not in told_again and str(kept) in told_again


def test_a_configured_password_is_used_and_never_printed(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AIRFLOW_ADMIN_PASSWORD", "s3cret-Pa55")
    password, told = admin_password(AirflowSettings.from_env(), tmp_path)
    assert password == "s3cret-Pa55"
    assert "s3cret-Pa55" not in told
    assert not (tmp_path / "admin-password").exists()
    assert "s3cret-Pa55" not in redact("login failed for s3cret-Pa55")


def test_airflow_output_goes_to_its_log_and_a_failed_start_says_why(tmp_path) -> None:
    from stack.airflow import run_logged

    # A real child process standing in for the API server, which fails at start.
    noisy = (
        "import sys\nfor i in range(5000): print('INFO line', i)\n"
        "print('ERROR port in use')\nsys.exit(3)"
    )
    said: list[str] = []
    log = tmp_path / "logs" / "airflow.log"
    code = run_logged(
        [[sys.executable, "-c", noisy]], {}, log, "http://127.0.0.1:9/health", said.append, 60
    )
    assert code == 3
    assert log.read_text().count("INFO line") == 5000  # every line kept, in the file
    console = "\n".join(said)
    assert "INFO line 100\n" not in console and len(console.splitlines()) < 25
    assert "Airflow stopped (exit 3)" in console and "ERROR port in use" in console


def test_the_console_says_when_every_component_is_healthy(tmp_path) -> None:
    from stack.airflow import COMPONENTS, run_logged
    from tests.conftest import free_port

    port = free_port()
    health = json.dumps({c: {"status": "healthy"} for c in COMPONENTS})
    starting = json.dumps({"scheduler": {"status": "unhealthy"}})
    # Answers the health endpoint (unhealthy twice first), then stops like a Ctrl-C'd Airflow.
    server = f"""
import http.server, json
calls = []
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        calls.append(1)
        body = {health!r} if len(calls) > 2 else {starting!r}
        self.send_response(200); self.end_headers(); self.wfile.write(body.encode())
    def log_message(self, *a): print("request", *a, flush=True)
s = http.server.HTTPServer(("127.0.0.1", {port}), H)
while len(calls) < 3: s.handle_request()
"""
    said: list[str] = []
    log = tmp_path / "airflow.log"
    code = run_logged(
        [[sys.executable, "-c", server]], {}, log,
        f"http://127.0.0.1:{port}/api/v2/monitor/health", said.append, 60,
    )  # fmt: skip
    assert code == 0
    assert said[-1] == "Airflow is up; stop with Ctrl-C"
    assert log.read_text().count("request") == 3


def test_a_bad_clock_or_execution_mode_setting_is_one_line(monkeypatch) -> None:
    from config import ConfigError

    monkeypatch.setenv("AIRFLOW_SIMULATE", "maybe")
    with pytest.raises(ConfigError, match="AIRFLOW_SIMULATE='maybe' is not true or false"):
        AirflowSettings.from_env()
    monkeypatch.setenv("AIRFLOW_SIMULATE", "false")
    monkeypatch.setenv("AIRFLOW_DBT_EXECUTION_MODE", "kubernetes")
    with pytest.raises(ConfigError, match="not one of watcher, local"):
        AirflowSettings.from_env()
    monkeypatch.setenv("AIRFLOW_DBT_EXECUTION_MODE", "Local")
    settings = AirflowSettings.from_env()
    assert settings.simulate is False and settings.dbt_execution_mode == "local"
    assert settings.execution_api_url.endswith(f":{settings.ui_port}/execution/")


def test_the_dag_processor_preloads_what_each_parse_of_a_dag_file_imports() -> None:
    """Airflow's local-settings hook: the DAG processor (which forks a process per
    parse) imports Cosmos and the pipelines' code once; the API server nothing."""
    import subprocess

    def preloaded(component: str) -> set[str]:
        code = (
            f"import sys; sys.argv = ['airflow', {component!r}]; import airflow_local_settings; "
            "print(' '.join(m for m in ('cosmos', 'cosmos.converter', 'cosmos.operators.watcher',"
            " 'dbt.cli.main', 'pipelines') if m in sys.modules))"
        )
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return set(run.stdout.split())

    assert preloaded("dag-processor") >= {
        "cosmos.converter",
        "cosmos.operators.watcher",
        "pipelines",
    }
    assert "cosmos" not in preloaded("api-server")
