"""``python -m stack.airflow``: Airflow 3 standalone against the project's servers.

Everything Airflow needs comes from the project's configuration, with no
step in the UI: its metadata database is a database on the warehouse server,
its connections (AIRFLOW_CONN_*) are built from WAREHOUSE_*, OLTP_*, MONGO_* and
KAFKA_* (the Kafka one also serves the triggerer's queue watcher), the
DAGs are unpaused at creation, and the dbt manifest Cosmos renders from is
produced first by `dbt parse`.
"""

from __future__ import annotations

import json
import os
import secrets
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
    KafkaSettings,
    LocalSettings,
    MongoSettings,
    OltpSettings,
    WarehouseSettings,
    redact,
)
from stack import services
from stack.embedded_postgres import ServiceError, ensure_database

AIRFLOW_DB = "airflow"
PASSWORD_FILE = "admin-password"  # in AIRFLOW_HOME: the generated password, mode 0600


def warehouse_uri(wh: WarehouseSettings, dbname: str, scheme: str = "postgres") -> str:
    auth = quote(wh.user, safe="")
    if wh.password:
        auth += ":" + quote(wh.password, safe="")
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
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
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
        "AIRFLOW_CONN_KAFKA_DEFAULT": kafka_connection(KafkaSettings.from_env()),
        # Airflow's own manifest: a hand-run `dbt build` does not re-render its DAGs.
        "DBT_MANIFEST_PATH": str(manifest_path(local)),
        # No phoning home: these machines have no network, and users may not want it.
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "SCARF_ANALYTICS": "false",
    }


def kafka_connection(kafka: KafkaSettings) -> str:
    """The ``kafka_default`` connection as JSON: the queue watcher's consumer settings."""
    extra = {
        **kafka.client_config(),
        # The watcher's own group: it only rings the bell, the loader keeps the
        # real offsets in the warehouse. Short group timeouts let it join in
        # seconds rather than ~25 s (every member of a group must use them).
        "group.id": "store-analytics-airflow-watcher",
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "max.poll.interval.ms": 10000,
    }
    return json.dumps({"conn_type": "kafka", "extra": extra})


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
    """Write the manifest Cosmos renders the transform DAG from."""
    target = Path(env["DBT_MANIFEST_PATH"]).parent
    dbt = Path(sys.executable).parent / "dbt"
    res = subprocess.run(
        [str(dbt), "parse", "--project-dir", str(DBT_PROJECT_DIR),
         "--profiles-dir", str(PROFILES_DIR), "--target-path", str(target), "--quiet"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if res.returncode != 0:
        raise ServiceError(f"dbt parse failed: {(res.stdout + res.stderr).strip()[-500:]}")


def admin_password(settings: AirflowSettings, home: Path) -> tuple[str, str]:
    """(the admin password, how to tell the user about it).

    AIRFLOW_ADMIN_PASSWORD when set. Otherwise one generated on the first
    start, kept in AIRFLOW_HOME (readable by this user only) and printed
    that once; later starts say where it is, never the password itself.
    """
    if settings.admin_password:
        return settings.admin_password, "the password is AIRFLOW_ADMIN_PASSWORD"
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
    local, wh, mongo, settings = (
        LocalSettings.from_env(),
        WarehouseSettings.from_env(),
        MongoSettings.from_env(),
        AirflowSettings.from_env(),
    )
    for line in services.up():
        print(f"service  {line}")
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


# The components `airflow standalone` starts, as its health endpoint names them.
COMPONENTS = ("metadatabase", "scheduler", "dag_processor", "triggerer")
START_TIMEOUT_SECONDS = 300.0


def unhealthy(health_url: str) -> list[str]:
    """The components not (yet) healthy; every one of them while the API does not answer."""
    try:
        with urllib.request.urlopen(health_url, timeout=5) as response:
            health = json.load(response)
    except (OSError, ValueError):
        return list(COMPONENTS)
    return [c for c in COMPONENTS if (health.get(c) or {}).get("status") != "healthy"]


def last_lines(path: Path, count: int = 15) -> str:
    lines = path.read_text(errors="replace").splitlines()[-count:]
    return "\n".join(redact(line) for line in lines)


def run_logged(
    argv: list[str],
    env: dict[str, str],
    log_path: Path,
    health_url: str,
    say: Callable[[str], None] = print,
    timeout: float = START_TIMEOUT_SECONDS,
) -> int:
    """Run Airflow with its output in ``log_path``; say when it is up, or why it stopped.

    `airflow standalone` writes every component's log lines to its console
    (about 10,000 lines in 13 minutes): they go to the file, and the console
    keeps what a user acts on.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    say(f"starting; its log: {log_path}")
    try:
        deadline, waiting = time.monotonic() + timeout, list(COMPONENTS)
        while waiting and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(1)
            waiting = unhealthy(health_url)
        if proc.poll() is not None:
            say(f"Airflow stopped (exit {proc.returncode}); the end of {log_path}:")
            say(last_lines(log_path))
            return proc.returncode or 1
        if waiting:
            say(f"not healthy after {timeout:.0f}s: {', '.join(waiting)}; see {log_path}")
        else:
            say("Airflow is up; stop with Ctrl-C")
        return proc.wait()
    except KeyboardInterrupt:  # the terminal sent SIGINT to Airflow too: let it stop cleanly
        say("stopping Airflow (Ctrl-C again to kill it) ...")
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.kill()
            return proc.wait()


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    try:
        env, login = prepare()
    except (ServiceError, ConfigError) as exc:
        print(f"make airflow: {redact(str(exc))}", file=sys.stderr)
        return 1
    airflow = Path(sys.executable).parent / "airflow"
    if args:  # any other airflow command (`python -m stack.airflow dags list`): its own output
        os.execve(str(airflow), [str(airflow), *args], env)
    print(login)
    print(f"AIRFLOW_HOME={env['AIRFLOW_HOME']}")
    settings = AirflowSettings.from_env()
    log_path = LocalSettings.from_env().logs_dir / "airflow.log"
    return run_logged(
        [str(airflow), "standalone"], env, log_path, f"{settings.ui_url}/api/v2/monitor/health"
    )


if __name__ == "__main__":
    sys.exit(main())
