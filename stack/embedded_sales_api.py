"""The project's own sales API server as an embedded service (a uvicorn process)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from stack.server_process import ServerProcess


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
    def process(self) -> ServerProcess:
        return ServerProcess(
            "the sales API",
            f"{self.host}:{self.port}",
            self.state_dir / "sales_api.pid",
            self.state_dir / "sales_api.log",
        )

    @property
    def log_file(self) -> Path:
        return self.process.log_file

    def is_running(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self) -> None:
        if self.is_running():
            return
        self.process.start(
            [sys.executable, "-m", "datagen.sales_api_server",
             "--host", self.host, "--port", str(self.port)],
            self.is_running,
            env={**os.environ, **(self.env or {})},
        )  # fmt: skip

    def stop(self) -> None:
        self.process.stop()
