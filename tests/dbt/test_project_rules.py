"""The dbt project's structure rules, checked on the manifest that `dbt parse` writes.

The rules are dbt-project-evaluator's (docs/rules in dbt-labs/dbt-project-evaluator):
the package cannot be installed here (no dbt package hub), so each rule is a
small function over manifest.json that returns its violations, one line each.
The exceptions are written down below with their reason, not tolerated silently.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from config import PROJECT_ROOT
from loaders.mongo.job import load_all
from stack.dbt_build import run_dbt
from tests.dbt.conftest import rows

Manifest = dict
PROJECT = "store_analytics"

# Exceptions to the mart naming rule (fct_ / dim_ prefixes): these are the
# names SPEC.md fixes, because they are what the store's users asked for
# (review_mart, support_efficiency, and the partner's d_*/f_*), plus the
# marts SPEC.md names that are not built yet, so that adding them needs no
# new exception.
SPEC_MART_NAMES = {
    "review_mart", "support_efficiency",
    "d_city", "d_item", "d_customer", "f_sales", "f_customer_retention",
    "user_activity", "mart_user_activity", "mart_product_sales", "mart_average_check",
    "feed_dimension_daily",
    # SPEC.md names these by what they hold ("app daily metrics", "feed
    # anomalies"), not by table name: the names are ours, in the same style.
    "app_metrics_daily", "feed_anomalies",
}  # fmt: skip
MART_PREFIXES = ("fct_", "dim_")
LAYERS = ("staging", "intermediate", "marts")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """`dbt parse` into a private target dir (no warehouse needed)."""
    target = tmp_path_factory.mktemp("dbt-target")
    subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "parse", "--project-dir", "dbt_project",
         "--profiles-dir", "profiles", "--target-path", str(target),
         "--log-path", str(target / "logs"), "--quiet"],
        cwd=PROJECT_ROOT, check=True,
    )  # fmt: skip
    return json.loads((target / "manifest.json").read_text())


# ---------------------------------------------------------------- graph helpers


def models(m: Manifest) -> dict[str, dict]:
    return {
        uid: n
        for uid, n in m["nodes"].items()
        if n["resource_type"] == "model" and n["package_name"] == PROJECT
    }


def layer(node: dict) -> str | None:
    """staging / intermediate / marts, from the folder under models/."""
    parts = Path(node["original_file_path"]).parts
    return parts[1] if len(parts) > 2 and parts[0] == "models" else None


def parents(node: dict) -> list[str]:
    return node["depends_on"]["nodes"]


def kind(uid: str) -> str:
    return uid.split(".")[0]


def name(uid: str) -> str:
    return uid.split(".")[-1]


def children(m: Manifest) -> dict[str, set[str]]:
    """Downstream nodes that consume each node: models, snapshots and exposures (not tests)."""
    out: dict[str, set[str]] = {}
    consumers = {**m["nodes"], **m["exposures"]}
    for uid, node in consumers.items():
        if node["resource_type"] not in ("model", "snapshot", "exposure"):
            continue
        for parent in parents(node):
            out.setdefault(parent, set()).add(uid)
    return out


def attached_tests(m: Manifest) -> dict[str, list[dict]]:
    """Generic tests by the model they are attached to."""
    out: dict[str, list[dict]] = {}
    for node in m["nodes"].values():
        if node["resource_type"] == "test" and node.get("attached_node"):
            out.setdefault(node["attached_node"], []).append(node)
    return out


# ---------------------------------------------------------------- the rules


def staging_reads_exactly_one_source(m: Manifest) -> list[str]:
    """Staging models read one source and nothing else (no staging on staging)."""
    out = []
    for node in models(m).values():
        if layer(node) != "staging":
            continue
        sources = [p for p in parents(node) if kind(p) == "source"]
        others = [name(p) for p in parents(node) if kind(p) != "source"]
        if len(sources) != 1 or others:
            out.append(f"{node['name']} reads {len(sources)} source(s) and {others or 'no models'}")
    return out


def downstream_reads_no_source(m: Manifest) -> list[str]:
    """Intermediate models and marts read staging (or later), never a source."""
    return [
        f"{node['name']} ({layer(node)}) reads source {p.split('.', 2)[2]}"
        for node in models(m).values()
        if layer(node) != "staging"
        for p in parents(node)
        if kind(p) == "source"
    ]


def one_model_per_source(m: Manifest) -> list[str]:
    """Every source is read by exactly one model (no source fanout, no unused source)."""
    kids = children(m)
    out = []
    for uid in m["sources"]:
        readers = sorted(name(c) for c in kids.get(uid, ()))
        if len(readers) != 1:
            out.append(f"source {uid.split('.', 2)[2]} is read by {readers or 'no model'}")
    return out


def no_rejoined_concepts(m: Manifest) -> list[str]:
    """No A -> B -> C with A -> C where B has no other consumer (fold B into C)."""
    kids = children(m)
    out = []
    for a, a_children in kids.items():
        for b in a_children:
            if kind(b) == "model" and len(kids.get(b, ())) == 1:
                (c,) = kids[b]
                if c in a_children:
                    out.append(f"{name(a)} -> {name(b)} -> {name(c)} and {name(a)} -> {name(c)}")
    return sorted(out)


# Exceptions to the primary-key rule: the feed and messenger event tables
# have no key. An event row is a fact without an identity in the source (the
# same user can view the same post twice in one second), so staging keeps
# every row and the models above them are keyed (per user and day, per slice
# and metric).
KEYLESS_EVENT_MODELS = {"stg_events__feed_actions", "stg_events__message_actions"}


def primary_key_tested(m: Manifest) -> list[str]:
    """unique + not_null on one column, or unique_combination_of_columns."""
    tests = attached_tests(m)
    out = []
    for uid, node in models(m).items():
        if node["name"] in KEYLESS_EVENT_MODELS:
            continue
        by_column: dict[str | None, set[str]] = {}
        for test in tests.get(uid, []):
            test_name = (test.get("test_metadata") or {}).get("name")
            by_column.setdefault(test.get("column_name"), set()).add(test_name)
        single = any({"unique", "not_null"} <= names for names in by_column.values())
        combined = any("unique_combination_of_columns" in names for names in by_column.values())
        if not (single or combined):
            out.append(f"{node['name']} has no primary-key test")
    return out


def documented(m: Manifest) -> list[str]:
    """Every model, every column listed for it, and every source table has a description."""
    out = []
    for node in models(m).values():
        if not node["description"].strip():
            out.append(f"model {node['name']} has no description")
        if not node["columns"]:
            out.append(f"model {node['name']} documents no columns")
        out += [
            f"column {node['name']}.{column} has no description"
            for column, spec in node["columns"].items()
            if not spec["description"].strip()
        ]
    out += [
        f"source {uid.split('.', 2)[2]} has no description"
        for uid, source in m["sources"].items()
        if not source["description"].strip()
    ]
    return out


# Exceptions to the tables-only rule for exposures: the platform health marts
# are views over the platform's own small tables (loader.*, raw_ops.*), so the
# dashboard, the health line and the alerts see a load or a dbt invocation
# the moment it is kept, with no build between.
LIVE_VIEW_MARTS = {
    "fct_dbt_invocations", "fct_dbt_node_runs", "fct_test_history", "fct_rows_landed_daily",
    "fct_stream_lag", "fct_source_freshness", "fct_volume_anomalies",
}  # fmt: skip


def marts_in_exposures(m: Manifest) -> list[str]:
    """Every mart has a consumer (an exposure with an owner), reading tables, not views."""
    exposed: set[str] = set()
    out = []
    for exposure in m["exposures"].values():
        owner = exposure.get("owner") or {}
        if not (owner.get("name") and owner.get("email")):
            out.append(f"exposure {exposure['name']} has no owner name and email")
        if not exposure["description"].strip():
            out.append(f"exposure {exposure['name']} has no description")
        for parent in parents(exposure):
            exposed.add(parent)
            node = m["nodes"].get(parent, {})
            table = node.get("config", {}).get("materialized") in ("table", "incremental")
            if not table and name(parent) not in LIVE_VIEW_MARTS:
                out.append(f"exposure {exposure['name']} reads {name(parent)}, not a table")
    out += [
        f"mart {node['name']} is in no exposure"
        for uid, node in models(m).items()
        if layer(node) == "marts" and uid not in exposed
    ]
    return out


def names_and_folders(m: Manifest) -> list[str]:
    """stg_<source>__<entity> in staging/<source>/, int_ in intermediate/, marts by name."""
    out = []
    for node in models(m).values():
        model, path, where = node["name"], Path(node["original_file_path"]), layer(node)
        if where not in LAYERS:
            out.append(f"{model} is in {path.parent}, not under models/{{{','.join(LAYERS)}}}")
        elif where == "staging":
            sources = [p for p in parents(node) if kind(p) == "source"]
            source = m["sources"][sources[0]]["source_name"] if len(sources) == 1 else "?"
            if not re.fullmatch(rf"stg_{source}__[a-z0-9_]+", model):
                out.append(f"{model} is not named stg_{source}__<entity>")
            if path.parent != Path("models/staging") / source:
                out.append(f"{model} is not in models/staging/{source}/")
        elif where == "intermediate":
            if not model.startswith("int_"):
                out.append(f"{model} (intermediate) is not named int_<entity>_<verb>")
        elif not (model.startswith(MART_PREFIXES) or model in SPEC_MART_NAMES):
            out.append(f"mart {model} is neither fct_/dim_ nor a SPEC.md mart name")
    return out


# Exceptions to the freshness rule: the platform's own records are written when
# something happens (a build, a reject, a load), not on a source's schedule; a
# source that stops landing is seen in loader.batches (fct_source_freshness),
# and a missing build as the last run's age in the health line.
PLATFORM_SOURCES = {"ops", "loader"}


def sources_declare_freshness(m: Manifest) -> list[str]:
    out = []
    for uid, source in m["sources"].items():
        label = uid.split(".", 2)[2]
        if source["source_name"] in PLATFORM_SOURCES:
            continue
        if not source.get("loaded_at_field"):
            out.append(f"source {label} has no loaded_at_field")
        freshness = source.get("freshness") or {}
        if not any((freshness.get(k) or {}).get("count") for k in ("warn_after", "error_after")):
            out.append(f"source {label} declares no freshness")
    return out


def macros_documented(m: Manifest) -> list[str]:
    """Every macro (and generic test) has a description, and its arguments are documented."""
    out = []
    for macro in m["macros"].values():
        if macro["package_name"] != PROJECT:
            continue
        if not macro["description"].strip():
            out.append(f"macro {macro['name']} has no description")
        dispatched_impl = re.match(r"(default|[a-z]+)__", macro["name"])
        signature = re.search(r"{%-?\s*(?:macro|test)\s+\w+\s*\(([^)]*)\)", macro["macro_sql"])
        if dispatched_impl or not signature:
            continue  # implementations share the dispatching macro's documented arguments
        arguments = [a.split("=")[0].strip() for a in signature.group(1).split(",") if a.strip()]
        documented_args = [a["name"] for a in macro["arguments"] if a.get("description")]
        if arguments != documented_args:
            out.append(f"macro {macro['name']}{tuple(arguments)} documents {documented_args}")
    return out


# Macros whose value is the run's own (its logical day, the last passing build):
# SQL that calls them, even through other macros, differs from run to run.
RUN_SCOPE_MACROS = {
    f"macro.{PROJECT}.{n}"
    for n in ("run_logical_date", "tested_before", "tested_day", "var_or_env")
}


# Jinja in a view's own SQL whose value can change from one run to the next. (Not
# searched in the macros it depends on: those include its hooks' macros, such as
# lookup_indexes, which run after the view is built and do not make its SQL.)
RUN_SCOPE_SQL = re.compile(r"\b(env_)?var\s*\(|\brun_started_at\b|\brun_query\s*\(")


def views_made_at_run_time_are_tagged(m: Manifest) -> list[str]:
    """A view whose SQL is made at run time carries tag daily_sql.

    make run's daily build (selectors.yml) leaves unchanged views in place; a
    view whose SQL reads the run's day or a var must be recreated every day.
    """

    def reads_run_scope(macro_ids: list[str], seen: set[str]) -> bool:
        for uid in macro_ids:
            if uid in RUN_SCOPE_MACROS:
                return True
            macro = m["macros"].get(uid)
            if uid in seen or macro is None:
                continue
            seen.add(uid)
            if reads_run_scope(macro["depends_on"]["macros"], seen):
                return True
        return False

    def sql_macros(node: dict) -> list[str]:
        """The macros a model's SQL calls: a hook's run after the view is made."""
        hooks = " ".join(h.get("sql", "") for h in node["config"].get("post-hook") or [])
        hooked = {f"macro.{PROJECT}.{n}" for n in re.findall(r"(\w+)\(", hooks)}
        code = node.get("raw_code", "")
        return [
            uid for uid in node["depends_on"].get("macros", [])
            if uid not in hooked or f"{uid.rsplit('.', 1)[1]}(" in code
        ]  # fmt: skip

    return [
        f"view {node['name']} is made at run time but has no tag daily_sql"
        for node in models(m).values()
        if node["config"].get("materialized") == "view"
        and "daily_sql" not in node.get("tags", [])
        and (
            reads_run_scope(sql_macros(node), set())
            or RUN_SCOPE_SQL.search(node.get("raw_code", ""))
        )
    ]


NEW_ROWS_TOKEN = "__new_rows__"


def new_rows_models_have_scoped_tests(m: Manifest) -> list[str]:
    """Every generic test of a model that declares its new rows (meta.new_rows) has
    the __new_rows__ token in its `where` (set per folder in dbt_project.yml):
    which tests check only new rows reads in the config, not in a macro alone."""
    declares = {
        uid for uid, n in models(m).items() if (n["config"].get("meta") or {}).get("new_rows")
    }
    out = []
    for uid, test in m["nodes"].items():
        if test["resource_type"] != "test" or not test.get("attached_node"):
            continue
        scoped = NEW_ROWS_TOKEN in (test.get("config", {}).get("where") or "")
        if test["attached_node"] in declares and not scoped:
            out.append(f"test {name(uid)} checks every row of a model with new rows")
    return out


def quarantine_rules_are_counted_and_deletable(m: Manifest) -> list[str]:
    """A model with quarantine rules (meta.quarantine) has the `quarantined` warn test
    that counts the rows they hold out, names its key and at least one rule, and is a
    table or an incremental model: the post-hook deletes the rows from it."""
    tests = attached_tests(m)
    out = []
    for uid, node in models(m).items():
        spec = (node["config"].get("meta") or {}).get("quarantine")
        if not spec:
            continue
        if not spec.get("key") or not spec.get("rules"):
            out.append(f"{name(uid)}: meta.quarantine needs a key and rules")
        if node["config"].get("materialized") not in ("table", "incremental"):
            out.append(
                f"{name(uid)} has quarantine rules but is a {node['config']['materialized']}"
            )
        names = {(t.get("test_metadata") or {}).get("name") for t in tests.get(uid, [])}
        if "quarantined" not in names:
            out.append(f"{name(uid)} has quarantine rules but no quarantined test")
    return out


RULES: list[Callable[[Manifest], list[str]]] = [
    staging_reads_exactly_one_source,
    downstream_reads_no_source,
    one_model_per_source,
    no_rejoined_concepts,
    primary_key_tested,
    documented,
    marts_in_exposures,
    names_and_folders,
    sources_declare_freshness,
    macros_documented,
    views_made_at_run_time_are_tagged,
    new_rows_models_have_scoped_tests,
    quarantine_rules_are_counted_and_deletable,
]


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_the_project_keeps_the_rule(manifest: Manifest, rule) -> None:
    assert rule(manifest) == [], rule.__doc__


def test_the_rules_see_the_whole_project(manifest: Manifest) -> None:
    by_layer: dict[str | None, int] = {}
    for node in models(manifest).values():
        by_layer[layer(node)] = by_layer.get(layer(node), 0) + 1
    assert set(by_layer) == set(LAYERS) and min(by_layer.values()) >= 3, by_layer
    assert len(manifest["sources"]) >= 10 and manifest["exposures"]


# ---------------------------------------------------------------- the rules catch violations


def _model(uid: str, path: str, reads: list[str], **extra) -> dict:
    return {
        "resource_type": "model", "package_name": PROJECT, "name": name(uid),
        "original_file_path": path, "depends_on": {"nodes": reads},
        "description": "d", "columns": {"id": {"description": "d"}},
        "config": {"materialized": "table"}, **extra,
    }  # fmt: skip


def _pk_tests(model_uid: str) -> dict[str, dict]:
    tests = {}
    for test in ("unique", "not_null"):
        tests[f"test.{PROJECT}.{test}_{name(model_uid)}"] = {
            "resource_type": "test", "attached_node": model_uid, "column_name": "id",
            "test_metadata": {"name": test}, "depends_on": {"nodes": [model_uid]},
        }  # fmt: skip
    return tests


def clean_manifest() -> Manifest:
    """source -> stg -> int -> mart (in an exposure): keeps every rule."""
    src, stg = f"source.{PROJECT}.app.orders", f"model.{PROJECT}.stg_app__orders"
    mid, mart = f"model.{PROJECT}.int_orders_priced", f"model.{PROJECT}.fct_orders"
    nodes = {
        stg: _model(stg, "models/staging/app/stg_app__orders.sql", [src]),
        mid: _model(mid, "models/intermediate/int_orders_priced.sql", [stg]),
        mart: _model(mart, "models/marts/fct_orders.sql", [mid]),
    }
    for uid in list(nodes):
        nodes.update(_pk_tests(uid))
    return {
        "nodes": nodes,
        "sources": {src: {"source_name": "app", "description": "d", "loaded_at_field": "_at",
                          "freshness": {"warn_after": {"count": 1, "period": "day"}}}},
        "exposures": {f"exposure.{PROJECT}.board": {
            "resource_type": "exposure", "name": "board", "description": "d",
            "owner": {"name": "n", "email": "e@x.example"}, "depends_on": {"nodes": [mart]}}},
        "macros": {},
    }  # fmt: skip


def test_the_rules_catch_violations() -> None:
    clean = clean_manifest()
    assert {rule.__name__: rule(clean) for rule in RULES} == {r.__name__: [] for r in RULES}
    src, stg = f"source.{PROJECT}.app.orders", f"model.{PROJECT}.stg_app__orders"
    mid, mart = f"model.{PROJECT}.int_orders_priced", f"model.{PROJECT}.fct_orders"

    def broken(change: Callable[[Manifest], None]) -> dict[str, list[str]]:
        m = copy.deepcopy(clean)
        change(m)
        return {rule.__name__: found for rule in RULES if (found := rule(m))}

    # the mart reads its staging model directly too: stg -> int -> mart and stg -> mart
    found = broken(lambda m: m["nodes"][mart]["depends_on"]["nodes"].append(stg))
    assert found == {"no_rejoined_concepts": [
        "stg_app__orders -> int_orders_priced -> fct_orders and stg_app__orders -> fct_orders"
    ]}  # fmt: skip
    # the intermediate model reads the source beside its staging model
    found = broken(lambda m: m["nodes"][mid]["depends_on"]["nodes"].append(src))
    assert set(found) == {
        "downstream_reads_no_source", "one_model_per_source", "no_rejoined_concepts"
    }  # fmt: skip
    found = broken(lambda m: m["nodes"][stg]["depends_on"]["nodes"].append(mid))
    assert "staging_reads_exactly_one_source" in found
    found = broken(lambda m: m["nodes"].pop(f"test.{PROJECT}.unique_fct_orders"))
    assert found == {"primary_key_tested": ["fct_orders has no primary-key test"]}
    found = broken(lambda m: m["nodes"][mart]["columns"]["id"].update(description=""))
    assert found == {"documented": ["column fct_orders.id has no description"]}
    found = broken(lambda m: m["exposures"].clear())
    assert found == {"marts_in_exposures": ["mart fct_orders is in no exposure"]}
    found = broken(lambda m: m["nodes"][mart].update(name="orders_report"))
    assert found == {
        "names_and_folders": ["mart orders_report is neither fct_/dim_ nor a SPEC.md mart name"]
    }
    found = broken(lambda m: m["nodes"][stg].update(original_file_path="models/staging/x.sql"))
    assert found == {"names_and_folders": ["stg_app__orders is not in models/staging/app/"]}
    found = broken(lambda m: m["sources"][src].update(loaded_at_field=None, freshness=None))
    assert len(found["sources_declare_freshness"]) == 2
    found = broken(
        lambda m: m["macros"].update(
            x={"package_name": PROJECT, "name": "pick", "description": "",
               "macro_sql": "{% macro pick(relation, key) %}{% endmacro %}", "arguments": []}
        )
    )  # fmt: skip
    assert found == {"macros_documented": [
        "macro pick has no description", "macro pick('relation', 'key') documents []"
    ]}  # fmt: skip
    # a view reading the run's day through a macro of its own, without the tag
    day_macro = {f"macro.{PROJECT}.as_of": {
        "package_name": PROJECT, "name": "as_of", "description": "d", "arguments": [],
        "macro_sql": "{% macro as_of() %}{% endmacro %}",
        "depends_on": {"macros": [f"macro.{PROJECT}.run_logical_date"]},
    }}  # fmt: skip

    def view_as_of_the_run(m: Manifest) -> None:
        m["macros"].update(day_macro)
        m["nodes"][mid]["config"]["materialized"] = "view"
        m["nodes"][mid]["depends_on"]["macros"] = [f"macro.{PROJECT}.as_of"]

    found = broken(view_as_of_the_run)
    assert found == {"views_made_at_run_time_are_tagged": [
        "view int_orders_priced is made at run time but has no tag daily_sql"
    ]}  # fmt: skip
    found = broken(lambda m: (view_as_of_the_run(m), m["nodes"][mid].update(tags=["daily_sql"])))
    assert found == {}
    # a model that declares its new rows, whose tests are not scoped in their config
    new_rows = {"new_rows": {"column": "loaded_at", "unit": "hour"}}
    found = broken(lambda m: m["nodes"][stg]["config"].update(meta=new_rows))
    assert found == {"new_rows_models_have_scoped_tests": [
        f"test {t}_stg_app__orders checks every row of a model with new rows"
        for t in ("unique", "not_null")
    ]}  # fmt: skip
    # a view with quarantine rules and no test counting what they hold out
    rules = {"quarantine": {"key": "id", "rules": {"id_positive": "id > 0"}}}
    found = broken(lambda m: m["nodes"][stg]["config"].update(meta=rules, materialized="view"))
    assert found == {"quarantine_rules_are_counted_and_deletable": [
        "stg_app__orders has quarantine rules but is a view",
        "stg_app__orders has quarantine rules but no quarantined test",
    ]}  # fmt: skip


# ---------------------------------------------------------------- documented = built


def test_every_built_column_is_documented_and_every_unit_test_passes(
    mongo_db, warehouse, local_dirs, dbt_target, tmp_path
) -> None:
    """The columns each model documents are exactly the columns it builds.

    The manifest only knows the documented columns; an empty build (`--empty`:
    every model with its real columns and no rows) shows the built ones. The
    dbt unit tests run in the same build: they need only their model's parents
    to exist, which the empty build makes first.
    """
    load_all()  # creates every raw table, so every source resolves
    summary = run_dbt(["build", "--empty", "--exclude-resource-type", "test"], tmp_path / "logs")
    assert summary.success, summary.failures
    manifest = json.loads((dbt_target / "manifest.json").read_text())
    unit_tests = len(manifest["unit_tests"])
    assert unit_tests >= 10 and summary.counts["unit_test"] == {"pass": unit_tests}
    undocumented = {}
    for node in models(manifest).values():
        built = {
            column
            for (column,) in rows(
                warehouse,
                "select column_name from information_schema.columns"
                f" where table_schema = '{node['schema']}' and table_name = '{node['alias']}'",
            )
        }
        assert built, f"{node['name']} was not built"
        if built != set(node["columns"]):
            undocumented[node["name"]] = {
                "built, not documented": sorted(built - set(node["columns"])),
                "documented, not built": sorted(set(node["columns"]) - built),
            }
    assert undocumented == {}
