"""dbt slim CI end to end: main's build saved, restored into an empty warehouse, a change built.

What .github/workflows/main.yml and dbt-slim-ci.yml run, on the ephemeral
PostgreSQL instead of a service container: "main" builds the MongoDB models
from a hand-made app database and saves its state (`make dbt-state-save`);
a second, empty database plays the pull request's service container: the
state is restored into it and `state:modified+` is built on the ci target,
deferring to the restored build (`make dbt-slim-ci`). The "change" is
review_mart's SQL altered in main's manifest, as a pull request that edits
the model makes the two differ.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import DbtSettings, WarehouseSettings
from loaders.mongo.job import load_all
from stack import slim_ci
from stack.dbt_build import run_dbt
from stack.embedded_postgres import EmbeddedPostgres
from tests.conftest import free_port
from tests.dbt.conftest import rows
from tests.test_end_to_end import D1, T1_MESSAGES, at, review, ticket

pytestmark = pytest.mark.e2e


@pytest.fixture
def service_container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """The pull request's ephemeral PostgreSQL: a server of its own, empty."""
    data = tmp_path_factory.mktemp("svc") / "data"  # short: the socket path has a length limit
    server = EmbeddedPostgres(pgdata=data, port=free_port())
    server.start()
    yield server
    server.destroy()


def test_a_change_builds_on_ci_schemas_deferring_the_rest_to_mains_restored_build(
    mongo_db,
    warehouse,
    pg_server,
    service_container,
    local_dirs,
    tmp_path: Path,
    monkeypatch,
    capsys,
) -> None:
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    mongo_db.moderation_queue.insert_many(
        [review("R1", 10, 5, "approved", [], at(D1, "09:00")),
         review("R2", 20, 2, "rejected", ["spam"], at(D1, "09:05"))]
    )  # fmt: skip
    mongo_db.support_tickets.insert_many([ticket("T1", "pending", T1_MESSAGES)])
    load_all(["moderation_queue", "support_tickets"])
    main = run_dbt(["build", "--select", "tag:mongo"], tmp_path / "logs")
    assert main.success, main.failures
    settings = DbtSettings.from_env()
    settings.state_dir.mkdir(parents=True)
    shutil.copyfile(settings.target_path / "manifest.json", settings.state_dir / "manifest.json")

    state = tmp_path / "state"
    assert "saved" in slim_ci.save(state)
    manifest = json.loads((state / "manifest.json").read_text())
    node = "model.store_analytics.review_mart"
    manifest["nodes"][node]["raw_code"] += "\n-- main's version"
    (state / "manifest.json").write_text(json.dumps(manifest))

    # The pull request's ephemeral warehouse: empty, then main's build restored into
    # it. Its database has main's name, which deferred refs carry.
    name = WarehouseSettings.from_env().dbname
    service_container.ensure_database(name)
    monkeypatch.setenv("WAREHOUSE_PORT", str(service_container.port))
    ci = service_container.conninfo(name)
    assert "restored" in slim_ci.restore(state)
    assert rows(ci, "select count(*) from marts.review_mart") == [(2,)]

    monkeypatch.setenv("DBT_TARGET", "ci")
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "ci-target"))
    args = ["build", "--select", "state:modified+", "--defer", "--state", str(state)]
    pr = run_dbt(args, tmp_path / "ci-logs")
    assert pr.success, pr.failures
    # Only the change and what depends on it was built, on the ci schemas; its
    # parents were read from main's restored build. (The quarantine's table is
    # made by every build's on-run-start, empty.)
    built = {
        (schema, name)
        for schema, name in rows(
            ci,
            "select table_schema, table_name from information_schema.tables"
            " where table_schema like 'ci\\_%'",
        )
    }
    assert built == {("ci_marts", "review_mart"), ("ci_audit", "quarantined_rows")}
    assert pr.counts["model"] == {"success": 1} and pr.counts["test"].get("pass", 0) > 0
    query = (
        "select product_id, total_reviews, avg_rating, approved_reviews_ratio, total_flags"
        " from {}.review_mart order by product_id"
    )
    assert rows(ci, query.format("ci_marts")) == rows(ci, query.format("marts"))

    # State that is not there is one line, not a traceback.
    assert slim_ci.main(["restore", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("slim CI: ") and "manifest.json is missing" in err
    assert len(err.strip().splitlines()) == 1
