"""A clean stop: whatever ends the run, no server or temporary folder of it is left behind.

A CI timeout sends SIGTERM, a developer presses Ctrl-C, a test hangs and
pytest-timeout fails it. In each case every server the suite started (the
session's PostgreSQL, MongoDB, Kafka, ClickHouse and sales API; a test's own
``make run`` stack; Superset; the background benches' stacks) must stop, and
its folders go, within seconds. Three pieces do it:

- SIGTERM becomes KeyboardInterrupt in pytest's main thread, so pytest stops
  the way it does on Ctrl-C: the running test is interrupted, then every
  fixture's teardown runs (the servers' own ``stop``).
- Every process the run starts carries ``TEST_RUN_MARKER`` in its environment
  (set here, inherited by children and by daemons like ``pg_ctl``'s
  postmaster, whose parent is gone by then). At the very end, any process
  still carrying it is sent SIGTERM, then SIGKILL: what a teardown missed.
- The run's temporary files live under one folder of its own (TMPDIR, for
  this process and every child): pytest's ``tmp_path``, ``mkdtemp`` in tests,
  servers and benches. It is removed at the end; set ``TEST_KEEP_TMP=1`` to
  keep it for a post-mortem.

After the first SIGTERM a watchdog ends the process after ``STOP_DEADLINE``
seconds whatever the teardown is doing, sweeping first, so a CI runner's
grace period is never the thing that stops it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

TEST_RUN_MARKER = "STORE_ANALYTICS_TEST_RUN"
STOP_DEADLINE = 25.0  # seconds from SIGTERM to a forced exit
_SWEEP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for leftover processes

_owner = False  # this process made the run's marker and folder (not an xdist worker)
_root: Path | None = None


def processes_where(test: Callable[[dict[str, str]], bool]) -> list[psutil.Process]:
    """Processes other than this one whose environment passes ``test``.

    Not multiprocessing's resource tracker: it is this process's own helper,
    still alive at the end of a good run, and ends with its parent.
    """
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if test(proc.environ()) and not any(
                "multiprocessing.resource_tracker" in arg for arg in proc.cmdline()
            ):
                found.append(proc)
        except (psutil.Error, OSError):  # gone already, or not ours to read
            continue
    return found


def marked_processes(marker: str) -> list[psutil.Process]:
    """The run's processes: their environment carries its marker."""
    return processes_where(lambda env: env.get(TEST_RUN_MARKER) == marker)


def sweep(marker: str, grace: float = _SWEEP_GRACE) -> list[int]:
    """Stop every process of the run still alive: SIGTERM, then SIGKILL. Returns their pids."""
    procs = marked_processes(marker)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return [proc.pid for proc in procs]


def _finish(force: bool = False) -> None:
    marker = os.environ.get(TEST_RUN_MARKER)
    if not _owner or marker is None:
        return
    left = sweep(marker, grace=1.0 if force else _SWEEP_GRACE)
    if left and not force:  # a teardown that missed something: say so, it is a leak
        print(f"\nclean stop: stopped {len(left)} process(es) the run left running: {left}")
    if _root is not None and not os.environ.get("TEST_KEEP_TMP"):
        shutil.rmtree(_root, ignore_errors=True)


def _on_sigterm(signum, frame) -> None:
    # Only the first one counts: a second must not interrupt the teardown. Not
    # SIG_IGN, which every process started from here on would inherit.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)

    def watchdog() -> None:
        time.sleep(STOP_DEADLINE)
        _finish(force=True)
        os._exit(128 + signal.SIGTERM)

    threading.Thread(target=watchdog, name="clean-stop-watchdog", daemon=True).start()
    raise KeyboardInterrupt("SIGTERM")


def pytest_configure(config: pytest.Config) -> None:
    global _owner, _root
    if TEST_RUN_MARKER not in os.environ:
        # The first pytest process of the run (xdist workers inherit both).
        _owner = True
        os.environ.setdefault("TEST_PORTS_DIR", tempfile.gettempdir())  # shared by every run
        # A short name: PostgreSQL's socket path, deep inside it, has a length limit.
        _root = Path(tempfile.mkdtemp(prefix="sa-tests-"))
        os.environ[TEST_RUN_MARKER] = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.environ["TMPDIR"] = str(_root)
        tempfile.tempdir = str(_root)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def pytest_unconfigure(config: pytest.Config) -> None:
    _finish()
