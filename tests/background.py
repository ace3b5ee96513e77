"""Long set-ups started once per test run, in the background, shared by every pytest worker.

Superset's set-up (about a minute of one core) and the bench tier's two long
runs (the scaling bench's small growing stack, two days under Airflow's real
scheduler) start as soon as the tests that need them are collected, so they
overlap the rest of the run, and those tests wait for them.

With pytest-xdist every worker collects every test. The first process to ask
for a run starts it (a lock file in the run's own temporary folder, which
every worker shares: tests/clean_stop.py); any worker's test can then wait
for it, since the run writes its exit code to a file when it ends. The
process that owns the test run stops what is still running when it ends
(and, for a set-up that leaves a server behind, runs its stop command).

``python -m tests.background FOLDER COMMAND...`` is the wrapper that runs
COMMAND and records its exit code.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from config import PROJECT_ROOT


def _folder(name: str) -> Path:
    return Path(tempfile.gettempdir()) / "background" / name


def start(
    name: str, argv: list[str], env: dict[str, str] | None = None, info: dict | None = None
) -> bool:
    """Start ``argv`` once per test run under ``name``; False if it was already started.

    ``info`` (JSON) is kept beside it for the tests that wait for it: what
    they need to use what it set up (a port, a password).
    """
    folder = _folder(name)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(folder / "started", os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    (folder / "info.json").write_text(json.dumps({"env": env or {}, **(info or {})}))
    with open(folder / "log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.background", str(folder), *argv],
            cwd=PROJECT_ROOT, env={**os.environ, **(env or {})}, stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    (folder / "pid").write_text(str(process.pid))
    return True


def started(name: str) -> bool:
    return (_folder(name) / "started").exists()


def info(name: str) -> dict:
    return json.loads((_folder(name) / "info.json").read_text())


def wait(name: str, timeout: float) -> tuple[int, str, float]:
    """(exit code, output, seconds waited) of ``name``'s run; the test fails if it is not done
    within ``timeout`` seconds or was never started."""
    folder = _folder(name)
    if not (folder / "started").exists():
        pytest.fail(f"the background run {name} was not started at collection")
    began = time.monotonic()
    while not (folder / "exit").exists():
        if time.monotonic() - began > timeout:
            pytest.fail(
                f"the background run {name} took over {timeout:.0f} s; see {folder}/log"
                " (kept if the run is rerun with TEST_KEEP_TMP=1)"
            )
        time.sleep(0.5)
    code = int((folder / "exit").read_text())
    return code, (folder / "log").read_text(errors="replace"), time.monotonic() - began


def stop_all(grace: float = 20.0) -> None:
    """End what this test run started in the background (its owner calls this at the end)."""
    root = Path(tempfile.gettempdir()) / "background"
    folders = sorted(root.iterdir()) if root.is_dir() else []
    running = []
    for folder in folders:
        try:
            pid = int((folder / "pid").read_text())
        except (OSError, ValueError):
            continue
        if not (folder / "exit").exists():
            # Cut short: SIGINT to the wrapper, which passes it on once, so the run
            # (and what it waits on) stops its servers.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)
                running.append(folder)
    deadline = time.monotonic() + grace  # one grace for all: the clean stop has a deadline
    while any(not (f / "exit").exists() for f in running) and time.monotonic() < deadline:
        time.sleep(0.2)
    for folder in folders:  # a set-up that leaves a server running says how to stop it
        try:
            details = info(folder.name)
        except (OSError, ValueError):  # cut short between its lock and its info
            continue
        if details.get("stop"):
            env = {**os.environ, **details["env"]}
            subprocess.run(details["stop"], cwd=PROJECT_ROOT, env=env, capture_output=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the run's owner stops them once every worker is done
    stop_all(grace=5.0 if exitstatus == pytest.ExitCode.INTERRUPTED else 20.0)


def _run(folder: Path, argv: list[str]) -> int:
    process = subprocess.Popen(argv, cwd=PROJECT_ROOT)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: process.send_signal(signum))
    code = process.wait()
    tmp = folder / "exit.tmp"
    tmp.write_text(str(code))
    tmp.rename(folder / "exit")  # whole, for the tests polling for it
    return code


if __name__ == "__main__":
    sys.exit(_run(Path(sys.argv[1]), sys.argv[2:]))
