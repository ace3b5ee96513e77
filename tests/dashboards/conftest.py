"""A real Superset for the dashboards tests, set up in the background from the start of the run.

Setting Superset up costs about a minute of one core (its own virtualenv,
then `superset db upgrade` and `superset init` on a fresh SQLite metadata
DB). So when tests that need it are collected, this conftest starts
``python -m stack.superset start`` at once in a background process, in a
temporary DATA_DIR and on a free port, and moves those tests to the end of
the run: the set-up overlaps the rest of the suite on the second core, and
the first test that needs Superset waits for it. Superset is stopped and
its folder removed when the session ends.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from config import PROJECT_ROOT, SupersetSettings
from stack.superset import Superset, stop
from tests.conftest import free_port

HERE = Path(__file__).parent
SETUP_SECONDS = 900  # a cold uv cache downloads Superset's ~150 wheels first


@dataclass
class Background:
    """The background set-up: its process, its log, and the Superset it prepares."""

    process: subprocess.Popen
    log: Path
    data_dir: Path
    superset: Superset
    started: float  # time.time() when the set-up began
    ready_after: float | None = None  # seconds from the start of the set-up

    def wait(self) -> Superset:
        """Superset, once the set-up is done; the test fails with its log if it failed."""
        waited = time.monotonic()
        try:
            code = self.process.wait(timeout=SETUP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            pytest.fail(f"Superset's set-up took over {SETUP_SECONDS} s; see {self.log}")
        if code != 0:
            tail = self.log.read_text(errors="replace")[-2000:]
            pytest.fail(f"Superset's set-up failed (exit {code}):\n{tail}")
        if self.ready_after is None:
            # The log's last write is when the set-up finished, however long ago.
            self.ready_after = self.log.stat().st_mtime - self.started
            print(
                f"\nSuperset's background set-up took {self.ready_after:.0f} s; "
                f"the tests waited {time.monotonic() - waited:.0f} s of it"
            )
        return self.superset


_background: Background | None = None


def _needs_superset(item: pytest.Item) -> bool:
    return "superset" in getattr(item, "fixturenames", ())


def _start_background() -> Background:
    data_dir = Path(tempfile.mkdtemp(prefix="pytest-superset-"))
    port = free_port()
    settings = SupersetSettings(
        host="127.0.0.1",
        port=port,
        admin_user="admin",
        admin_password=secrets.token_urlsafe(12),
        public_url=f"http://127.0.0.1:{port}",
        secret_key="",
    )
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "SUPERSET_HOST": settings.host,
        "SUPERSET_PORT": str(port),
        "SUPERSET_ADMIN_USER": settings.admin_user,
        "SUPERSET_ADMIN_PASSWORD": settings.admin_password,
    }
    log = data_dir / "background-setup.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "stack.superset", "start"],
            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    superset = Superset(settings, data_dir / "superset", data_dir / "logs")
    return Background(process, log, data_dir, superset, time.time())


@pytest.hookimpl(trylast=True)  # after -m and -k deselected what this run leaves out
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    global _background
    ours = [item for item in items if _needs_superset(item)]
    if not ours or _background is not None or config.option.collectonly:
        return
    # Last, so the background set-up has the whole run to finish in.
    items[:] = [item for item in items if not _needs_superset(item)] + ours
    _background = _start_background()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _background
    if _background is None:
        return
    background, _background = _background, None
    if background.process.poll() is None:  # still setting up: stop it and its children
        os.killpg(background.process.pid, signal.SIGKILL)
        background.process.wait()
    stop(background.superset)
    shutil.rmtree(background.data_dir, ignore_errors=True)


@pytest.fixture
def superset() -> Superset:
    """The session's Superset, running (waits for the background set-up).

    Function-scoped on purpose: pytest sets session fixtures up first, and a
    test's own slow fixtures (building marts) should overlap the wait.
    """
    global _background
    if _background is None:  # collected some other way: set it up now
        _background = _start_background()
    return _background.wait()
