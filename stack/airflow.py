"""``python -m stack.airflow``: Airflow 3 on this machine, against the project's servers.

Everything Airflow needs comes from the project's configuration, with no
step in the UI: its metadata database is a database on the warehouse server,
its connections (AIRFLOW_CONN_*) are built from WAREHOUSE_*, OLTP_* and MONGO_*,
the DAGs are unpaused at creation, and the dbt manifest Cosmos renders from
is produced first by `dbt parse`. The components start in order: the
metadata database's migrations, the API server, then the DAG processor,
scheduler and triggerer once it answers.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import psycopg

from config import (
    DBT_PROJECT_DIR,
    PROFILES_DIR,
    PROJECT_ROOT,
    AirflowSettings,
    ConfigError,
    DbtSettings,
    LocalSettings,
    WarehouseSettings,
    redact,
)
from loaders.mongo.settings import MongoSettings
from loaders.oltp.settings import OltpSettings
from pipelines import OTHER_DBT_TARGETS
from stack import services
from stack.embedded_postgres import ServiceError, ensure_database

AIRFLOW_DB = "airflow"
PASSWORD_FILE = "admin-password"  # in AIRFLOW_HOME: the generated password, mode 0600


def warehouse_uri(wh: WarehouseSettings, dbname: str, scheme: str = "postgres") -> str:
    auth = quote(wh.user, safe="")
    if wh.password:
        auth += ":" + quote(wh.password.get_secret_value(), safe="")
    return f"{scheme}://{auth}@{wh.host}:{wh.port}/{dbname}"


def airflow_env(
    local: LocalSettings,
    wh: WarehouseSettings,
    mongo: MongoSettings,
    settings: AirflowSettings | None = None,
) -> dict[str, str]:
    """The environment of every Airflow process (on top of the project's own variables)."""
    settings = settings or AirflowSettings.from_env()
    home = local.data_dir / "airflow"
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "airflow" / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Unpaused: the clock starts at once (a bench pauses them to run one alone).
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": os.environ.get(
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "False"
        ),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        # Tasks report to the API server here (Airflow's default assumes port 8080).
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": settings.execution_api_url,
        # Each task is a fresh process that imports Airflow, Cosmos and dbt (~5 s
        # of CPU): on a small machine a few at a time finish sooner than 32.
        "AIRFLOW__CORE__PARALLELISM": os.environ.get("AIRFLOW__CORE__PARALLELISM", "4"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": os.environ.get(
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
            warehouse_uri(wh, AIRFLOW_DB, "postgresql+psycopg2"),
        ),
        # The UI and API on loopback unless AIRFLOW_HOST says otherwise, and
        # every port a setting. (Airflow's worker and triggerer log servers
        # always listen on every interface, with no setting to change it;
        # they answer only requests signed with the instance's secret key.)
        "AIRFLOW__API__HOST": settings.host,
        "AIRFLOW__API__PORT": str(settings.ui_port),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(settings.worker_log_port),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(settings.triggerer_log_port),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{settings.admin_user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        # The DAG processor re-reads the folder every 30 s, so edits show up quickly.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        # Connections for hooks and the UI, from the same settings the loaders read.
        "AIRFLOW_CONN_WAREHOUSE": warehouse_uri(wh, wh.dbname),
        "AIRFLOW_CONN_APP_MONGO": mongo.uri,
        "AIRFLOW_CONN_ORDERS_OLTP": warehouse_uri(
            OltpSettings.from_env(), OltpSettings.from_env().dbname
        ),
        # Airflow's own manifest: a hand-run `dbt build` does not re-render its DAGs.
        "DBT_MANIFEST_PATH": str(manifest_path(local)),
        # Each Cosmos task runs dbt in a copy of the project with a target/ of
        # its own: `make run`'s DBT_TARGET_PATH would have every task, and
        # concurrent ones, share one (dbt ignores an empty value). Cosmos keeps
        # the last partial parse of each DAG here, so a run after the first
        # does not parse the whole project again.
        "DBT_TARGET_PATH": "",
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos-cache"),
        # Cosmos's WATCHER producer otherwise rewrites an Airflow Variable with
        # every result so far on each node's result, to replay them on a retry
        # of the producer: work that grows with the square of the nodes, for
        # retries the transform DAGs do not make (a failed build fails at once).
        "AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY": "False",
        # No phoning home: these machines have no network, and users may not want it.
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        # Every transform DAG reads the manifest when its file is parsed: orjson
        # parses it in half the time of the json module.
        "AIRFLOW__COSMOS__ENABLE_ORJSON_PARSER": "True",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "SCARF_ANALYTICS": "false",
    }


def ensure_airflow_database(wh: WarehouseSettings) -> None:
    """Airflow's metadata database lives beside the warehouse unless configured otherwise."""
    try:
        ensure_database(wh.conninfo(), AIRFLOW_DB)
    except psycopg.Error as exc:
        raise ServiceError(
            f"cannot create the {AIRFLOW_DB!r} metadata database on {wh.describe()}: "
            f"{str(exc).strip().splitlines()[0]}; create it, or set "
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
        ) from None


def manifest_path(local: LocalSettings) -> Path:
    return local.data_dir / "airflow" / "dbt-target" / "manifest.json"


def dbt_parse(env: dict[str, str]) -> None:
    """Write the manifest Cosmos renders the transform DAGs from, and a parse per target.

    One `dbt parse` per dbt target a DAG builds on, all at once, each with the
    flags Cosmos's tasks pass (``--profile``, ``--target``: dbt keeps a partial
    parse only for the same ones). The DAGs seed Cosmos's cache with them, so
    the first run after a start does not parse the whole project again.
    """
    # Airflow's own manifest (DBT_MANIFEST_PATH in env), not make run's.
    settings = DbtSettings.from_env().model_copy(
        update={"manifest": Path(env["DBT_MANIFEST_PATH"])}
    )
    targets = [settings.target, *OTHER_DBT_TARGETS]
    dbt = Path(sys.executable).parent / "dbt"
    flags = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(PROFILES_DIR),
             "--profile", "store_analytics", "--quiet"]  # fmt: skip
    parses = []
    for target in targets:
        where = ["--target", target, "--target-path", str(settings.parse_dir(target))]
        parses.append(
            subprocess.Popen(
                [str(dbt), "parse", *flags, *where],
                env=env,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        )
    for target, proc in zip(targets, parses, strict=True):
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise ServiceError(f"dbt parse --target {target} failed: {out.strip()[-500:]}")


def admin_password(settings: AirflowSettings, home: Path) -> tuple[str, str]:
    """(the admin password, how to tell the user about it).

    AIRFLOW_ADMIN_PASSWORD when set. Otherwise one generated on the first
    start, kept in AIRFLOW_HOME (readable by this user only) and printed
    that once; later starts say where it is, never the password itself.
    """
    if settings.admin_password:
        return settings.admin_password.get_secret_value(), "the password is AIRFLOW_ADMIN_PASSWORD"
    path = home / PASSWORD_FILE
    if path.exists():
        return path.read_text().strip(), f"the password is in {path}"
    password = secrets.token_urlsafe(12)
    home.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(password + "\n")
    return password, (
        f"generated password (shown this once, kept in {path}; "
        f"set AIRFLOW_ADMIN_PASSWORD to choose one): {password}"
    )


def prepare() -> tuple[dict[str, str], str]:
    """The Airflow environment, ready to start; and the login line to print."""
    local, mongo, settings = (
        LocalSettings.from_env(),
        MongoSettings.from_env(),
        AirflowSettings.from_env(),
    )
    for line in services.up():
        print(f"service  {line}")
    wh = WarehouseSettings.from_env()  # once up: the embedded PostgreSQL's password
    if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in os.environ:
        ensure_airflow_database(wh)
    env = {**os.environ, **airflow_env(local, wh, mongo, settings)}
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    password, told = admin_password(settings, home)
    users = home / "passwords.json"
    users.touch(mode=0o600)
    users.write_text(json.dumps({settings.admin_user: password}))
    dbt_parse(env)
    return env, f"Airflow UI: {settings.ui_url}  (login {settings.admin_user}; {told})"


# The components, as the health endpoint names them. The API server is
# started first and the others once it answers: a task the scheduler starts
# reports to the API server, and dies if it is not up yet.
COMPONENTS = ("metadatabase", "scheduler", "dag_processor", "triggerer")
START_TIMEOUT_SECONDS = 300.0
STOP_TIMEOUT_SECONDS = 30.0


def health(health_url: str) -> dict | None:
    """The API server's health report; None while it does not answer."""
    try:
        with urllib.request.urlopen(health_url, timeout=5) as response:
            return json.load(response)
    except (OSError, ValueError):
        return None


def unhealthy(health_url: str) -> list[str]:
    """The components not (yet) healthy; every one of them while the API does not answer."""
    report = health(health_url)
    if report is None:
        return list(COMPONENTS)
    return [c for c in COMPONENTS if (report.get(c) or {}).get("status") != "healthy"]


def last_lines(path: Path, count: int = 15) -> str:
    lines = path.read_text(errors="replace").splitlines()[-count:]
    return "\n".join(redact(line) for line in lines)


def run_logged(
    commands: list[list[str]],
    env: dict[str, str],
    log_path: Path,
    health_url: str,
    say: Callable[[str], None] = print,
    timeout: float = START_TIMEOUT_SECONDS,
) -> int:
    """Run Airflow's components with their output in ``log_path``; say when it is up, or why not.

    ``commands[0]`` is the API server; the others start once it answers. Their
    log lines (about 10,000 in 13 minutes) go to the file, and the console
    keeps what a user acts on. One component stopping stops them all.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []

    def start(argv: list[str]) -> None:
        with log_path.open("ab") as log:
            # A session of its own: stopping a component stops what it forked too
            # (the scheduler's LocalExecutor workers and their tasks).
            procs.append(
                subprocess.Popen(
                    argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )

    def stopped() -> subprocess.Popen | None:
        return next((p for p in procs if p.poll() is not None), None)

    def wait_for(ready: Callable[[], bool], deadline: float) -> bool:
        while stopped() is None and time.monotonic() < deadline:
            if ready():
                return True
            time.sleep(1)
        return False

    say(f"starting; its log: {log_path}")
    try:
        deadline = time.monotonic() + timeout
        start(commands[0])
        up = False
        if wait_for(lambda: health(health_url) is not None, deadline):
            for argv in commands[1:]:
                start(argv)
            up = wait_for(lambda: not unhealthy(health_url), deadline)
        if up:
            say("Airflow is up; stop with Ctrl-C")
        elif (proc := stopped()) is not None:
            return _stop_all(procs, proc, log_path, say)
        else:
            waiting = ", ".join(unhealthy(health_url))
            say(f"not healthy after {timeout:.0f}s: {waiting}; see {log_path}")
        while (proc := stopped()) is None:
            time.sleep(1)
        return _stop_all(procs, proc, log_path, say)
    except KeyboardInterrupt:  # the components have sessions of their own: stop them here
        say("stopping Airflow (Ctrl-C again to kill it) ...")
        try:
            return _stop_all(procs, None, log_path, say)
        except KeyboardInterrupt:
            for p in procs:
                _signal_group(p, signal.SIGKILL)
            return 130


def _stop_all(
    procs: list[subprocess.Popen],
    first: subprocess.Popen | None,
    log_path: Path,
    say: Callable[[str], None],
) -> int:
    """Stop every component; when ``first`` stopped by itself, say how."""
    if first is not None and first.returncode != 0:
        say(f"Airflow stopped (exit {first.returncode}); the end of {log_path}:")
        say(last_lines(log_path))
    for p in procs:
        _signal_group(p, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        _signal_group(p, signal.SIGKILL)  # whatever it left behind (orphaned workers)
    return first.returncode if first is not None else 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _signal_group(proc: subprocess.Popen, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(proc.pid, sig)


def migrate(airflow: str, env: dict[str, str], log_path: Path) -> None:
    """Create or upgrade the metadata database (what `airflow standalone` does first)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        res = subprocess.run([airflow, "db", "migrate"], env=env, stdout=log, stderr=log)
    if res.returncode != 0:
        raise ServiceError(
            f"airflow db migrate failed (exit {res.returncode}); the end of {log_path}:\n"
            + last_lines(log_path)
        )


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    try:
        env, login = prepare()
    except (ServiceError, ConfigError) as exc:
        print(f"make airflow: {redact(str(exc))}", file=sys.stderr)
        return 1
    airflow = str(Path(sys.executable).parent / "airflow")
    if args:  # any other airflow command (`python -m stack.airflow dags list`): its own output
        os.execve(airflow, [airflow, *args], env)
    print(login)
    print(f"AIRFLOW_HOME={env['AIRFLOW_HOME']}")
    settings = AirflowSettings.from_env()
    log_path = LocalSettings.from_env().logs_dir / "airflow.log"
    try:
        migrate(airflow, env, log_path)
    except ServiceError as exc:
        print(f"make airflow: {exc}", file=sys.stderr)
        return 1
    components = ["api-server", "dag-processor", "scheduler", "triggerer"]
    health_url = f"{settings.ui_url}/api/v2/monitor/health"
    say = functools.partial(print, flush=True)  # seen at once, even when piped to a file
    # A service manager's stop (SIGTERM) stops Airflow as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    return run_logged([[airflow, c] for c in components], env, log_path, health_url, say)


if __name__ == "__main__":
    sys.exit(main())
