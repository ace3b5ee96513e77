"""A local server run as a child process: log file, pid file, wait until it answers, stop.

The embedded sales API, Kafka broker and ClickHouse are each one command line
plus a readiness check; this is the rest they share. (PostgreSQL and the
MongoDB stand-in bring their own start and stop.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from stack.embedded_postgres import ServiceError


def alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child: reap it, or it stays a zombie
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass(frozen=True)
class ServerProcess:
    name: str  # for messages: "the sales API"
    address: str  # host:port, for messages
    pid_file: Path
    log_file: Path

    def running_pid(self) -> int | None:
        """The pid in the pid file, if that process is still alive."""
        with contextlib.suppress(FileNotFoundError, ValueError):
            pid = int(self.pid_file.read_text())
            if alive(pid):
                return pid
        return None

    def start(
        self,
        command: Sequence[str],
        ready: Callable[[], bool],
        env: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> None:
        """Start ``command`` and wait until ``ready()``; one ServiceError line if it does not."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            start = log.tell()
            proc = subprocess.Popen(
                list(command),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=env if env is not None else dict(os.environ),
            )
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        else:
            proc.kill()  # no answer in time: do not leave it holding its port or data
            proc.wait()
        self.pid_file.unlink(missing_ok=True)
        with open(self.log_file, "rb") as log:
            log.seek(start)
            lines = log.read().decode(errors="replace").strip().splitlines()
        reason = f": {lines[-1]}" if lines else " (is the port taken?)"
        raise ServiceError(
            f"{self.name} did not start on {self.address}{reason}; see {self.log_file}"
        )

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM the process and wait for it to exit (its port and files are then free)."""
        pid = self.running_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        self.pid_file.unlink(missing_ok=True)
        deadline = time.monotonic() + timeout
        while pid is not None and alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
