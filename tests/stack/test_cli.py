"""The everyday commands' contracts: exit codes, output that pipes, one run at a time."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

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


def test_make_help_lists_targets_once_a_dot_env_exists(tmp_path) -> None:
    if shutil.which("make") is None:
        pytest.fail("make is not installed")
    shutil.copy(PROJECT_ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy(PROJECT_ROOT / ".env.example", tmp_path / ".env")
    out = subprocess.run(
        ["make", "-s", "help"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    lines = out.splitlines()
    assert lines and all(line.startswith("  make ") for line in lines), out
    assert "Makefile" not in out and "make dbt " in out
    # Every target with a help comment is listed (names with digits too).
    documented = re.findall(r"^([a-z0-9-]+):.*##", (PROJECT_ROOT / "Makefile").read_text(), re.M)
    assert [line.split()[1] for line in lines] == documented
    # Addresses show the configured port, not the default.
    with (tmp_path / ".env").open("a") as env:
        env.write("AIRFLOW_UI_PORT=18080\nSUPERSET_PORT=18088\n")
    out = subprocess.run(
        ["make", "-s", "help"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert "http://127.0.0.1:18080 " in out and "http://127.0.0.1:18088 " in out
    assert "${" not in out and "http://127.0.0.1:8081" in out  # DOCS_PORT unset: its default


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
