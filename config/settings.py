"""The project's own settings (warehouse, dbt, the local stack, Airflow, Superset, reports).

Every process of the project (loaders, datagen, the local stack, dbt through
``profiles/profiles.yml``, Airflow) reads the same variables; the configuration
reference (``docs/configuration-reference.md``) is generated from these classes
and each source's own (``loaders/<source>/settings.py``). Defaults point at the
embedded services that ``make up`` starts. This package depends on nothing else
in the project, so any package can read it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, ClassVar, Literal, Self
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from psycopg.conninfo import make_conninfo
from pydantic import SecretStr, field_validator
from pydantic_settings import NoDecode

from config.base import PROJECT_ROOT, BaseUrl, ConfigError, Settings, setting

__all__ = ["PROJECT_ROOT", "ConfigError"]

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
PROFILES_DIR = PROJECT_ROOT / "profiles"
# The kinds of server `make up` can start itself (stack.services.SERVERS).
EMBEDDABLE = ("postgres", "mongo", "sales_api", "kafka", "clickhouse")
# The profile's outputs on the PostgreSQL warehouse (profiles/profiles.yml).
DBT_WAREHOUSE_TARGETS = ("dev", "ci", "prod")


def anchored(path: Path | str | None, relative_to: Path = PROJECT_ROOT) -> Path | None:
    """A relative path setting anchored at the project (not the cwd); None stays None."""
    if path is None:
        return None
    path = Path(path)
    return path if path.is_absolute() else relative_to / path


class PostgresSettings(Settings):
    """A PostgreSQL server and database (the warehouse, or a source such as the OLTP).

    Read from the environment, an empty password for the embedded server running
    at this address is the one it generated on its first start
    (EMBEDDED_POSTGRES_PASSWORD_FILE). Built by hand, the values are as given.
    """

    host: str
    port: int
    user: str
    password: SecretStr
    dbname: str
    sslmode: str

    @classmethod
    def from_env(cls) -> Self:
        settings = super().from_env()
        if settings.password.get_secret_value():
            return settings
        if generated := embedded_postgres_password(settings.host, settings.port):
            return settings.model_copy(update={"password": SecretStr(generated)})
        return settings

    def conninfo(self, dbname: str | None = None) -> str:
        # make_conninfo quotes and escapes every value: a password with a quote,
        # a backslash or a space reaches the server unchanged.
        return make_conninfo(
            host=self.host,
            port=self.port,
            user=self.user,
            dbname=dbname or self.dbname,
            sslmode=self.sslmode,
            connect_timeout=5,
            application_name="store-analytics",
            password=self.password.get_secret_value() or None,
        )

    def describe(self) -> str:
        """Where the database is, without the password, for messages."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"


# In DATA_DIR/postgres: the embedded server's generated password (mode 0600),
# made on its first start unless WAREHOUSE_PASSWORD sets one.
EMBEDDED_POSTGRES_PASSWORD_FILE = "password"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def embedded_postgres_password(host: str, port: int) -> str:
    """The embedded PostgreSQL's generated password if that server is running at
    ``host:port`` (its postmaster.pid says which port), else ''."""
    if host not in LOOPBACK:
        return ""
    local = LocalSettings.from_env()
    if "postgres" not in local.embedded:
        return ""
    folder = local.data_dir / "postgres"
    try:
        running_on = int((folder / "data" / "postmaster.pid").read_text().splitlines()[3])
        if running_on != port:
            return ""
        return (folder / EMBEDDED_POSTGRES_PASSWORD_FILE).read_text().strip()
    except (OSError, IndexError, ValueError):
        return ""


class WarehouseSettings(PostgresSettings):
    """The PostgreSQL warehouse that raw data lands in and dbt builds on."""

    section: ClassVar[str] = "Warehouse (PostgreSQL): loaders, dbt (profiles/profiles.yml), Airflow"

    host: str = setting("WAREHOUSE_HOST", "127.0.0.1", "its host")
    port: int = setting("WAREHOUSE_PORT", 54329, "its port")
    user: str = setting("WAREHOUSE_USER", "postgres", "the user loaders and dbt log in as")
    password: SecretStr = setting(
        "WAREHOUSE_PASSWORD",
        SecretStr(""),
        "that user's password; empty, for the embedded server: the one it generated on its"
        " first start (DATA_DIR/postgres/password)",
    )
    dbname: str = setting("WAREHOUSE_DB", "warehouse", "the database")
    sslmode: str = setting("WAREHOUSE_SSLMODE", "prefer", "libpq's sslmode")


def schema_prefix(target: str, prefix: str) -> str:
    """What goes before every schema a target builds: generate_schema_name.sql's rule."""
    if target == "prod":
        if prefix:
            raise ConfigError(
                f"DBT_SCHEMA_PREFIX={prefix!r} with DBT_TARGET=prod: prod builds the schemas"
                " as named; unset the prefix, or use the dev or ci target"
            )
        return ""
    if target == "ci":
        return prefix or "ci_"
    return prefix


class LocalSettings(Settings):
    """Where embedded services keep data and logs, and which of them to start."""

    section: ClassVar[str] = "Which services the project starts itself"

    data_dir: Path = setting(
        "DATA_DIR", Path(".local"), "embedded servers' data, logs and run summaries (gitignored)"
    )
    embedded: Annotated[frozenset[str], NoDecode] = setting(
        "EMBEDDED_SERVICES",
        frozenset(EMBEDDABLE),
        f"comma list of {','.join(EMBEDDABLE)} to start locally, or none",
    )

    @field_validator("data_dir")
    @classmethod
    def _anchor(cls, value: Path) -> Path:
        return anchored(value)  # type: ignore[return-value]

    @field_validator("embedded", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        names = {s.strip() for s in value.split(",") if s.strip() and s.strip() != "none"}
        unknown = names - set(EMBEDDABLE)
        if unknown:
            raise ValueError(
                f"has unknown service(s) {sorted(unknown)}; "
                f"use a comma list of {','.join(EMBEDDABLE)} or 'none'"
            )
        return frozenset(names)

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    def advice(self, service: str, variables: str) -> str:
        """What to do when ``service`` does not answer: start it, or fix its settings."""
        if service in self.embedded:
            return f"run `make up` to start the embedded server, or fix {variables} in .env"
        return f"{service} is an external server here: check that it is up and {variables} in .env"


def advice(service: str, variables: str) -> str:
    """``LocalSettings.advice`` for the current environment (never fails on bad settings)."""
    try:
        return LocalSettings.from_env().advice(service, variables)
    except ConfigError:
        return f"check {variables} in .env"


class DbtSettings(Settings):
    """Where dbt's project, profile and outputs are; dbt itself reads the same variables."""

    section: ClassVar[str] = "dbt"

    target: str = setting(
        "DBT_TARGET", "dev", "the warehouse's dbt target: dev, ci (schemas prefixed ci_) or prod"
    )
    schema_: str = setting(
        "DBT_SCHEMA", "analytics", "default schema of anything without a custom one"
    )
    prefix: str = setting(
        "DBT_SCHEMA_PREFIX", "", "put before every schema on dev and ci (alice_); refused on prod"
    )
    threads: int = setting("DBT_THREADS", 4, "dbt's threads", ge=1)
    target_dir: Path = setting(
        "DBT_TARGET_PATH", Path("target"), "dbt's target/ (relative to dbt_project/)"
    )
    state_path: Path | None = setting(
        "DBT_STATE_DIR",
        None,
        "the last good build's manifest, for make dbt-changed (default DATA_DIR/dbt-state)",
    )
    manifest: Path | None = setting(
        "DBT_MANIFEST_PATH",
        None,
        "the manifest Airflow renders the dbt DAGs from (default: the target dir's)",
    )
    # How often make run's build tests every row and runs the unit tests (the
    # daily builds test the new rows only); 0: every run.
    full_check_hours: float = setting(
        "DBT_FULL_CHECK_HOURS", 168.0, "hours between make run's full checks; 0: every run", ge=0
    )
    docs_port: int = setting("DOCS_PORT", 8081, "port of make docs (the dbt docs site)")
    # Set by make run for its build (and by hand to narrow a build's tests).
    tested_before: str = setting(
        "DBT_TESTED_BEFORE", "", "tests read rows loaded after this time (ISO); empty: every row"
    )
    tested_day: str = setting(
        "DBT_TESTED_DAY", "", "tests read logical days from this one (ISO date); empty: every day"
    )
    logical_date: str = setting(
        "DBT_LOGICAL_DATE", "", "the day the as-of marts and events models are built for"
    )

    @field_validator("target")
    @classmethod
    def _known_target(cls, value: str) -> str:
        if value not in DBT_WAREHOUSE_TARGETS:
            raise ValueError(
                f"must be one of {', '.join(DBT_WAREHOUSE_TARGETS)}"
                " (profiles/profiles.yml; the clickhouse target is built beside it)"
            )
        return value

    @classmethod
    def from_env(cls) -> DbtSettings:
        settings = super().from_env()
        schema_prefix(settings.target, settings.prefix)  # refuses a prefix on prod
        return settings

    @property
    def target_path(self) -> Path:
        return anchored(self.target_dir, DBT_PROJECT_DIR)  # type: ignore[return-value]

    @property
    def state_dir(self) -> Path:
        return anchored(self.state_path) or LocalSettings.from_env().data_dir / "dbt-state"

    @property
    def manifest_path(self) -> Path:
        return anchored(self.manifest) or self.target_path / "manifest.json"

    def parse_dir(self, target: str) -> Path:
        """Where `make airflow`'s `dbt parse` on ``target`` writes: the manifest's own
        folder for the configured target, a sibling for another. Cosmos's tasks
        start from its partial parse (airflow/include/transform.py)."""
        folder = self.manifest_path.parent
        return folder if target == self.target else folder.with_name(f"{folder.name}-{target}")

    @property
    def schema_prefix(self) -> str:
        """DBT_SCHEMA_PREFIX as the target applies it (put before every schema)."""
        return schema_prefix(self.target, self.prefix)

    def marts_schema_on(self, system: str) -> str:
        """Where the marts are on ``system``: the warehouse's target's rule, or on
        ClickHouse (its own profile target) DBT_SCHEMA_PREFIX alone."""
        if system == "warehouse":
            return self.marts_schema
        return self.prefix + "marts"

    def target_for(self, system: str) -> str:
        """The profile target that builds on ``system``: "warehouse" (the configured
        DBT_TARGET) or "clickhouse" (pipelines' Source.dbt_targets)."""
        return self.target if system == "warehouse" else system

    @property
    def marts_schema(self) -> str:
        """Where the marts are (a schema on the warehouse, a database on ClickHouse)."""
        return f"{self.schema_prefix}marts"

    @property
    def audit_schema(self) -> str:
        """Where the warehouse's audit relations are: stored test failures, the quarantine."""
        return f"{self.schema_prefix}audit"

    @property
    def ops_schema(self) -> str:
        """Where the platform health models are (models/marts/ops)."""
        return f"{self.schema_prefix}ops"


class DatagenSettings(Settings):
    """The simulated store: one seed and one scale drive every source system."""

    section: ClassVar[str] = "The simulated store (datagen)"

    seed: int = setting("DATAGEN_SEED", 42, "the seed every simulator plays from")
    scale: float = setting("DATAGEN_SCALE", 1.0, "how many users and events, 1 = the default", gt=0)
    start_date: str = setting("DATAGEN_START_DATE", "2026-10-01", "the first simulated day")
    history_days: int = setting(
        "DATAGEN_HISTORY_DAYS", 7, "days written before the first run's day", ge=0
    )


class LoaderSettings(Settings):
    """How the loaders batch, and how their watermarks treat real sources' clocks."""

    section: ClassVar[str] = "Loaders"

    batch_size: int = setting("LOADER_BATCH_SIZE", 50_000, "rows per landed batch", ge=1)
    # Writes committed late (replication lag, clock skew between app servers)
    # can carry a write time just behind the watermark: every load re-reads
    # this far back and skips what has already landed.
    lookback_seconds: float = setting(
        "LOADER_LOOKBACK_SECONDS", 3600.0, "how far behind its watermark each load re-reads", ge=0
    )
    # A write time further than this ahead of the loader's clock is rejected,
    # so one bad clock cannot move the watermark to 9999-12-31.
    future_tolerance_seconds: float = setting(
        "LOADER_FUTURE_TOLERANCE_SECONDS",
        300.0,
        "a write time further ahead of the loader's clock is rejected",
        ge=0,
    )
    # Every load of an events day D re-checks the days D-k .. D-1 against
    # ClickHouse and reloads those whose row counts changed (late events).
    events_lookback_days: int = setting(
        "EVENTS_LOOKBACK_DAYS", 1, "days before each events day re-checked for late events", ge=0
    )
    # Checks whose cost grows with history (MongoDB: documents whose write time
    # no watermark can reach) run when the last one is older than this, not on
    # every load; 0 = every load.
    full_check_hours: float = setting(
        "LOADER_FULL_CHECK_HOURS", 168.0, "hours between checks that read every document", ge=0
    )

    # make run and make load/datagen run the sources side by side (each after the
    # ones its `after` names): a source waiting on its server (the partner API
    # preparing a report) no longer holds the others up. 1 = one after another.
    sources_at_once: int = setting(
        "LOADER_SOURCES_AT_ONCE", 4, "sources simulated and landed side by side", ge=1
    )

    def horizon(self) -> dt.datetime:
        """The latest time a load takes (UTC, naive): now plus the future tolerance. Later
        rows are held back until their time has come, so a clock running ahead (2100) never
        becomes a day to land nor moves a watermark."""
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        return now + dt.timedelta(seconds=self.future_tolerance_seconds)


class AirflowSettings(Settings):
    """`make airflow`: where its API server listens, its log servers' ports, its admin login.

    Loopback by default: the UI is for this machine unless AIRFLOW_HOST says
    otherwise (docker-compose sets 0.0.0.0 inside its container). An empty
    AIRFLOW_ADMIN_PASSWORD means: generate one on the first start and keep it
    in the Airflow home (see ``stack/airflow.py``).
    """

    section: ClassVar[str] = "Airflow (make airflow)"

    host: str = setting("AIRFLOW_HOST", "127.0.0.1", "where its API server listens")
    # Airflow's own variable, when a user sets it, is the fallback.
    ui_port: int = setting(("AIRFLOW_UI_PORT", "AIRFLOW__API__PORT"), 8080, "its UI and API port")
    worker_log_port: int = setting("AIRFLOW_WORKER_LOG_PORT", 8793, "the worker's log server")
    triggerer_log_port: int = setting(
        "AIRFLOW_TRIGGERER_LOG_PORT", 8794, "the triggerer's log server"
    )
    admin_user: str = setting("AIRFLOW_ADMIN_USER", "admin", "the UI's admin user")
    admin_password: SecretStr = setting(
        "AIRFLOW_ADMIN_PASSWORD", SecretStr(""), "its password; empty: generated and kept"
    )
    # The simulated source systems play one day per run of the simulate_day
    # DAG, on this cron (UTC); False: real systems, every DAG runs on the wall
    # clock's days (see airflow/include/clock.py).
    simulate: bool = setting(
        "AIRFLOW_SIMULATE", True, "simulate the sources, one day per simulate_day run"
    )
    simulate_cron: str = setting("AIRFLOW_SIMULATE_CRON", "0 0 * * *", "simulate_day's cron (UTC)")
    # How Cosmos runs dbt: "watcher", one `dbt build` per DAG run whose
    # per-model tasks watch it; "local", a dbt process per model task.
    dbt_execution_mode: Literal["watcher", "local"] = setting(
        "AIRFLOW_DBT_EXECUTION_MODE", "watcher", "how Cosmos runs dbt: watcher or local"
    )
    # When the dbt_source_freshness DAG checks every raw table (UTC cron).
    freshness_cron: str = setting(
        "AIRFLOW_FRESHNESS_CRON", "30 * * * *", "dbt_source_freshness's cron (UTC)"
    )
    # When the reconcile DAG compares every source with its raw tables (UTC cron);
    # each source is reconciled if LOADER_FULL_CHECK_HOURS have passed since its last.
    reconcile_cron: str = setting(
        "AIRFLOW_RECONCILE_CRON", "0 3 * * *", "reconcile's cron (UTC): checks what is due"
    )
    # When platform_health builds the ops models and sends the health alerts.
    health_cron: str = setting("AIRFLOW_HEALTH_CRON", "15 * * * *", "platform_health's cron (UTC)")

    @field_validator("dbt_execution_mode", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def ui_url(self) -> str:
        host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0", "::") else self.host
        return f"http://{host}:{self.ui_port}"

    @property
    def execution_api_url(self) -> str:
        """Where task processes reach the API server (Airflow assumes port 8080 otherwise)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.ui_port}/execution/"


class SupersetSettings(Settings):
    """`make dashboards`: Superset in its own virtualenv, on loopback, dashboards from files.

    An empty SUPERSET_ADMIN_PASSWORD means: generate one on the first start and
    keep it in Superset's home folder.
    """

    section: ClassVar[str] = "Superset (make dashboards)"

    host: str = setting("SUPERSET_HOST", "127.0.0.1", "where it listens")
    port: int = setting("SUPERSET_PORT", 8088, "its port")
    admin_user: str = setting("SUPERSET_ADMIN_USER", "admin", "its admin user")
    admin_password: SecretStr = setting(
        "SUPERSET_ADMIN_PASSWORD", SecretStr(""), "its password; empty: generated and kept"
    )
    public_address: str = setting(
        "SUPERSET_PUBLIC_URL", "", "how people reach it (the report's link); default: local"
    )
    secret_key: SecretStr = setting(
        "SUPERSET_SECRET_KEY",
        SecretStr(""),
        "signs sessions, encrypts the stored warehouse password; empty: generated",
    )
    venv: str = setting("SUPERSET_VENV", "", "its own virtualenv; empty: DATA_DIR/superset/venv")

    APP_DASHBOARD_SLUG: ClassVar[str] = "app-metrics"
    SALES_DASHBOARD_SLUG: ClassVar[str] = "sales-retention"
    PLATFORM_DASHBOARD_SLUG: ClassVar[str] = "platform-health"

    @property
    def public_url(self) -> str:
        local = "localhost" if self.host in ("127.0.0.1", "0.0.0.0", "::") else self.host
        return (self.public_address or f"http://{local}:{self.port}").rstrip("/")

    def dashboard_url(self, slug: str) -> str:
        return f"{self.public_url}/superset/dashboard/{slug}/"


class ReportSettings(Settings):
    """The daily app report and anomaly alerts, and the Telegram chat they go to.

    Without TELEGRAM_BOT_TOKEN (or TELEGRAM_CHAT_ID) nothing is sent: the
    report and alerts are written under ``output_dir`` instead.
    """

    section: ClassVar[str] = "Daily report and alerts (Telegram)"

    # The report goes out at report_time in this zone (the specified "local time").
    timezone: str = setting("REPORT_TIMEZONE", "Europe/Moscow", "the report's time zone (IANA)")
    report_time: str = setting("REPORT_TIME", "11:00", "when it goes out, HH:MM in that zone")
    report_dir: Path | None = setting(
        "REPORT_DIR", None, "one dated folder per report, alerts beside (default DATA_DIR/reports)"
    )
    bot_token: SecretStr = setting(
        "TELEGRAM_BOT_TOKEN", SecretStr(""), "the bot's token; empty: reports go to disk"
    )
    chat_id: str = setting("TELEGRAM_CHAT_ID", "", "the chat reports and alerts go to")
    # A local recorder in tests, a proxy in some networks.
    api_url: BaseUrl = setting(
        "TELEGRAM_API_URL", "https://api.telegram.org", "the Bot API's base URL"
    )
    timeout_seconds: float = setting("TELEGRAM_TIMEOUT_SECONDS", 30.0, "per request", gt=0)
    attempts: int = setting("TELEGRAM_ATTEMPTS", 5, "per request, on 5xx, 429, timeouts", ge=1)
    backoff_seconds: float = setting(
        "TELEGRAM_BACKOFF_SECONDS", 1.0, "the first wait without Retry-After; it doubles", ge=0
    )
    alert_chart_hours: int = setting("ALERT_CHART_HOURS", 6, "history an alert's chart shows", ge=1)
    alert_max_age_hours: int = setting(
        "ALERT_MAX_AGE_HOURS", 24, "flags older than this (before the latest) are not alerted", ge=1
    )
    alerts_target: Literal["clickhouse", "warehouse"] = setting(
        "ALERTS_DBT_TARGET", "clickhouse", "where the alerts read feed_anomalies"
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not a time zone; use an IANA name such as Europe/Moscow") from None
        return value

    @field_validator("report_time")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        hour, _, minute = value.partition(":")
        if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
            raise ValueError("is not a time of day like 11:00")
        return f"{int(hour):02d}:{int(minute):02d}"

    @property
    def output_dir(self) -> Path:
        return anchored(self.report_dir) or LocalSettings.from_env().data_dir / "reports"

    @property
    def sends(self) -> bool:
        """True when a bot and a chat are configured; otherwise reports go to disk."""
        return bool(self.bot_token.get_secret_value() and self.chat_id)


class HealthSettings(Settings):
    """Platform health: dbt's artifacts in the warehouse, the ``ops`` models, health alerts.

    Alerts go where the report goes (ReportSettings), each recorded once.
    """

    section: ClassVar[str] = "Platform health (ops models and alerts)"

    enabled: bool = setting(
        "HEALTH_ENABLED", True, "land dbt's artifacts, build the ops models, send health alerts"
    )
    reject_alert_rows: int = setting(
        "HEALTH_REJECT_ALERT_ROWS",
        100,
        "a table's rejected (or a model's quarantined) rows a day: alert",
        ge=1,
    )
    stale_after_hours: float = setting(
        "HEALTH_STALE_AFTER_HOURS", 26.0, "a source landing nothing for this long alerts", gt=0
    )
    alert_max_age_days: int = setting(
        "HEALTH_ALERT_MAX_AGE_DAYS", 2, "older failures, anomalies, rejects: not alerted", ge=1
    )


def mask_uri_password(uri: str) -> str:
    """``scheme://user:***@host/...``: the URI without its password."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparsable URI>"
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


CORE_SETTINGS: tuple[type[Settings], ...] = (
    LocalSettings,
    WarehouseSettings,
    DbtSettings,
    LoaderSettings,
    DatagenSettings,
    AirflowSettings,
    SupersetSettings,
    ReportSettings,
    HealthSettings,
)
__all__ += [c.__name__ for c in CORE_SETTINGS]
