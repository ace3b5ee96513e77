"""The first Cosmos run after `make airflow` starts from its dbt parse, not from nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from config import DBT_PROJECT_DIR, PROFILES_DIR, DbtSettings

PARTIAL_PARSE = "partial_parse.msgpack"


def cache_of(dag) -> Path:
    return Path(next(t.cache_dir for t in dag.tasks if getattr(t, "cache_dir", None))) / "target"


def partial_parse_refused(target: str, target_path: Path) -> bool:
    """Whether dbt, run with a Cosmos task's flags, refuses the partial parse in target_path."""
    out = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "parse", "--project-dir", str(DBT_PROJECT_DIR),
         "--profiles-dir", str(PROFILES_DIR), "--profile", "store_analytics",
         "--target", target, "--target-path", str(target_path), "--no-use-colors"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return "Unable to do partial parsing" in out.stdout + out.stderr


def test_each_transform_dag_starts_from_make_airflows_parse_on_its_target(
    tmp_path: Path, monkeypatch
) -> None:
    from include.transform import transform_dag
    from stack.airflow import dbt_parse

    monkeypatch.setenv("DBT_MANIFEST_PATH", str(tmp_path / "dbt-target" / "manifest.json"))
    dbt_parse(dict(os.environ))
    settings = DbtSettings.from_env()
    for target in (None, "clickhouse"):
        dag_id = f"seeded_{target or 'default'}"
        cache = cache_of(transform_dag("events", None, "seeded", False, target, dag_id))
        shutil.rmtree(cache, ignore_errors=True)  # as after a fresh start
        transform_dag("events", None, "seeded", False, target, dag_id)  # parsed: seeded
        seed = settings.parse_dir(target or settings.target)
        assert (cache / PARTIAL_PARSE).read_bytes() == (seed / PARTIAL_PARSE).read_bytes()
        assert (cache / "manifest.json").exists()
    # A seed dbt takes with the flags a Cosmos task passes for its own target...
    own = tmp_path / "own"
    shutil.copytree(settings.parse_dir("clickhouse"), own)
    assert not partial_parse_refused("clickhouse", own)
    # ...and would refuse for another one (which is why each target has its own).
    other = tmp_path / "other"
    shutil.copytree(settings.parse_dir(settings.target), other)
    assert partial_parse_refused("clickhouse", other)
