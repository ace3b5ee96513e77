"""Connection and run settings, read from the environment in one place.

Every process of the project (loaders, datagen, the local stack, dbt through
``profiles/profiles.yml``, Airflow) reads the same variables, documented in
``.env.example``. Defaults point at the embedded services that ``make up`` starts.
This package depends on nothing else in the project, so any package can read it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from psycopg.conninfo import make_conninfo

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _env_int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not an integer; fix it in .env or the environment"
        ) from None


def _env_float(name: str, default: float) -> float:
    raw = _env(name, str(default))
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not a number; fix it in .env or the environment"
        ) from None


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name, "true" if default else "false").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not true or false; fix it in .env or the environment")


def _env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = _env(name, default).strip().lower()
    if raw not in choices:
        raise ConfigError(
            f"{name}={raw!r} is not one of {', '.join(choices)}; fix it in .env or the environment"
        )
    return raw


@dataclass(frozen=True)
class WarehouseSettings:
    """The PostgreSQL warehouse that raw data lands in and dbt builds on."""

    host: str
    port: int
    user: str
    password: str
    dbname: str
    sslmode: str

    @classmethod
    def from_env(cls) -> WarehouseSettings:
        return cls(
            host=_env("WAREHOUSE_HOST", "127.0.0.1"),
            port=_env_int("WAREHOUSE_PORT", 54329),
            user=_env("WAREHOUSE_USER", "postgres"),
            password=_env("WAREHOUSE_PASSWORD", ""),
            dbname=_env("WAREHOUSE_DB", "warehouse"),
            sslmode=_env("WAREHOUSE_SSLMODE", "prefer"),
        )

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
            password=self.password or None,
        )

    def describe(self) -> str:
        """Where the warehouse is, without the password, for messages."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"


@dataclass(frozen=True)
class MongoSettings:
    """The MongoDB app database (the source of the first pipeline)."""

    uri: str
    database: str

    @classmethod
    def from_env(cls) -> MongoSettings:
        return cls(
            uri=_env("MONGO_URI", "mongodb://127.0.0.1:27117"),
            database=_env("MONGO_DB", "app"),
        )

    def describe(self) -> str:
        """The URI with any password masked, for messages."""
        return mask_uri_password(self.uri)


@dataclass(frozen=True)
class OltpSettings(WarehouseSettings):
    """The order system's OLTP PostgreSQL: a source, read-only for the loader.

    Locally a separate database (``oltp``) on the embedded PostgreSQL server;
    ``OLTP_*`` point at a real one (use a replica or a read-only user).
    """

    @classmethod
    def from_env(cls) -> OltpSettings:
        return cls(
            host=_env("OLTP_HOST", _env("WAREHOUSE_HOST", "127.0.0.1")),
            port=_env_int("OLTP_PORT", _env_int("WAREHOUSE_PORT", 54329)),
            user=_env("OLTP_USER", "postgres"),
            password=_env("OLTP_PASSWORD", ""),
            dbname=_env("OLTP_DB", "oltp"),
            sslmode=_env("OLTP_SSLMODE", "prefer"),
        )


@dataclass(frozen=True)
class KafkaSettings:
    """The Kafka broker and the order system's topic of new registrations."""

    bootstrap_servers: str
    topic: str
    partitions: int  # when the project creates the topic (embedded broker, datagen)
    security_protocol: str  # PLAINTEXT locally; SASL_SSL etc. for a real cluster
    sasl_mechanism: str
    sasl_username: str
    sasl_password: str
    timeout_seconds: float  # per broker request (metadata, watermarks) before giving up

    @classmethod
    def from_env(cls) -> KafkaSettings:
        partitions = _env_int("KAFKA_PARTITIONS", 3)
        if partitions < 1:
            raise ConfigError(f"KAFKA_PARTITIONS={partitions} must be at least 1")
        return cls(
            bootstrap_servers=_env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092"),
            topic=_env("KAFKA_NEW_USERS_TOPIC", "new_users_events"),
            partitions=partitions,
            security_protocol=_env("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"),
            sasl_mechanism=_env("KAFKA_SASL_MECHANISM", ""),
            sasl_username=_env("KAFKA_SASL_USERNAME", ""),
            sasl_password=_env("KAFKA_SASL_PASSWORD", ""),
            timeout_seconds=_env_float("KAFKA_TIMEOUT_SECONDS", 10.0),
        )

    def client_config(self) -> dict[str, str]:
        """librdkafka settings shared by the producer, the consumer and the admin client."""
        conf = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
            conf["sasl.username"] = self.sasl_username
            conf["sasl.password"] = self.sasl_password
        return conf


@dataclass(frozen=True)
class ClickHouseSettings:
    """ClickHouse (the feed and messenger events' store), over its HTTP interface.

    Locally the project's own small HTTP server over the chdb engine
    (``stack/embedded_clickhouse.py``); ``CLICKHOUSE_*`` point at a real server.
    """

    host: str
    port: int
    user: str
    password: str
    database: str
    secure: bool  # HTTPS

    @classmethod
    def from_env(cls) -> ClickHouseSettings:
        return cls(
            host=_env("CLICKHOUSE_HOST", "127.0.0.1"),
            port=_env_int("CLICKHOUSE_PORT", 18123),
            user=_env("CLICKHOUSE_USER", "default"),
            password=_env("CLICKHOUSE_PASSWORD", ""),
            database=_env("CLICKHOUSE_DB", "events"),
            secure=_env("CLICKHOUSE_SECURE", "false").lower() in ("1", "true", "yes"),
        )

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.host}:{self.port}"

    def describe(self) -> str:
        """Where the server is, without the password, for messages."""
        return f"{self.url} (user {self.user}, database {self.database})"


@dataclass(frozen=True)
class AirflowSettings:
    """`make airflow`: where its API server listens, its log servers' ports, its admin login.

    Loopback by default: the UI is for this machine unless AIRFLOW_HOST says
    otherwise (docker-compose sets 0.0.0.0 inside its container). An empty
    AIRFLOW_ADMIN_PASSWORD means: generate one on the first start and keep it
    in the Airflow home (see ``stack/airflow.py``).
    """

    host: str
    ui_port: int
    worker_log_port: int
    triggerer_log_port: int
    admin_user: str
    admin_password: str
    # The simulated source systems play one day per run of the simulate_day
    # DAG, on this cron (UTC); False: real systems, every DAG runs on the wall
    # clock's days (see airflow/include/clock.py).
    simulate: bool = True
    simulate_cron: str = "0 0 * * *"
    # How Cosmos runs dbt: "watcher", one `dbt build` per DAG run whose
    # per-model tasks watch it; "local", a dbt process per model task (see
    # README, Airflow).
    dbt_execution_mode: str = "watcher"
    # When the dbt_source_freshness DAG checks every raw table (UTC cron).
    freshness_cron: str = "30 * * * *"

    @classmethod
    def from_env(cls) -> AirflowSettings:
        return cls(
            host=_env("AIRFLOW_HOST", "127.0.0.1"),
            # Airflow's own variable, when a user sets it, is the default.
            ui_port=_env_int("AIRFLOW_UI_PORT", _env_int("AIRFLOW__API__PORT", 8080)),
            worker_log_port=_env_int("AIRFLOW_WORKER_LOG_PORT", 8793),
            triggerer_log_port=_env_int("AIRFLOW_TRIGGERER_LOG_PORT", 8794),
            admin_user=_env("AIRFLOW_ADMIN_USER", "admin"),
            admin_password=_env("AIRFLOW_ADMIN_PASSWORD", ""),
            simulate=_env_bool("AIRFLOW_SIMULATE", True),
            simulate_cron=_env("AIRFLOW_SIMULATE_CRON", "0 0 * * *"),
            dbt_execution_mode=_env_choice(
                "AIRFLOW_DBT_EXECUTION_MODE", "watcher", ("watcher", "local")
            ),
            freshness_cron=_env("AIRFLOW_FRESHNESS_CRON", "30 * * * *"),
        )

    @property
    def ui_url(self) -> str:
        host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0", "::") else self.host
        return f"http://{host}:{self.ui_port}"

    @property
    def execution_api_url(self) -> str:
        """Where task processes reach the API server (Airflow assumes port 8080 otherwise)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.ui_port}/execution/"


@dataclass(frozen=True)
class SupersetSettings:
    """`make dashboards`: Superset in its own virtualenv, on loopback, dashboards from files.

    ``public_url`` is how people reach it (the report's dashboard link); it
    defaults to the local address. An empty SUPERSET_ADMIN_PASSWORD means:
    generate one on the first start and keep it in Superset's home folder.
    """

    host: str
    port: int
    admin_user: str
    admin_password: str
    public_url: str
    secret_key: str  # signs sessions and encrypts the stored warehouse password; empty: generated
    venv: str = ""  # its own virtualenv; empty: DATA_DIR/superset/venv

    APP_DASHBOARD_SLUG = "app-metrics"
    SALES_DASHBOARD_SLUG = "sales-retention"

    @classmethod
    def from_env(cls) -> SupersetSettings:
        host = _env("SUPERSET_HOST", "127.0.0.1")
        port = _env_int("SUPERSET_PORT", 8088)
        local = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
        return cls(
            host=host,
            port=port,
            admin_user=_env("SUPERSET_ADMIN_USER", "admin"),
            admin_password=_env("SUPERSET_ADMIN_PASSWORD", ""),
            public_url=_env("SUPERSET_PUBLIC_URL", f"http://{local}:{port}").rstrip("/"),
            secret_key=_env("SUPERSET_SECRET_KEY", ""),
            venv=_env("SUPERSET_VENV", ""),
        )

    def dashboard_url(self, slug: str) -> str:
        return f"{self.public_url}/superset/dashboard/{slug}/"


@dataclass(frozen=True)
class ReportSettings:
    """The daily app report and anomaly alerts, and the Telegram chat they go to.

    Without TELEGRAM_BOT_TOKEN (or TELEGRAM_CHAT_ID) nothing is sent: the
    report and alerts are written under ``output_dir`` instead.
    """

    timezone: str  # the report goes out at report_time in this zone (the specified "local time")
    report_time: str  # HH:MM
    output_dir: Path  # one dated folder per report; alerts beside them
    bot_token: str
    chat_id: str
    api_url: str  # the Bot API's base URL (a local recorder in tests, a proxy in some networks)
    timeout_seconds: float  # per request
    attempts: int  # per request, on 5xx, 429 and timeouts
    backoff_seconds: float  # the first wait when no Retry-After is given; it doubles
    alert_chart_hours: int  # how much history an alert's chart shows
    alert_max_age_hours: int  # flags older than this (before the latest slice) are not alerted
    alerts_target: str  # where the alerts read feed_anomalies: warehouse or clickhouse

    @classmethod
    def from_env(cls) -> ReportSettings:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        timezone = _env("REPORT_TIMEZONE", "Europe/Moscow")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"REPORT_TIMEZONE={timezone!r} is not a time zone; use an IANA name "
                "such as Europe/Moscow or UTC"
            ) from None
        report_time = _env("REPORT_TIME", "11:00")
        hour, _, minute = report_time.partition(":")
        if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
            raise ConfigError(f"REPORT_TIME={report_time!r} is not a time of day like 11:00")
        attempts = _env_int("TELEGRAM_ATTEMPTS", 5)
        if attempts < 1:
            raise ConfigError(f"TELEGRAM_ATTEMPTS={attempts} must be at least 1")
        chart_hours = _env_int("ALERT_CHART_HOURS", 6)
        if chart_hours < 1:
            raise ConfigError(f"ALERT_CHART_HOURS={chart_hours} must be at least 1")
        max_age = _env_int("ALERT_MAX_AGE_HOURS", 24)
        if max_age < 1:
            raise ConfigError(f"ALERT_MAX_AGE_HOURS={max_age} must be at least 1")
        alerts_target = _env("ALERTS_DBT_TARGET", "clickhouse")
        if alerts_target not in ("clickhouse", "warehouse"):
            raise ConfigError(
                f"ALERTS_DBT_TARGET={alerts_target!r} must be clickhouse or warehouse"
            )
        return cls(
            timezone=timezone,
            report_time=f"{int(hour):02d}:{int(minute):02d}",
            output_dir=_env_path("REPORT_DIR", LocalSettings.from_env().data_dir / "reports"),
            bot_token=_env("TELEGRAM_BOT_TOKEN", ""),
            chat_id=_env("TELEGRAM_CHAT_ID", ""),
            api_url=_env("TELEGRAM_API_URL", "https://api.telegram.org").rstrip("/"),
            timeout_seconds=_env_float("TELEGRAM_TIMEOUT_SECONDS", 30.0),
            attempts=attempts,
            backoff_seconds=_env_float("TELEGRAM_BACKOFF_SECONDS", 1.0),
            alert_chart_hours=chart_hours,
            alert_max_age_hours=max_age,
            alerts_target=alerts_target,
        )

    @property
    def sends(self) -> bool:
        """True when a bot and a chat are configured; otherwise reports go to disk."""
        return bool(self.bot_token and self.chat_id)


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


EMBEDDABLE = ("postgres", "mongo", "sales_api", "kafka", "clickhouse")


def _env_path(name: str, default: Path, relative_to: Path = PROJECT_ROOT) -> Path:
    """A path setting; empty means the default, and a relative path is anchored (not the cwd)."""
    path = Path(_env(name, str(default)))
    return path if path.is_absolute() else relative_to / path


@dataclass(frozen=True)
class LocalSettings:
    """Where embedded services keep data and logs, and which of them to start."""

    data_dir: Path
    embedded: frozenset[str]
    sales_storage_dir: Path  # the partner's increments, one date=YYYY-MM-DD folder each

    @classmethod
    def from_env(cls) -> LocalSettings:
        data_dir = _env_path("DATA_DIR", PROJECT_ROOT / ".local")
        raw = os.environ.get("EMBEDDED_SERVICES", ",".join(EMBEDDABLE))
        embedded = frozenset(s.strip() for s in raw.split(",") if s.strip() and s.strip() != "none")
        unknown = embedded - set(EMBEDDABLE)
        if unknown:
            raise ConfigError(
                f"EMBEDDED_SERVICES has unknown service(s) {sorted(unknown)}; "
                f"use a comma list of {','.join(EMBEDDABLE)} or 'none'"
            )
        return cls(
            data_dir=data_dir,
            embedded=embedded,
            sales_storage_dir=_env_path("SALES_STORAGE_DIR", data_dir / "sales_api"),
        )

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


@dataclass(frozen=True)
class DatagenSettings:
    """The simulated store: one seed and one scale drive every source system."""

    seed: int
    scale: float
    start_date: str
    history_days: int

    @classmethod
    def from_env(cls) -> DatagenSettings:
        return cls(
            seed=_env_int("DATAGEN_SEED", 42),
            scale=_env_float("DATAGEN_SCALE", 1.0),
            start_date=_env("DATAGEN_START_DATE", "2026-10-01"),
            history_days=_env_int("DATAGEN_HISTORY_DAYS", 7),
        )


@dataclass(frozen=True)
class SalesApiSettings:
    """The partner sales API: where it is, and how patiently to wait for it."""

    url: str
    api_key: str
    poll_seconds: float  # between report status checks (the specified interval is 10 s)
    deadline_seconds: float  # give up on a report that is not ready by then
    timeout_seconds: float  # per HTTP request
    attempts: int  # per request, on 5xx and timeouts, with exponential backoff
    backoff_seconds: float  # the first wait between attempts; it doubles each time

    @classmethod
    def from_env(cls) -> SalesApiSettings:
        attempts = _env_int("SALES_API_ATTEMPTS", 5)
        if attempts < 1:
            raise ConfigError(f"SALES_API_ATTEMPTS={attempts} must be at least 1")
        return cls(
            url=_env("SALES_API_URL", "http://127.0.0.1:8090").rstrip("/"),
            api_key=_env("SALES_API_KEY", "local-dev-key"),
            poll_seconds=_env_float("SALES_API_POLL_SECONDS", 1.0),
            deadline_seconds=_env_float("SALES_API_DEADLINE_SECONDS", 300.0),
            timeout_seconds=_env_float("SALES_API_TIMEOUT_SECONDS", 30.0),
            attempts=attempts,
            backoff_seconds=_env_float("SALES_API_BACKOFF_SECONDS", 1.0),
        )


@dataclass(frozen=True)
class LoaderSettings:
    """How the loaders batch, and how their watermarks treat real sources' clocks."""

    batch_size: int
    # Writes committed late (replication lag, clock skew between app servers)
    # can carry a write time just behind the watermark: every load re-reads
    # this far back and skips what has already landed.
    lookback_seconds: float
    # A write time further than this ahead of the loader's clock is rejected,
    # so one bad clock cannot move the watermark to 9999-12-31.
    future_tolerance_seconds: float
    # Every load of an events day D re-checks the days D-k .. D-1 against
    # ClickHouse and reloads those whose row counts changed (late events).
    events_lookback_days: int = 1
    # Checks whose cost grows with history (MongoDB: documents whose write time
    # no watermark can reach) run when the last one is older than this, not on
    # every load; 0 = every load.
    full_check_hours: float = 168.0

    @classmethod
    def from_env(cls) -> LoaderSettings:
        size = _env_int("LOADER_BATCH_SIZE", 50_000)
        if size < 1:
            raise ConfigError(f"LOADER_BATCH_SIZE={size} must be at least 1")
        lookback = _env_float("LOADER_LOOKBACK_SECONDS", 3600)
        future = _env_float("LOADER_FUTURE_TOLERANCE_SECONDS", 300)
        if lookback < 0 or future < 0:
            raise ConfigError(
                "LOADER_LOOKBACK_SECONDS and LOADER_FUTURE_TOLERANCE_SECONDS must be >= 0"
            )
        events_lookback = _env_int("EVENTS_LOOKBACK_DAYS", 1)
        if events_lookback < 0:
            raise ConfigError(f"EVENTS_LOOKBACK_DAYS={events_lookback} must be at least 0")
        full_check = _env_float("LOADER_FULL_CHECK_HOURS", 168.0)
        if full_check < 0:
            raise ConfigError(f"LOADER_FULL_CHECK_HOURS={full_check:g} must be >= 0")
        return cls(
            batch_size=size,
            lookback_seconds=lookback,
            future_tolerance_seconds=future,
            events_lookback_days=events_lookback,
            full_check_hours=full_check,
        )


DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
PROFILES_DIR = PROJECT_ROOT / "profiles"


# The profile's outputs on the PostgreSQL warehouse (profiles/profiles.yml).
DBT_WAREHOUSE_TARGETS = ("dev", "ci", "prod")


def schema_prefix(target: str) -> str:
    """What goes before every schema a target builds: generate_schema_name.sql's rule."""
    prefix = os.environ.get("DBT_SCHEMA_PREFIX", "")
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


@dataclass(frozen=True)
class DbtSettings:
    """Where dbt's project, profile and outputs are; dbt itself reads the same variables."""

    target: str  # the profile's output (profiles/profiles.yml)
    target_path: Path  # dbt's target/ (DBT_TARGET_PATH, relative to the project as dbt has it)
    state_dir: Path  # the last good build's manifest, for `make dbt-changed`
    manifest_path: Path  # the manifest Airflow's Cosmos DAGs render from
    schema_prefix: str = ""  # DBT_SCHEMA_PREFIX: put before every schema (staging, marts, ...)
    # DBT_FULL_CHECK_HOURS: how often make run's build tests every row and runs
    # the unit tests (the daily builds test the new rows only); 0: every run.
    full_check_hours: float = 168.0

    @classmethod
    def from_env(cls) -> DbtSettings:
        local = LocalSettings.from_env()
        target_path = _env_path("DBT_TARGET_PATH", Path("target"), relative_to=DBT_PROJECT_DIR)
        full_check = _env_float("DBT_FULL_CHECK_HOURS", 168.0)
        if full_check < 0:
            raise ConfigError(f"DBT_FULL_CHECK_HOURS={full_check:g} must be >= 0")
        target = _env("DBT_TARGET", "dev")
        if target not in DBT_WAREHOUSE_TARGETS:
            raise ConfigError(
                f"DBT_TARGET={target!r} must be one of {', '.join(DBT_WAREHOUSE_TARGETS)}"
                " (profiles/profiles.yml; the clickhouse target is built beside it)"
            )
        return cls(
            full_check_hours=full_check,
            target=target,
            target_path=target_path,
            state_dir=_env_path("DBT_STATE_DIR", local.data_dir / "dbt-state"),
            manifest_path=_env_path("DBT_MANIFEST_PATH", target_path / "manifest.json"),
            schema_prefix=schema_prefix(target),
        )

    def marts_schema_on(self, system: str) -> str:
        """Where the marts are on ``system``: the warehouse's target's rule, or on
        ClickHouse (its own profile target) DBT_SCHEMA_PREFIX alone."""
        if system == "warehouse":
            return self.marts_schema
        return os.environ.get("DBT_SCHEMA_PREFIX", "") + "marts"

    def target_for(self, system: str) -> str:
        """The profile target that builds on ``system``: "warehouse" (the configured
        DBT_TARGET) or "clickhouse" (pipelines' Source.dbt_targets)."""
        return self.target if system == "warehouse" else system

    @property
    def marts_schema(self) -> str:
        """Where the marts are (a schema on the warehouse, a database on ClickHouse)."""
        return f"{self.schema_prefix}marts"
