"""The project's own sales API server as an embedded service (a uvicorn process)."""

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


@dataclass
class EmbeddedSalesApi:
    state_dir: Path
    port: int
    host: str = "127.0.0.1"
    env: dict[str, str] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "sales_api.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "sales_api.log"

    def is_running(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self) -> None:
        if self.is_running():
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "datagen.sales_api_server",
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **(self.env or {})},
            )
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.is_running():
                return
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        raise ServiceError(
            f"the sales API did not answer on {self.url} (is the port taken?); see {self.log_file}"
        )

    def stop(self) -> None:
        if not self.pid_file.exists():
            return
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(self.pid_file.read_text()), signal.SIGTERM)
        self.pid_file.unlink(missing_ok=True)
        deadline = time.monotonic() + 10
        while self.is_running() and time.monotonic() < deadline:
            time.sleep(0.2)
