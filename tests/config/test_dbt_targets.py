"""The warehouse's dbt targets: dev, ci and prod build in the schemas the Python side expects."""

from __future__ import annotations

import json

import pytest

from config import DBT_PROJECT_DIR, PROFILES_DIR, ConfigError, DbtSettings


def dbt_schema_of(model: str, tmp_path) -> str:
    """The schema dbt itself would build ``model`` in, for the environment in effect."""
    from dbt.cli.main import dbtRunner

    res = dbtRunner().invoke(
        ["ls", "--select", model, "--resource-type", "model", "--output", "json",
         "--output-keys", "schema", "--project-dir", str(DBT_PROJECT_DIR),
         "--profiles-dir", str(PROFILES_DIR), "--target-path", str(tmp_path / "target"),
         "--log-path", str(tmp_path / "logs"), "--quiet"]
    )  # fmt: skip
    assert res.success, res.exception
    return json.loads(res.result[0])["schema"]


CASES = [("dev", "", "marts"), ("dev", "alice_", "alice_marts"), ("ci", "", "ci_marts"),
         ("ci", "pr7_", "pr7_marts"), ("prod", "", "marts")]  # fmt: skip


@pytest.mark.parametrize(("target", "prefix", "marts"), CASES)
def test_each_target_prefixes_its_schemas(target, prefix, marts, monkeypatch) -> None:
    monkeypatch.setenv("DBT_TARGET", target)
    monkeypatch.setenv("DBT_SCHEMA_PREFIX", prefix)
    assert DbtSettings.from_env().marts_schema == marts


@pytest.mark.e2e  # a full dbt parse per target (the slim CI test checks ci's default)
@pytest.mark.parametrize(("target", "prefix", "marts"), [CASES[1], CASES[3], CASES[4]])
def test_dbt_builds_where_the_settings_say(target, prefix, marts, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DBT_TARGET", target)
    monkeypatch.setenv("DBT_SCHEMA_PREFIX", prefix)
    assert dbt_schema_of("review_mart", tmp_path) == DbtSettings.from_env().marts_schema == marts


def test_prod_refuses_a_prefix_and_an_unknown_target_is_named(monkeypatch) -> None:
    monkeypatch.setenv("DBT_TARGET", "prod")
    monkeypatch.setenv("DBT_SCHEMA_PREFIX", "alice_")
    with pytest.raises(ConfigError, match="DBT_SCHEMA_PREFIX='alice_' with DBT_TARGET=prod"):
        DbtSettings.from_env()
    monkeypatch.setenv("DBT_TARGET", "warehouse")
    with pytest.raises(ConfigError, match="DBT_TARGET='warehouse' must be one of dev, ci, prod"):
        DbtSettings.from_env()
