"""Embedded ClickHouse: the project's own HTTP server over the chdb engine, as a process.

``stack/clickhouse_http.py`` is the server; this starts and stops it like the
other embedded services (log file, pid file, wait until ``/ping`` answers).
The data dir belongs to that one process (chdb locks it), so every client
(loaders, dbt-clickhouse, tests) goes through HTTP. ``CLICKHOUSE_*`` point at a
real ClickHouse instead.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from stack.embedded_postgres import ServiceError
from stack.server_process import ServerProcess


@dataclass
class EmbeddedClickHouse:
    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    password: str = ""
    user: str = "default"
    # A ClickHouse config file to start with (remote_servers, macros: the cluster
    # check of docs/scaling/clickhouse_cluster.sql); None for the engine's defaults.
    config_file: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def process(self) -> ServerProcess:
        return ServerProcess(
            "the embedded ClickHouse",
            f"{self.host}:{self.port}",
            self.data_dir.parent / "clickhouse.pid",
            self.data_dir.parent / "clickhouse.log",
        )

    @property
    def log_file(self) -> Path:
        return self.process.log_file

    def is_running(self) -> bool:
        try:
            response = httpx.get(f"{self.url}/ping", timeout=1)
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and response.text == "Ok.\n"

    def start(self) -> None:
        if self.is_running():
            return
        if (pid := self.process.running_pid()) is not None:
            raise ServiceError(
                f"the embedded ClickHouse (pid {pid}) has {self.data_dir} but does not "
                f"answer on {self.url}; stop it first"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process.start(
            [sys.executable, "-m", "stack.clickhouse_http", "--host", self.host,
             "--port", str(self.port), "--data-dir", str(self.data_dir),
             *(["--config-file", str(self.config_file)] if self.config_file else [])],
            self.is_running,
            # The password goes through the environment, never the command line (ps).
            env={**os.environ, "CLICKHOUSE_USER": self.user, "CLICKHOUSE_PASSWORD": self.password},
        )  # fmt: skip

    def stop(self) -> None:
        # stop() waits for the process itself: until it exits, chdb holds the data dir.
        self.process.stop()
