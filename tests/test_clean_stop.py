"""A test tier stopped mid-run leaves nothing behind (tests/clean_stop.py).

`make test` runs a few Kafka loader tests in a subprocess with a temporary
folder of this test's own. Once their servers are up (the session's
PostgreSQL, whose postmaster `pg_ctl` daemonises, and the Kafka broker), the
run is stopped the way a CI timeout stops it (SIGTERM to `make` alone) or the
way a terminal does (Ctrl-C: SIGINT to the whole process group). Within 30
seconds no process of the run may be left, none of its ports listening, and
its temporary folder gone.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from config import PROJECT_ROOT
from tests.clean_stop import TEST_RUN_MARKER, processes_where

STOP_WITHIN = 30.0


def run_processes(tmpdir: Path) -> list[psutil.Process]:
    """Processes started by the run: it gives each child its own TMPDIR under ``tmpdir``."""
    return processes_where(lambda env: env.get("TMPDIR", "").startswith(f"{tmpdir}/"))


def listening_ports(procs: list[psutil.Process]) -> set[int]:
    pids = {p.pid for p in procs}
    return {
        c.laddr.port
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    }


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def servers_up(tmpdir: Path) -> bool:
    names = " ".join(" ".join(p.cmdline()) for p in run_processes(tmpdir) if alive(p))
    return "postgres -D" in names and "tansu broker" in names


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A short folder outside this run's own: PostgreSQL's socket path has a length limit."""
    path = Path(tempfile.mkdtemp(prefix="stop-", dir=os.environ.get("TEST_PORTS_DIR")))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("how", ["sigterm-to-make", "ctrl-c"])
def test_a_stopped_tier_stops_its_servers_and_removes_its_folders(tmp_path: Path, how) -> None:
    # A run of its own, not a part of this one's (nor of the make that started this one),
    # with the default clean-up even when this run keeps its folder for a post-mortem.
    inherited = (TEST_RUN_MARKER, "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "TEST_KEEP_TMP")
    env = {k: v for k, v in os.environ.items() if k not in inherited}
    env["TMPDIR"] = str(tmp_path)
    # SIGTERM to a controller and its xdist workers; Ctrl-C to one process. The run is
    # the Kafka loader's tests (half a minute and more): on a busy machine, finding its
    # servers takes seconds, and a shorter run could end before the signal arrives.
    workers = "2" if how == "sigterm-to-make" else "0"
    make = subprocess.Popen(
        ["make", "--no-print-directory", "test", f"PYTEST_WORKERS={workers}",
         "ARGS=tests/loaders/kafka -p no:cacheprovider -q"],
        cwd=PROJECT_ROOT, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        # As a terminal's foreground job has it: a run started in the background of a
        # shell without job control (`make test-all &`) inherits SIGINT ignored.
        preexec_fn=_default_sigint,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not servers_up(tmp_path):
            if make.poll() is not None:
                pytest.fail(f"the run ended before its servers were up:\n{make.stdout.read()}")
            assert time.monotonic() < deadline, "the run's servers did not come up in 120 s"
            time.sleep(0.2)
        procs = run_processes(tmp_path)
        ports = listening_ports(procs)
        roots = list(tmp_path.glob("sa-tests-*"))
        assert ports and len(roots) == 1, (ports, roots)

        stopped = time.monotonic()
        if how == "sigterm-to-make":
            make.send_signal(signal.SIGTERM)
        else:
            os.killpg(make.pid, signal.SIGINT)
        out, _ = make.communicate(timeout=STOP_WITHIN + 10)
        took = time.monotonic() - stopped
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()

    assert took < STOP_WITHIN, f"stopping took {took:.0f} s:\n{out[-2000:]}"
    assert make.returncode != 0, out[-3000:]  # interrupted, not passed
    left = [p for p in run_processes(tmp_path) if alive(p)]
    assert left == [], [" ".join(p.cmdline()) for p in left]
    listening = {
        c.laddr.port for c in psutil.net_connections("inet") if c.status == psutil.CONN_LISTEN
    }
    assert listening & ports == set()
    assert not roots[0].exists(), sorted(str(p) for p in roots[0].rglob("*"))[:20]
