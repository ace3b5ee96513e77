"""docker-compose.yml's structure (no Docker engine here to run it): services,
health checks, start order, and the environment the project reads."""

from __future__ import annotations

import re

import yaml

from config import PROJECT_ROOT

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_the_whole_stack_is_there() -> None:
    assert {
        "mongo",
        "warehouse",
        "oltp",
        "kafka",
        "clickhouse",
        "sales-api",
        "airflow",
        "pipeline",
    } <= set(SERVICES)


def test_long_running_services_have_health_checks() -> None:
    for name in ("mongo", "warehouse", "oltp", "kafka", "clickhouse", "sales-api", "airflow"):
        check = SERVICES[name]["healthcheck"]
        assert check["test"] and check["retries"] >= 3, name


def test_project_services_start_after_healthy_servers() -> None:
    for name in ("airflow", "pipeline"):
        depends = SERVICES[name]["depends_on"]
        assert set(depends) == {"mongo", "warehouse", "oltp", "kafka", "clickhouse", "sales-api"}, (
            name
        )
        assert all(d["condition"] == "service_healthy" for d in depends.values()), name


def test_project_services_point_at_the_compose_servers_not_embedded_ones() -> None:
    for name in ("sales-api", "airflow", "pipeline"):
        env = SERVICES[name]["environment"]
        assert env["EMBEDDED_SERVICES"] == "none"
        assert env["WAREHOUSE_HOST"] == "warehouse"
        assert "@mongo:27017" in env["MONGO_URI"]
        assert env["SALES_API_URL"] == "http://sales-api:8090"
        assert env["OLTP_HOST"] == "oltp"
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["CLICKHOUSE_HOST"] == "clickhouse"


SERVERS = ("mongo", "warehouse", "oltp", "kafka", "clickhouse", "sales-api")
SECRETS = ("WAREHOUSE_PASSWORD", "OLTP_PASSWORD", "CLICKHOUSE_PASSWORD", "MONGO_PASSWORD",
           "SALES_API_KEY")  # fmt: skip


def test_every_port_is_published_on_loopback_only() -> None:
    published = [(name, p) for name, s in SERVICES.items() for p in s.get("ports", [])]
    assert len(published) >= 9
    for name, port in published:
        assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_no_service_has_a_default_password() -> None:
    text = (PROJECT_ROOT / "docker-compose.yml").read_text()
    for secret in SECRETS:
        uses = re.findall(r"\$\{" + secret + r"([^}]*)\}", text)
        assert uses, secret
        assert all(use.startswith(":?") for use in uses), f"{secret} has a default: {uses}"


def test_the_image_never_copies_local_state_or_secrets() -> None:
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert {".local/", ".venv/", ".env", ".git/"} <= set(ignored)


def test_the_dashboards_and_the_dbt_docs_site_are_services() -> None:
    assert "stack.superset" in SERVICES["superset"]["command"]
    assert "dbt docs serve" in " ".join(SERVICES["dbt-docs"]["command"])
    for name in ("superset", "dbt-docs"):
        assert SERVICES[name]["depends_on"]["warehouse"]["condition"] == "service_healthy"
