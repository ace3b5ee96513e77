"""``python -m stack.superset [up|start|import|down|status]``: Superset, dashboards as code.

Superset runs in its own virtualenv (SUPERSET_VENV, default
DATA_DIR/superset/venv, installed by uv from ``dashboards/uv.lock``: its Flask
stack and Airflow's pin each other out), with its metadata in SQLite in
DATA_DIR/superset, on loopback. The dashboards,
charts, datasets and the warehouse connection are YAML files in
``dashboards/assets``; ``up`` zips them and posts the bundle to Superset's
``/api/v1/assets/import/``, which creates or overwrites each asset by uuid, so
running it again after editing a file updates the dashboards. The
warehouse's address comes from WAREHOUSE_* like everything else; its password
travels only in that request.

- ``up``: ``start``, then import the dashboards (the default; ``make dashboards``)
- ``start``: install the environment and create the metadata database when
  missing (the first time, about a minute), then start gunicorn in the background
- ``import``: import the dashboards into a running Superset
- ``down``: stop it; ``status``: whether it runs, and where
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg
import yaml

from config import (
    PROJECT_ROOT,
    ConfigError,
    DbtSettings,
    LocalSettings,
    SupersetSettings,
    WarehouseSettings,
    redact,
)
from stack.embedded_postgres import ServiceError
from stack.server_process import ServerProcess

DASHBOARDS_DIR = PROJECT_ROOT / "dashboards"  # the uv project of Superset's environment
ASSETS_DIR = DASHBOARDS_DIR / "assets"  # the bundle, in Superset's import format
DATABASE_FILE = "databases/warehouse.yaml"  # its sqlalchemy_uri is filled in from WAREHOUSE_*
PASSWORD_MASK = "XXXXXXXXXX"  # Superset's own: "the password is given separately"
MARTS_SCHEMA = "marts"  # the datasets' schema in the files; DBT_SCHEMA_PREFIX goes in front
OPS_SCHEMA = "ops"  # the platform health datasets' (the same rule)
PASSWORD_FILE = "admin-password"  # in DATA_DIR/superset: the generated password, mode 0600
SECRET_KEY_FILE = "secret-key"  # the generated SUPERSET_SECRET_KEY, mode 0600
READY_FILE = "metadata-ready"  # holds the uv.lock digest the metadata DB was set up with
# Superset gets only these of our environment: none of the project's secrets.
PASSED_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SSL_CERT_FILE")
ASSET_KINDS = ("databases", "datasets", "charts", "dashboards")
START_SECONDS = 180  # gunicorn answers /health in ~15 s here; slow CI machines take longer


@dataclass(frozen=True)
class Superset:
    """Where this Superset lives (DATA_DIR/superset) and how it is reached."""

    settings: SupersetSettings
    home: Path
    logs_dir: Path

    @classmethod
    def from_env(cls) -> Superset:
        local = LocalSettings.from_env()
        return cls(SupersetSettings.from_env(), local.data_dir / "superset", local.logs_dir)

    @property
    def venv(self) -> Path:
        return Path(self.settings.venv) if self.settings.venv else self.home / "venv"

    @property
    def url(self) -> str:
        """Where this machine reaches the server (loopback when it listens everywhere)."""
        host = self.settings.host
        host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        return f"http://{host}:{self.settings.port}"

    @property
    def process(self) -> ServerProcess:
        return ServerProcess(
            "Superset",
            f"{self.settings.host}:{self.settings.port}",
            self.home / "superset.pid",
            self.logs_dir / "superset.log",
        )

    @property
    def setup_log(self) -> Path:
        return self.logs_dir / "superset-setup.log"

    def answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).text.strip() == "OK"
        except httpx.HTTPError:
            return False

    def is_running(self) -> bool:
        return self.process.running_pid() is not None and self.answers()


# ---- secrets: from the environment, or generated once and kept 0600 beside the data


def _kept_secret(path: Path) -> tuple[str, bool]:
    """The secret in ``path``, generating it first if missing; and whether it was new."""
    if path.exists():
        return path.read_text().strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(16 if path.name == PASSWORD_FILE else 42)
    path.touch(mode=0o600)
    path.write_text(value + "\n")
    return value, True


def admin_password(superset: Superset) -> tuple[str, str]:
    """(the admin password, how to tell the user about it), as ``make airflow`` does.

    SUPERSET_ADMIN_PASSWORD when set. Otherwise one generated on the first
    start, kept in DATA_DIR/superset (readable by this user only) and printed
    that once; later starts say where it is, never the password itself.
    """
    if superset.settings.admin_password:
        return (
            superset.settings.admin_password.get_secret_value(),
            "the password is SUPERSET_ADMIN_PASSWORD",
        )
    path = superset.home / PASSWORD_FILE
    password, new = _kept_secret(path)
    if not new:
        return password, f"the password is in {path}"
    return password, (
        f"generated password (shown this once, kept in {path}; "
        f"set SUPERSET_ADMIN_PASSWORD to choose one): {password}"
    )


def secret_key(superset: Superset) -> str:
    """SUPERSET_SECRET_KEY, or one generated once. It encrypts the stored warehouse password."""
    return (
        superset.settings.secret_key.get_secret_value()
        or _kept_secret(superset.home / SECRET_KEY_FILE)[0]
    )


def superset_env(superset: Superset) -> dict[str, str]:
    """The environment of every Superset process: its own, and none of the project's secrets."""
    env = {name: os.environ[name] for name in PASSED_VARIABLES if name in os.environ}
    env["PATH"] = f"{superset.venv / 'bin'}{os.pathsep}{env.get('PATH', os.defpath)}"
    env.update(
        VIRTUAL_ENV=str(superset.venv),
        SUPERSET_HOME=str(superset.home),
        SUPERSET_CONFIG_PATH=str(DASHBOARDS_DIR / "superset_config.py"),
        SUPERSET_SECRET_KEY=secret_key(superset),
        FLASK_APP="superset",
        PYTHONUNBUFFERED="1",
    )
    return env


# ---- the environment and the metadata database, each set up once


def _uv() -> str:
    """uv: the one running this (``uv run`` sets UV), or on PATH, or where `make` installs it."""
    for candidate in (os.environ.get("UV"), shutil.which("uv")):
        if candidate:
            return candidate
    fallback = Path.home() / ".local" / "bin" / "uv"
    if fallback.exists():
        return str(fallback)
    raise ServiceError("uv not found: run `make install` (it installs uv), or put uv on PATH")


def _lock_digest() -> str:
    return hashlib.sha256((DASHBOARDS_DIR / "uv.lock").read_bytes()).hexdigest()


def _run_logged(superset: Superset, what: str, command: list[str], env: dict[str, str]) -> None:
    """Run one set-up step with its output in the set-up log; one line if it fails."""
    superset.logs_dir.mkdir(parents=True, exist_ok=True)
    with open(superset.setup_log, "ab") as log:
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {what}\n".encode())
        log.flush()
        start = log.tell()
        try:
            result = subprocess.run(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=superset.home, check=False,
            )  # fmt: skip
        except OSError as exc:  # the program itself is missing or not executable
            raise ServiceError(f"{what} failed: {exc}") from None
    if result.returncode != 0:
        with open(superset.setup_log, "rb") as log:
            log.seek(start)
            lines = [ln for ln in log.read().decode(errors="replace").splitlines() if ln.strip()]
        last = lines[-1].strip() if lines else f"exit status {result.returncode}"
        raise ServiceError(f"{what} failed: {last[-300:]}; see {superset.setup_log}")


def install(superset: Superset) -> None:
    """Superset's locked environment (a no-op in a second or so when it is up to date)."""
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(superset.venv)}
    env.pop("VIRTUAL_ENV", None)  # the project's .venv, which uv would warn about
    superset.home.mkdir(parents=True, exist_ok=True)
    _run_logged(
        superset,
        "installing Superset's environment (uv sync)",
        # Compiled at install: the environment may forbid writing bytecode later
        # (PYTHONDONTWRITEBYTECODE), and then every start compiles Superset anew.
        [_uv(), "sync", "--frozen", "--compile-bytecode", "--project", str(DASHBOARDS_DIR)],
        env,
    )


def metadata_ready(superset: Superset) -> bool:
    ready = superset.home / READY_FILE
    return ready.exists() and ready.read_text().strip() == _lock_digest()


def set_admin(superset: Superset, env: dict[str, str], password: str) -> None:
    """Create the admin user or set its password (the password in the environment, not argv)."""
    admin_env = {
        **env,
        "SUPERSET_ADMIN_USER": superset.settings.admin_user,
        "SUPERSET_ADMIN_PASSWORD": password,
    }
    _run_logged(
        superset,
        f"setting up the Superset user {superset.settings.admin_user!r}",
        [str(superset.venv / "bin" / "python"), str(DASHBOARDS_DIR / "admin_user.py")],
        admin_env,
    )


def prepare(superset: Superset, say: Callable[[str], None] = print) -> None:
    """The environment and the metadata database, each only when missing or out of date."""
    first = not (superset.venv / "bin" / "superset").exists()
    if first:
        say(f"superset  installing its own environment in {superset.venv} (first time only)")
    install(superset)
    if metadata_ready(superset):
        return
    say("superset  creating its metadata database and roles (first time only, about a minute)")
    env = superset_env(superset)
    superset_cli = str(superset.venv / "bin" / "superset")
    _run_logged(superset, "superset db upgrade", [superset_cli, "db", "upgrade"], env)
    _run_logged(superset, "superset init", [superset_cli, "init"], env)
    set_admin(superset, env, admin_password(superset)[0])
    (superset.home / READY_FILE).write_text(_lock_digest() + "\n")


def _answers_within(superset: Superset, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if superset.answers():
            return True
        time.sleep(0.5)
    return False


def start(superset: Superset, say: Callable[[str], None] = print) -> None:
    """Prepare, then start gunicorn in the background unless it already runs."""
    pid = superset.process.running_pid()
    if pid is not None:  # ours already: up, or still starting
        if _answers_within(superset, START_SECONDS):
            return
        raise ServiceError(
            f"Superset (pid {pid}) runs but does not answer on {superset.url}; see "
            f"{superset.process.log_file}, then `make dashboards-down` and try again"
        )
    prepare(superset, say)
    settings = superset.settings
    superset.process.start(
        [str(superset.venv / "bin" / "gunicorn"),
         "--bind", f"{settings.host}:{settings.port}",
         # One worker: SQLite has one writer, and one worker is ~330 MB.
         "--workers", "1", "--worker-class", "gthread", "--threads", "4",
         "--timeout", "120", "--graceful-timeout", "10",
         # Superset's long GET URLs (chart form data) exceed gunicorn's default limits.
         "--limit-request-line", "0", "--limit-request-field_size", "0",
         "superset.app:create_app()"],
        superset.answers,
        env=superset_env(superset),
        timeout=START_SECONDS,
    )  # fmt: skip
    say(f"superset  started on {superset.url}  log: {superset.process.log_file}")


def stop(superset: Superset) -> bool:
    """Stop gunicorn (and its worker); whether it was running."""
    was = superset.process.running_pid() is not None
    superset.process.stop(timeout=30)
    return was


# ---- the bundle and its import


def warehouse_uri(wh: WarehouseSettings) -> str:
    """The warehouse for Superset (psycopg2 driver), the password masked if there is one."""
    auth = quote(wh.user, safe="")
    if wh.password:
        auth += f":{PASSWORD_MASK}"
    host = f"[{wh.host}]" if ":" in wh.host else wh.host
    return (
        f"postgresql+psycopg2://{auth}@{host}:{wh.port}/{quote(wh.dbname, safe='')}"
        f"?sslmode={quote(wh.sslmode, safe='')}"
    )


def marts_schema() -> str:
    """The schema dbt builds the marts in (see dbt_project/macros/generate_schema_name.sql)."""
    return DbtSettings.from_env().marts_schema


def asset_files(assets_dir: Path = ASSETS_DIR) -> dict[str, dict]:
    """Every YAML file of the bundle, parsed, by its path in the bundle."""
    files = {}
    for path in sorted(assets_dir.rglob("*.yaml")):
        name = path.relative_to(assets_dir).as_posix()
        try:
            files[name] = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ServiceError(
                f"{path.relative_to(PROJECT_ROOT)} is not valid YAML: {exc}"
            ) from None
    if DATABASE_FILE not in files or "metadata.yaml" not in files:
        raise ServiceError(f"{assets_dir} is not a dashboards bundle (no {DATABASE_FILE})")
    return files


def bundle(wh: WarehouseSettings, assets_dir: Path = ASSETS_DIR) -> bytes:
    """The ZIP Superset imports: the files as they are, with the warehouse's URI and schema."""
    schema = marts_schema()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, config in asset_files(assets_dir).items():
            if name == DATABASE_FILE:
                config["sqlalchemy_uri"] = warehouse_uri(wh)
            elif name.startswith("datasets/") and config.get("schema") == MARTS_SCHEMA:
                config["schema"] = schema
            elif name.startswith("datasets/") and config.get("schema") == OPS_SCHEMA:
                config["schema"] = DbtSettings.from_env().ops_schema
            # Superset drops the first folder of every path in the ZIP.
            archive.writestr(f"bundle/{name}", yaml.safe_dump(config, sort_keys=False))
    return buffer.getvalue()


def _error_text(response: httpx.Response) -> str:
    """Superset's error body as one short line."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:
        first = errors[0]
        detail = json.dumps(first.get("extra", {}), default=str)[:400]
        return f"{first.get('message', '')} {detail}".strip()
    return f"HTTP {response.status_code}: {json.dumps(body, default=str)[:400]}"


class Api:
    """A logged-in session with Superset's REST API (JWT, plus the CSRF token writes need)."""

    def __init__(self, superset: Superset, password: str) -> None:
        self.client = httpx.Client(base_url=superset.url, timeout=120)
        try:
            self._login(superset, password)
        except PermissionError:
            self.client.close()
            raise
        except (ServiceError, httpx.HTTPError, KeyError, ValueError) as exc:
            self.client.close()
            if isinstance(exc, ServiceError):
                raise
            raise ServiceError(
                f"Superset at {superset.url} did not log in: {type(exc).__name__} {exc}"[:300]
            ) from None

    def _login(self, superset: Superset, password: str) -> None:
        response = self.client.post(
            "/api/v1/security/login",
            json={
                "username": superset.settings.admin_user,
                "password": password,
                "provider": "db",
                "refresh": False,
            },
        )
        if response.status_code == 401:
            raise PermissionError("login refused")
        self._check(response, "logging in")
        self.client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        csrf = self.client.get("/api/v1/security/csrf_token/")
        self._check(csrf, "getting a CSRF token")
        self.client.headers["X-CSRFToken"] = csrf.json()["result"]
        self.client.headers["Referer"] = superset.url

    @staticmethod
    def _check(response: httpx.Response, what: str) -> None:
        if response.status_code >= 400:
            raise ServiceError(f"Superset refused {what}: {_error_text(response)}")

    def get(self, path: str, **params) -> dict:
        response = self.client.get(path, params=params)
        self._check(response, f"GET {path}")
        return response.json()

    def import_bundle(self, data: bytes, passwords: dict[str, str]) -> None:
        response = self.client.post(
            "/api/v1/assets/import/",
            files={"bundle": ("dashboards.zip", data, "application/zip")},
            data={"passwords": json.dumps(passwords)},
        )
        self._check(response, "the dashboards bundle")

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def login(superset: Superset) -> Api:
    """An API session as the admin; resets the admin's password once if it no longer matches.

    The password may have changed since the metadata was created (a new
    SUPERSET_ADMIN_PASSWORD): the configured one always wins.
    """
    password = admin_password(superset)[0]
    try:
        return Api(superset, password)
    except PermissionError:
        set_admin(superset, superset_env(superset), password)
    try:
        return Api(superset, password)
    except PermissionError:
        raise ServiceError(
            f"Superset refused the login of {superset.settings.admin_user!r} even after "
            f"setting its password; see {superset.setup_log}"
        ) from None


def import_assets(
    superset: Superset, wh: WarehouseSettings, assets_dir: Path = ASSETS_DIR
) -> dict[str, int]:
    """Import (create or overwrite) everything in the bundle; count what it holds."""
    if not superset.answers():
        raise ServiceError(f"Superset does not answer on {superset.url}: run `make dashboards`")
    data = bundle(wh, assets_dir)
    passwords = {DATABASE_FILE: wh.password.get_secret_value()} if wh.password else {}
    try:
        with login(superset) as api:
            api.import_bundle(data, passwords)
    except httpx.HTTPError as exc:
        raise ServiceError(f"importing the dashboards into {superset.url}: {exc}") from None
    names = list(asset_files(assets_dir))
    return {kind: sum(n.startswith(f"{kind}/") for n in names) for kind in ASSET_KINDS}


def warehouse_note(wh: WarehouseSettings) -> str | None:
    """A warning line when the dashboards will have nothing to show, else None."""
    try:
        with psycopg.connect(wh.conninfo()) as conn:
            found = conn.execute(
                "select count(*) from information_schema.tables where table_schema = %s",
                (marts_schema(),),
            ).fetchone()
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"warning: the warehouse {wh.describe()} does not answer ({first}): charts will fail"
    if not found or not found[0]:
        return f"warning: {wh.describe()} has no {marts_schema()} schema yet: run `make run` first"
    return None


# ---- the command line


def up(superset: Superset) -> list[str]:
    wh = WarehouseSettings.from_env()
    told = admin_password(superset)[1]  # before anything uses it: a new one is shown once
    start(superset)
    counts = import_assets(superset, wh)
    settings = superset.settings
    lines = [
        f"superset  imported {counts.get('dashboards', 0)} dashboards, "
        f"{counts.get('charts', 0)} charts, {counts.get('datasets', 0)} datasets "
        f"from {ASSETS_DIR.relative_to(PROJECT_ROOT)}/ (warehouse {wh.describe()})",
        f"App metrics:          {settings.dashboard_url(settings.APP_DASHBOARD_SLUG)}",
        f"Sales and retention:  {settings.dashboard_url(settings.SALES_DASHBOARD_SLUG)}",
        f"Platform health:      {settings.dashboard_url(settings.PLATFORM_DASHBOARD_SLUG)}",
        f"login {settings.admin_user}; {told}",
        "stop it with `make dashboards-down` (or `make down`)",
    ]
    note = warehouse_note(wh)
    return [*lines, note] if note else lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stack.superset", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "command", nargs="?", default="up", choices=("up", "start", "import", "down", "status")
    )
    args = parser.parse_args(argv)
    try:
        superset = Superset.from_env()
        if args.command == "up":
            lines = up(superset)
        elif args.command == "start":
            start(superset)
            lines = [f"superset  running on {superset.url}"]
        elif args.command == "import":
            counts = import_assets(superset, WarehouseSettings.from_env())
            lines = [f"superset  imported {counts.get('dashboards', 0)} dashboards"]
        elif args.command == "down":
            lines = ["superset  stopped" if stop(superset) else "superset  was not running"]
        else:  # status: exits 1 when it does not run, like `make status`
            running = superset.is_running()
            print(f"superset  {'up' if running else 'down'}  {superset.url}")
            return 0 if running else 1
    except (ServiceError, ConfigError) as exc:
        print(f"make dashboards: {redact(str(exc))}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
