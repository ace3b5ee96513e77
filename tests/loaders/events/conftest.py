"""Fixtures for the events loader's tests: a ClickHouse client on the test's own database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from datagen import events_writer
from loaders.events.settings import ClickHouseSettings


@pytest.fixture
def ch(clickhouse_db: ClickHouseSettings) -> Iterator[Client]:
    """The simulator's client (it creates the test's database), to write source rows."""
    client = events_writer.client(clickhouse_db)
    yield client
    client.close()
