"""Embedded ClickHouse: the project's own HTTP server over the chdb engine, as a process.

``stack/clickhouse_http.py`` is the server; this starts and stops it like the
other embedded services (log file, pid file, wait until ``/ping`` answers).
The data dir belongs to that one process (chdb locks it), so every client
(loaders, dbt-clickhouse, tests) goes through HTTP. ``CLICKHOUSE_*`` point at a
real ClickHouse instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from stack.embedded_postgres import ServiceError


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child: reap it, or it stays a zombie
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class EmbeddedClickHouse:
    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    password: str = ""
    user: str = "default"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir.parent / "clickhouse.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / "clickhouse.log"

    def is_running(self) -> bool:
        try:
            response = httpx.get(f"{self.url}/ping", timeout=1)
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and response.text == "Ok.\n"

    def start(self) -> None:
        if self.is_running():
            return
        with contextlib.suppress(FileNotFoundError, ValueError):
            if _alive(pid := int(self.pid_file.read_text())):
                raise ServiceError(
                    f"the embedded ClickHouse (pid {pid}) has {self.data_dir} but does not "
                    f"answer on {self.url}; stop it first"
                )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            start = log.tell()
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "stack.clickhouse_http",
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                # The password goes through the environment, never the command line (ps).
                env={
                    **os.environ,
                    "CLICKHOUSE_USER": self.user,
                    "CLICKHOUSE_PASSWORD": self.password,
                },
            )
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.is_running():
                return
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        else:
            proc.kill()  # no answer in time: do not leave it holding the data dir
            proc.wait()
        self.pid_file.unlink(missing_ok=True)
        with open(self.log_file, "rb") as log:
            log.seek(start)
            lines = log.read().decode(errors="replace").strip().splitlines()
        reason = f": {lines[-1]}" if lines else ""
        raise ServiceError(
            f"the embedded ClickHouse did not start on {self.host}:{self.port}{reason}; "
            f"see {self.log_file}"
        )

    def stop(self) -> None:
        if not self.pid_file.exists():
            return
        pid = 0
        with contextlib.suppress(ProcessLookupError, ValueError):
            pid = int(self.pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
        self.pid_file.unlink(missing_ok=True)
        # Wait for the process itself, not just the port: until it exits, chdb holds the data dir.
        deadline = time.monotonic() + 15
        while pid and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
