"""The embedded services: idempotent start, clear errors."""

from __future__ import annotations

import pytest

from stack.embedded_postgres import EmbeddedPostgres, ServiceError


def test_start_is_idempotent(pg_server: EmbeddedPostgres) -> None:
    pg_server.start()  # already running: a no-op
    assert pg_server.is_running()


def test_a_taken_port_is_one_clear_error(pg_server: EmbeddedPostgres, tmp_path) -> None:
    other = EmbeddedPostgres(pgdata=tmp_path / "data", port=pg_server.port)
    with pytest.raises(ServiceError, match=rf"did not start on 127.0.0.1:{pg_server.port}"):
        other.start()
    other.destroy()


def test_mongo_server_answers(mongo_server) -> None:
    assert mongo_server.is_running()
