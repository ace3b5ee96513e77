"""Embedded MongoDB stand-in: ``nx-27017``, a MongoDB wire-protocol server on SQLite.

No mongod can be installed on these machines, so local runs and tests use this
server; pymongo talks to it over a real socket exactly as to MongoDB. Known
defect: a datetime written through ``$set`` is stored as a string, so the app
simulator always writes whole documents. Production uses real MongoDB
(MONGO_URI).
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from stack.embedded_postgres import ServiceError


@dataclass
class EmbeddedMongo:
    data_dir: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def pid_file(self) -> Path:
        return self.data_dir.parent / "mongo.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / "mongo.log"

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}"

    def _cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        code = "import sys; from nx_27017.nx_27017 import main; sys.exit(main())"
        return subprocess.run(
            [sys.executable, "-c", code, *args, "--pid-file", str(self.pid_file)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def ping(self, timeout_ms: int = 500) -> bool:
        client: MongoClient = MongoClient(self.uri, serverSelectionTimeoutMS=timeout_ms)
        try:
            client.admin.command("ping")
            return True
        except PyMongoError:
            return False
        finally:
            client.close()

    def is_running(self) -> bool:
        return self.pid_file.exists() and self.ping()

    def start(self) -> None:
        if self.is_running():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        res = self._cli(
            "--data-dir",
            str(self.data_dir),
            "--host",
            self.host,
            "-p",
            str(self.port),
            "--log-file",
            str(self.log_file),
            "-d",
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.ping(200):
                return
            time.sleep(0.2)
        raise ServiceError(
            f"the embedded MongoDB server did not answer on {self.uri} "
            f"(is the port taken?); see {self.log_file}. {res.stderr.strip()}"
        )

    def stop(self) -> None:
        if self.pid_file.exists():
            self._cli("--stop")
        deadline = time.monotonic() + 10
        while self.ping(200) and time.monotonic() < deadline:
            time.sleep(0.2)
