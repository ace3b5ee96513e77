"""The servers `make up`, `make down` and `make status` handle come from the source registry."""

from __future__ import annotations

import pytest

from config.settings import EMBEDDABLE
from pipelines import SOURCES, Source
from stack import services


def test_every_source_names_known_servers_and_every_server_is_needed() -> None:
    names = [server.name for server in services.SERVERS]
    assert tuple(names) == EMBEDDABLE  # what EMBEDDED_SERVICES accepts, in start order
    for source in SOURCES:
        assert source.servers and set(source.servers) <= set(names), source.name
    assert [server.name for server in services.needed()] == names


def test_status_probes_the_servers_the_sources_need(monkeypatch, tmp_path) -> None:
    """A registry without the events source: make status no longer probes ClickHouse."""
    for key, value in {"EMBEDDED_SERVICES": "none", "WAREHOUSE_PORT": "1", "OLTP_PORT": "1",
                       "MONGO_URI": "mongodb://127.0.0.1:1", "SALES_API_URL": "http://127.0.0.1:1",
                       "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "KAFKA_TIMEOUT_SECONDS": "1",
                       "DATA_DIR": str(tmp_path)}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    without: tuple[Source, ...] = tuple(s for s in SOURCES if "clickhouse" not in s.servers)
    monkeypatch.setattr(services, "SOURCES", without)
    lines, healthy = services.status()
    assert not healthy
    assert [line.split()[0] for line in lines] == [
        "postgres", "oltp", "mongo", "sales_api", "kafka"
    ]  # fmt: skip
    assert all(line.split()[1:3] == ["external", "down"] for line in lines), lines


@pytest.mark.parametrize("name", [s.name for s in services.SERVERS])
def test_each_server_says_where_it_is(name: str) -> None:
    assert services.SERVERS_BY_NAME[name].address()
