"""The layout's rules, checked on the source: who may import whom, and no import cycles.

config <- loaders <- pipelines <- stack, airflow/include <- airflow/dags;
reports (the daily report and alerts, read from the marts) uses config and loaders;
datagen (the simulator) reads config and the sources' settings only (it writes
into the source systems). Libraries never import Airflow.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from config import PROJECT_ROOT

PACKAGES = {  # import name -> folder
    "config": PROJECT_ROOT / "config",
    "loaders": PROJECT_ROOT / "loaders",
    "pipelines": PROJECT_ROOT / "pipelines",
    "datagen": PROJECT_ROOT / "datagen",
    "stack": PROJECT_ROOT / "stack",
    "reports": PROJECT_ROOT / "reports",
    "include": PROJECT_ROOT / "airflow" / "include",
}
MAY_IMPORT = {  # project packages each package may import
    "config": set(),
    "loaders": {"config"},
    "datagen": {"config"},
    "pipelines": {"config", "loaders", "datagen"},
    "reports": {"config", "loaders"},
    "stack": {"config", "loaders", "pipelines", "datagen", "reports"},
    "include": {"config", "loaders", "pipelines", "reports"},
}
# A source's settings module (loaders/<source>/settings.py), which datagen may read.
SOURCE_SETTINGS = re.compile(r"loaders\.\w+\.settings(\.\w+)?")
NO_AIRFLOW = ("config", "loaders", "datagen", "pipelines", "reports", "stack")


def module_name(package: str, path: Path) -> str:
    parts = path.relative_to(PACKAGES[package]).with_suffix("").parts
    return ".".join((package, *parts)).removesuffix(".__init__")


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (lazy imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def graph() -> dict[str, set[str]]:
    modules = {
        module_name(pkg, path): path
        for pkg, folder in PACKAGES.items()
        for path in folder.rglob("*.py")
    }
    return {name: {m for m in imports(path) if m in modules} for name, path in modules.items()}


def test_packages_import_only_what_the_layout_allows() -> None:
    for module, targets in graph().items():
        package = module.split(".")[0]
        for target in targets:
            other = target.split(".")[0]
            if package == "datagen" and SOURCE_SETTINGS.fullmatch(target):
                continue
            assert other == package or other in MAY_IMPORT[package], f"{module} -> {target}"


def test_libraries_never_import_airflow() -> None:
    for package in NO_AIRFLOW:
        for path in PACKAGES[package].rglob("*.py"):
            bad = {m for m in imports(path) if m.split(".")[0] in ("airflow", "cosmos")}
            assert not bad, f"{path.relative_to(PROJECT_ROOT)} imports {bad}"


def test_no_import_cycles() -> None:
    edges = graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target] if target in path else [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


def test_the_cycle_check_catches_a_cycle(monkeypatch) -> None:
    import tests.test_architecture as me

    monkeypatch.setattr(me, "graph", lambda: {"a": {"b"}, "b": {"a"}})
    try:
        me.test_no_import_cycles()
    except AssertionError as exc:
        assert "a -> b -> a" in str(exc)
    else:
        raise AssertionError("a cycle went unnoticed")


# --- The source contract: every registered source implements it the same way --------


def test_every_registered_source_implements_the_contract() -> None:
    """One name per source: its module in pipelines/sources/, its loader package (with
    its command, settings and raw tables), its raw schema, its staging folder and its
    dbt tag; its servers are ones `make up` knows; its steps land something."""
    import importlib
    import inspect

    import yaml

    from config import Settings
    from loaders.__main__ import commands
    from loaders.core.result import LoadResult
    from pipelines import SOURCES, Source
    from stack.services import SERVERS

    cli = commands()
    server_names = {s.name for s in SERVERS}
    dbt_project = yaml.safe_load((PROJECT_ROOT / "dbt_project" / "dbt_project.yml").read_text())
    staging = dbt_project["models"]["store_analytics"]["staging"]
    assert SOURCES
    for source in SOURCES:
        name = source.name
        assert isinstance(source, Source) and re.fullmatch(r"[a-z][a-z0-9_]*", name)
        module = importlib.import_module(f"pipelines.sources.{name}")
        assert module.SOURCE is source, f"pipelines/sources/{name}.py defines {source.name}"
        # The loader package: its command, its settings, its raw tables.
        assert name in cli and callable(cli[name].add_arguments) and callable(cli[name].run)
        settings = importlib.import_module(f"loaders.{name}.settings")
        assert any(
            issubclass(c, Settings) and c.__module__ == settings.__name__
            for _, c in inspect.getmembers(settings, inspect.isclass)
        ), f"loaders/{name}/settings.py declares no settings class"
        landing = importlib.import_module(f"loaders.{name}.landing")
        assert source.raw_tables == landing.RAW_TABLES and source.raw_tables
        # Its loads return the one result type (a subclass naming its raw tables).
        assert issubclass(landing.LoadResult, LoadResult) and landing.LoadResult is not LoadResult
        assert {t.schema for t in source.raw_tables} == {f"raw_{name}"}
        # Its dbt models: the staging folder of its name, tagged with its dbt tag.
        models = list((PROJECT_ROOT / "dbt_project/models/staging" / name).glob("*.sql"))
        assert models and all(m.name.startswith(f"stg_{name}__") for m in models)
        assert staging[name]["+tags"] == [source.dbt_tag]
        assert set(source.servers) <= server_names and source.steps
        assert all(s.name and callable(s.run) for s in source.steps)


def test_landing_order_is_stated_not_implied() -> None:
    from pipelines import SOURCES, Source
    from pipelines.sources import RegistryError, ordered

    names = [s.name for s in SOURCES]
    for source in SOURCES:
        assert all(names.index(before) < names.index(source.name) for before in source.after)

    def src(name: str, *after: str) -> Source:
        return Source(name, "", (), (), daily=False, after=after)

    assert [s.name for s in ordered([src("b"), src("c", "a"), src("a")])] == ["a", "b", "c"]
    for bad, message in [
        ([src("a", "b"), src("b", "a")], "cycle"),
        ([src("a", "nope")], "unknown"),
        ([src("a"), src("a")], "two sources"),
    ]:
        try:
            ordered(bad)
        except RegistryError as exc:
            assert message in str(exc)
        else:
            raise AssertionError(f"{message} went unnoticed")
