"""A source is a plugin: a sixth source added through the contract alone, in a copy of the project.

The test copies the project, adds a small source (a folder of JSON files) as
a new user would: new files only, plus its line in ``.env.example`` and its
tag in ``dbt_project.yml``. Then, in the copy, without editing any registry:
its command is in ``python -m loaders``, ``make load`` and ``python -m
pipelines land`` land it (with its line in the summary), the architecture
test finds it implements the contract, the configuration reference lists its
setting, Airflow has its DAGs, and dbt builds and tests its staging model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from config import PROJECT_ROOT
from tests.clean_stop import TEST_RUN_MARKER

pytestmark = pytest.mark.e2e

NAME = "json_files"
NEW_FILES = {
    f"loaders/{NAME}/__init__.py": '"""A folder of JSON files -> ``raw_json_files.items``."""\n',
    f"loaders/{NAME}/settings.py": """
from typing import ClassVar

from config.base import Settings, setting


class JsonFilesSettings(Settings):
    section: ClassVar[str] = "A folder of JSON files (source)"

    folder: str = setting("JSON_FILES_DIR", "json_files", "where the files are")
""",
    f"loaders/{NAME}/landing.py": '''
import json
from dataclasses import dataclass
from pathlib import Path

from loaders.core import result as core
from loaders.core.control import close_batch, open_batch
from loaders.core.raw_tables import RawTable
from loaders.core.warehouse import connect
from loaders.raw_tables import ensure_all_raw_tables
from loaders.json_files.settings import JsonFilesSettings

RAW_TABLES = (
    RawTable("raw_json_files", "items", (("id", "text"), ("payload", "jsonb"))),
)


@dataclass(kw_only=True)
class LoadResult(core.LoadResult):
    files: int = 0

    @property
    def raw_table(self) -> str:
        return RAW_TABLES[0].qualified_name


def land(wh) -> LoadResult:
    """Every object of every *.json file; a file that is not a JSON list is rejected whole."""
    result, rows = LoadResult(), []
    for path in sorted(Path(JsonFilesSettings.from_env().folder).glob("*.json")):
        result.files += 1
        try:
            items = json.loads(path.read_text())
            assert isinstance(items, list)
        except (ValueError, AssertionError):
            result.rejected += 1
            result.notes.append(f"{path.name} is not a JSON list: rejected")
            continue
        rows += [(str(item.get("id")), json.dumps(item)) for item in items]
    with connect(wh) as conn:
        ensure_all_raw_tables(conn)
        with conn.transaction():
            batch = open_batch(conn, "json_files", "items")
            with conn.cursor() as cur:
                cur.executemany(
                    "insert into raw_json_files.items (id, payload, _batch_id) values (%s, %s, %s)",
                    [(i, p, batch) for i, p in rows],
                )
            close_batch(conn, batch, "json_files", "items", len(rows), result.rejected, None)
    result.landed = len(rows)
    return result
''',
    f"loaders/{NAME}/cli.py": """
from config import WarehouseSettings
from loaders.json_files.landing import land


def add_arguments(parser) -> None:
    parser.description = "land every JSON file of JSON_FILES_DIR"


def run(args) -> int:
    r = land(WarehouseSettings.from_env())
    print(f"json_files: {r.landed} landed, {r.rejected} rejected")
    return 0
""",
    f"pipelines/sources/{NAME}.py": """
from config import WarehouseSettings
from loaders.json_files.landing import RAW_TABLES, land
from pipelines.definition import Landed, Source, Step, StepContext


def load(ctx: StepContext) -> dict:
    return Landed.of(land(WarehouseSettings.from_env()))


SOURCE = Source(
    name="json_files",
    description="A folder of JSON files -> raw_json_files.items",
    raw_tables=RAW_TABLES,
    steps=(Step("load", load),),
    daily=False,
    servers=("postgres",),
)
""",
    f"dbt_project/models/staging/{NAME}/_{NAME}__sources.yml": """
version: 2
sources:
  - name: json_files
    description: The JSON files' objects, one row each.
    schema: raw_json_files
    tables:
      - name: items
        description: One object of a file.
        columns:
          - name: id
            description: The object's id.
""",
    f"dbt_project/models/staging/{NAME}/_{NAME}__models.yml": """
version: 2
models:
  - name: stg_json_files__items
    description: The files' objects, typed.
    columns:
      - name: item_id
        description: The object's id.
        data_tests: [not_null, unique]
      - name: price
        description: Its price.
""",
    f"dbt_project/models/staging/{NAME}/stg_{NAME}__items.sql": """
select
    id as item_id,
    (payload ->> 'price')::numeric as price
from {{ source('json_files', 'items') }}
""",
}
EDITED = {
    ".env.example": ("\nJSON_FILES_DIR=json_files\n", None),
    "dbt_project/dbt_project.yml": (
        '      sales_api: {+tags: ["sales_api"]}\n',
        '      sales_api: {+tags: ["sales_api"]}\n      json_files: {+tags: ["json_files"]}\n',
    ),
}


def run(cmd: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout + proc.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The project's files (not its data or virtualenv), in a git repository of their own."""
    copy = tmp_path / "project"
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, files):
        if (PROJECT_ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / name, copy / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=copy, check=True)
    subprocess.run(["git", "add", "-A"], cwd=copy, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=copy, check=True)
    return copy


def add_the_source(copy: Path) -> None:
    for name, text in NEW_FILES.items():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_text(text.lstrip())
    for name, (old, new) in EDITED.items():
        text = (copy / name).read_text()
        assert new is None or old in text
        (copy / name).write_text(text + old if new is None else text.replace(old, new))


def test_a_sixth_source_is_new_files_and_two_edits(project: Path, warehouse, tmp_path) -> None:
    add_the_source(project)
    python = sys.executable
    env = {
        **os.environ,
        # The copy's packages, not the ones the virtualenv installed from the repository.
        "PYTHONPATH": f"{project}:{project / 'airflow'}",
        "JSON_FILES_DIR": str(tmp_path / "files"),
        "DBT_TARGET_PATH": str(tmp_path / "dbt-target"),
    }
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.json").write_text(json.dumps([{"id": 1, "price": 9.5}, {"id": 2}]))
    (tmp_path / "files" / "b.json").write_text('{"not": "a list"')  # rejected, not fatal

    # The configuration reference is generated from the settings, the new class included.
    reference = run([python, "-m", "config", "reference"], project, env)
    assert "`JSON_FILES_DIR`" in reference
    (project / "docs/configuration-reference.md").write_text(reference)
    # Existing files edited: the two named above, and the generated reference.
    changed = run(["git", "status", "--porcelain", "--untracked-files=no"], project, env)
    edited = sorted(line[3:] for line in changed.splitlines())
    assert edited == sorted([*EDITED, "docs/configuration-reference.md"])

    # Its command, found by python -m loaders; and make load's command lands it.
    assert NAME in run([python, "-m", "loaders", "--help"], project, env)
    assert "python -m pipelines land" in run(["make", "-n", "load"], project, env)
    summary = run(
        [python, "-m", "pipelines", "land", "--source", NAME, "--date", "2026-10-05"], project, env
    )
    line = next(x for x in summary.splitlines() if "raw_json_files.items" in x)
    assert line.split()[1:] == ["2", "1"], summary  # landed, rejected
    assert "note: b.json is not a JSON list: rejected" in summary

    # The contract, the keys of .env.example, and the DAGs, by the project's own tests.
    tests = [
        "tests/test_architecture.py",
        "tests/config/test_reference.py",
        "tests/airflow/test_dag_integrity.py::test_dag_folder_imports_without_errors",
        "tests/airflow/test_dag_integrity.py::test_every_source_gets_its_dags_from_the_one_pipeline_definition",
    ]
    # A test run of its own: its own temporary root (the outer run's holds the background
    # set-ups, such as Superset, that a run stops when it ends) and its own clean stop.
    (tmp_path / "nested").mkdir()
    nested_env = {k: v for k, v in env.items() if k != TEST_RUN_MARKER}
    nested_env["TMPDIR"] = str(tmp_path / "nested")
    out = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], project, nested_env)
    assert "failed" not in out and " passed" in out
    dags = run(
        [python, "-c", "from tests.dag_ids import EXPECTED_DAGS; print(sorted(EXPECTED_DAGS))"],
        project,
        env,
    )
    assert f"extract_load_{NAME}" in dags and f"dbt_transform_{NAME}" in dags

    # dbt builds and tests its model from what landed.
    dbt = str(Path(python).parent / "dbt")
    run(
        [dbt, "build", "--select", f"tag:{NAME}", "--project-dir", "dbt_project",
         "--profiles-dir", "profiles", "--quiet"],
        project, env,
    )  # fmt: skip
    with psycopg.connect(warehouse) as conn:
        rows = conn.execute(
            "select item_id, price from staging.stg_json_files__items order by 1"
        ).fetchall()
    assert [(r[0], None if r[1] is None else float(r[1])) for r in rows] == [
        ("1", 9.5),
        ("2", None),
    ]
