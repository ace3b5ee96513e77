"""docker-compose.yml's structure (no Docker engine here to run it): services,
health checks, start order, and the environment the project reads."""

from __future__ import annotations

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
