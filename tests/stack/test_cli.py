"""The everyday commands' contracts: exit codes, output that pipes, one run at a time."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from config import PROJECT_ROOT
from stack import run as run_module
from stack.run_lock import run_lock


def test_status_exits_nonzero_when_a_configured_server_is_down(monkeypatch, tmp_path) -> None:
    for key, value in {"EMBEDDED_SERVICES": "none", "WAREHOUSE_PORT": "1",
                       "MONGO_URI": "mongodb://127.0.0.1:1", "SALES_API_URL": "http://127.0.0.1:1",
                       "DATA_DIR": str(tmp_path)}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    proc = subprocess.run(
        [sys.executable, "-m", "stack", "status"], cwd=PROJECT_ROOT,
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "postgres  external  down" in proc.stdout
    assert "does not answer" in proc.stderr


def make(*args: str, env_file: Path) -> subprocess.CompletedProcess:
    """make in the project, with ``env_file`` as its .env (ENV_FILE)."""
    if shutil.which("make") is None:
        pytest.fail("make is not installed")
    return subprocess.run(
        ["make", "-s", *args, f"ENV_FILE={env_file}"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, env=clean_env(),
    )  # fmt: skip


def clean_env() -> dict[str, str]:
    """This process's environment without the project's settings (a developer's .env
    reaches the tests through make) or make's own variables."""
    from config.env_file import documented_keys

    drop = documented_keys() | {"ENV_FILE", "ENV_FILE_CHECKED", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def test_make_help_lists_targets_with_the_configured_addresses(tmp_path) -> None:
    env_file = tmp_path / ".env"
    shutil.copy(PROJECT_ROOT / ".env.example", env_file)
    out = make("help", env_file=env_file).stdout
    lines = out.splitlines()
    assert lines and all(line.startswith("  make ") for line in lines), out
    assert "Makefile" not in out and "make dbt " in out
    # Every target with a help comment is listed (names with digits too).
    documented = re.findall(r"^([a-z0-9-]+):.*##", (PROJECT_ROOT / "Makefile").read_text(), re.M)
    assert [line.split()[1] for line in lines] == documented
    # Addresses show the configured port, not the default.
    env_file.write_text("AIRFLOW_UI_PORT=18080\nSUPERSET_PORT = '18088'\n")
    out = make("help", env_file=env_file).stdout
    assert "http://127.0.0.1:18080 " in out and "http://127.0.0.1:18088 " in out
    assert "${" not in out and "http://127.0.0.1:8081" in out  # DOCS_PORT unset: its default


def test_every_command_reads_dot_env_as_python_does_and_a_misspelled_key_warns(tmp_path) -> None:
    """make does not parse .env: spaces around `=`, quotes and `export` read as python-dotenv
    reads them, for make's commands too; a key no setting reads names the one meant."""
    env_file = tmp_path / ".env"
    env_file.write_text(
        "WAREHOUSE_PORT = 55451\n"
        'export WAREHOUSE_USER="ana maria"\n'
        "WAREHOUSE_DB='wh'  # a comment\n"
        "WAREHOUSE_PROT=55452\n"
        "EMBEDDED_SERVICES=none\n"
        "AIRFLOW__CORE__PARALLELISM=8\n"  # Airflow's and dbt's own: no warning
        "AIRFLOW_CONN_SHOP=postgres://x\n"
        "DBT_ENV_SECRET_TOKEN=t\n"
        "DBT_PARTIAL_PARSE=true\n"
    )
    proc = make("status", env_file=env_file)
    assert "postgresql://ana maria@127.0.0.1:55451/wh" in proc.stdout, proc.stdout + proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "is not a setting" in line]
    assert warnings == [
        ".env: warning: WAREHOUSE_PROT is not a setting this project reads;"
        " did you mean WAREHOUSE_PORT?"
    ], proc.stderr
    # The environment wins over the file.
    env = {**clean_env(), "WAREHOUSE_PORT": "55453"}
    out = subprocess.run(
        [sys.executable, "-m", "config.env_file", "--", sys.executable, "-c",
         "from config import WarehouseSettings as W; w = W.from_env(); print(w.port, w.user)"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
        env={**env, "ENV_FILE": str(env_file)},
    ).stdout  # fmt: skip
    assert out.split() == ["55453", "ana", "maria"]


def test_a_missing_env_file_or_command_is_one_line(tmp_path) -> None:
    env = {**os.environ, "ENV_FILE": str(tmp_path / "nope.env")}
    proc = subprocess.run(
        [sys.executable, "-m", "config.env_file", "--", "true"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no such file" in proc.stderr
    env["ENV_FILE"] = str(tmp_path / ".env")
    (tmp_path / ".env").write_text("")
    proc = subprocess.run(
        [sys.executable, "-m", "config.env_file", "--", "no-such-command-here"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert proc.returncode == 127 and proc.stderr.count("\n") == 1


def test_a_second_run_at_once_stops_with_one_line(local_dirs, capsys) -> None:
    with run_lock(local_dirs):
        assert run_module.main() == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "another `make run` is in progress (pid" in err


def test_every_python_import_the_makefile_runs_exists() -> None:
    import importlib
    import re

    makefile = (PROJECT_ROOT / "Makefile").read_text()
    imports = re.findall(r"from ([\w.]+) import (\w+)", makefile)
    modules = re.findall(r"python -m ([\w.]+)", makefile)
    assert imports and modules
    for module, name in imports:
        assert hasattr(importlib.import_module(module), name), f"{module}.{name}"
    for module in modules:
        assert importlib.util.find_spec(module) is not None, module
