"""A real Superset for the dashboards tests, set up in the background from the start of the run.

Setting Superset up costs about a minute of one core (its own virtualenv,
then `superset db upgrade` and `superset init` on a fresh SQLite metadata
DB). So when tests that need it are collected (and not deselected), this
conftest starts ``python -m stack.superset start`` at once in the background
(tests/background.py: once per test run, whichever worker collects it
first), in a temporary DATA_DIR and on a free port, and moves those tests to
the end: the set-up overlaps the rest of the run, and the first test that
needs Superset waits for it. The run's owner stops Superset when the run
ends; its folder goes with the run's temporary folder.
"""

from __future__ import annotations

import fcntl
import secrets
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import SupersetSettings
from stack.superset import Superset
from tests import background
from tests.conftest import free_port

SETUP_SECONDS = 900  # a cold uv cache downloads Superset's ~150 wheels first
NAME = "superset"


def _needs_superset(item: pytest.Item) -> bool:
    return "superset" in getattr(item, "fixturenames", ())


def _start() -> None:
    if background.started(NAME):  # by another worker
        return
    data_dir = Path(tempfile.mkdtemp(prefix="superset-"))
    port = free_port()
    env = {
        "DATA_DIR": str(data_dir),
        "SUPERSET_HOST": "127.0.0.1",
        "SUPERSET_PORT": str(port),
        "SUPERSET_ADMIN_USER": "admin",
        "SUPERSET_ADMIN_PASSWORD": secrets.token_urlsafe(12),
        # The environment is the configured one (DATA_DIR/superset/venv unless
        # SUPERSET_VENV says otherwise), installed once and kept: installing
        # and compiling Superset anew costs a core for a minute and a half
        # every run. Its metadata and server are the run's own.
        "SUPERSET_VENV": str(Superset.from_env().venv),
    }
    stop = [sys.executable, "-m", "stack.superset", "down"]
    background.start(NAME, [sys.executable, "-m", "stack.superset", "start"], env, {"stop": stop})


@pytest.hookimpl(trylast=True)  # after -m and -k deselected what this run leaves out
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    ours = [item for item in items if _needs_superset(item)]
    if not ours or config.option.collectonly:
        return
    # Last, so the background set-up has the whole run to finish in.
    items[:] = [item for item in items if not _needs_superset(item)] + ours
    _start()


@pytest.fixture
def superset() -> Iterator[Superset]:
    """The run's Superset, running (waits for the background set-up), one test at a time.

    Function-scoped on purpose: pytest sets session fixtures up first, and a
    test's own slow fixtures (building marts) should overlap the wait. The
    tests on other workers share this Superset: each holds a lock on it for
    its duration (one re-imports a changed bundle another is drawing).
    """
    _start()  # collected some other way: set it up now (a no-op if it was)
    code, log, waited = background.wait(NAME, SETUP_SECONDS)
    if code != 0:
        pytest.fail(f"Superset's set-up failed (exit {code}):\n{log[-2000:]}")
    print(f"\nthe test waited {waited:.0f} s for Superset's background set-up")
    env = background.info(NAME)["env"]
    data_dir = Path(env["DATA_DIR"])
    settings = SupersetSettings(
        host=env["SUPERSET_HOST"],
        port=int(env["SUPERSET_PORT"]),
        admin_user=env["SUPERSET_ADMIN_USER"],
        admin_password=env["SUPERSET_ADMIN_PASSWORD"],
        public_address=f"http://127.0.0.1:{env['SUPERSET_PORT']}",
        secret_key="",
        venv=env["SUPERSET_VENV"],
    )
    with open(data_dir / "tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield Superset(settings, data_dir / "superset", data_dir / "logs")
