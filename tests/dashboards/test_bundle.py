"""The dashboards bundle on its own (no Superset): its references hold, it reads documented marts.

These catch a typo in a chart's metric or column, a uuid pasted twice, or a
mart column renamed in dbt, in milliseconds; the Superset test then shows
that what holds together here also draws.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections import Counter

import pytest
import yaml

from config import DBT_PROJECT_DIR, SupersetSettings, WarehouseSettings
from stack.superset import DATABASE_FILE, PASSWORD_MASK, asset_files, bundle

FILES = asset_files()
DATABASE = FILES[DATABASE_FILE]
DATASETS = {str(c["uuid"]): c for n, c in FILES.items() if n.startswith("datasets/")}
CHARTS = {str(c["uuid"]): c for n, c in FILES.items() if n.startswith("charts/")}
DASHBOARDS = {c["slug"]: c for n, c in FILES.items() if n.startswith("dashboards/")}


def documented_marts() -> dict[str, set[str]]:
    """Every mart of the dbt project and its documented columns."""
    marts: dict[str, set[str]] = {}
    for path in (DBT_PROJECT_DIR / "models" / "marts").rglob("*.yml"):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models", []):
            marts[model["name"]] = {c["name"] for c in model.get("columns", [])}
    return marts


def chart_items(dashboard: dict) -> list[dict]:
    return [
        item
        for item in dashboard["position"].values()
        if isinstance(item, dict) and item.get("type") == "CHART"
    ]


def test_the_dashboards_have_the_slugs_the_settings_name() -> None:
    assert set(DASHBOARDS) == {
        SupersetSettings.APP_DASHBOARD_SLUG,
        SupersetSettings.SALES_DASHBOARD_SLUG,
        SupersetSettings.PLATFORM_DASHBOARD_SLUG,
    }


def test_every_dashboard_says_how_old_its_data_is() -> None:
    for slug, dashboard in DASHBOARDS.items():
        titles = {item["meta"]["sliceName"] for item in chart_items(dashboard)}
        assert "Data as of" in titles, slug


def test_every_uuid_is_unique_and_every_reference_resolves() -> None:
    uuids = Counter(str(c["uuid"]) for n, c in FILES.items() if n != "metadata.yaml")
    assert [u for u, n in uuids.items() if n > 1] == []
    for dataset in DATASETS.values():
        assert dataset["database_uuid"] == DATABASE["uuid"], dataset["table_name"]
    for chart in CHARTS.values():
        assert chart["dataset_uuid"] in DATASETS, chart["slice_name"]
    on_dashboards = Counter()
    for slug, dashboard in DASHBOARDS.items():
        items = chart_items(dashboard)
        ids = [item["meta"]["chartId"] for item in items]
        assert len(set(ids)) == len(ids), f"{slug}: chartId placeholders repeat"
        for item in items:
            assert item["meta"]["uuid"] in CHARTS, f"{slug}: {item['id']}"
            assert item["meta"]["sliceName"] == CHARTS[item["meta"]["uuid"]]["slice_name"]
            on_dashboards[item["meta"]["uuid"]] += 1
        for native in dashboard["metadata"].get("native_filter_configuration", []):
            for target in native["targets"]:
                assert target["datasetUuid"] in DATASETS, native["name"]
            assert set(native["scope"]["excluded"]) <= set(ids), native["name"]
    assert set(on_dashboards) == set(CHARTS), "a chart of the bundle is on no dashboard"


def test_layouts_are_trees_of_rows_on_the_grid() -> None:
    for slug, dashboard in DASHBOARDS.items():
        position = dashboard["position"]
        for key, item in position.items():
            if not isinstance(item, dict):
                continue
            assert item["id"] == key, f"{slug}: {key}"
            for child in item.get("children", []):
                assert position[child]["parents"][-1] == key, f"{slug}: {child} under {key}"
        for row in position["GRID_ID"]["children"]:
            width = sum(position[c]["meta"]["width"] for c in position[row]["children"])
            assert width <= 12, f"{slug}: {row} is {width} columns wide"


def _metric_names(params: dict) -> set[str]:
    """The saved metrics a chart names (ad hoc metrics are dicts and carry their own SQL)."""
    names = [params.get("metric"), params.get("timeseries_limit_metric")]
    names += params.get("metrics", []) + params.get("metrics_b", [])
    return {n for n in names if isinstance(n, str)}


def _column_names(params: dict) -> set[str]:
    names = [params.get("x_axis")]
    for key in ("groupby", "groupby_b", "all_columns"):
        names += params.get(key, [])
    names += [json.loads(pair)[0] for pair in params.get("order_by_cols", [])]
    names += list(params.get("column_config", {}))
    return {n for n in names if isinstance(n, str)}


def test_charts_use_their_datasets_metrics_and_columns() -> None:
    for chart in CHARTS.values():
        dataset = DATASETS[chart["dataset_uuid"]]
        metrics = {m["metric_name"] for m in dataset.get("metrics", [])}
        columns = {c["column_name"] for c in dataset["columns"]}
        params, name = chart["params"], chart["slice_name"]
        assert _metric_names(params) <= metrics, (name, _metric_names(params) - metrics)
        assert _column_names(params) <= columns, (name, _column_names(params) - columns)
        if "x_axis_sort" in params:  # a bar chart sorted by a metric or a column
            assert params["x_axis_sort"] in metrics | columns, name


def test_datasets_read_documented_mart_columns() -> None:
    marts = documented_marts()
    for dataset in DATASETS.values():
        # The marts, or the platform health views (marts/ops, built in the ops schema).
        assert dataset["schema"] in ("marts", "ops"), dataset["table_name"]
        columns = [c["column_name"] for c in dataset["columns"]]
        assert len(set(columns)) == len(columns), dataset["table_name"]
        if dataset.get("sql"):  # virtual: the tables it reads are marts
            tables = set(re.findall(r"\b(?:from|join)\s+([a-z_]+)", dataset["sql"]))
            assert tables and tables <= set(marts), (dataset["table_name"], tables - set(marts))
            continue
        table = dataset["table_name"]
        assert table in marts, f"{table} is not a mart"
        # A calculated column (an expression) reads the mart's columns, not one of its own.
        stored = {c["column_name"] for c in dataset["columns"] if not c.get("expression")}
        assert stored <= marts[table], (table, stored - marts[table])
        assert dataset.get("main_dttm_col") in (None, *columns), table


def _unzip(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def test_the_bundle_points_at_the_configured_warehouse_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    password = "s3cret'pass\"word\\"
    wh = WarehouseSettings(
        host="warehouse.internal", port=5433, user="elt user", password=password,
        dbname="analytics", sslmode="require",
    )  # fmt: skip
    monkeypatch.setenv("DBT_SCHEMA_PREFIX", "ci_")
    data = bundle(wh)
    assert password.encode() not in data
    files = _unzip(data)
    assert all(name.startswith("bundle/") for name in files)  # Superset drops the first folder
    database = yaml.safe_load(files[f"bundle/{DATABASE_FILE}"])
    assert database["sqlalchemy_uri"] == (
        f"postgresql+psycopg2://elt%20user:{PASSWORD_MASK}@warehouse.internal:5433/analytics"
        "?sslmode=require"
    )
    schemas = {
        yaml.safe_load(text)["schema"] for name, text in files.items() if "/datasets/" in name
    }
    assert schemas == {"ci_marts", "ci_ops"}
    # In the repository, only a placeholder: the address is always the settings'.
    assert DATABASE["sqlalchemy_uri"] == "__WAREHOUSE_URI__"
    # Without a password, the URI has none (and none is asked for).
    monkeypatch.delenv("DBT_SCHEMA_PREFIX")
    trusted = WarehouseSettings(
        host="127.0.0.1", port=54329, user="postgres", password="", dbname="warehouse",
        sslmode="prefer",
    )  # fmt: skip
    files = _unzip(bundle(trusted))
    assert yaml.safe_load(files[f"bundle/{DATABASE_FILE}"])["sqlalchemy_uri"] == (
        "postgresql+psycopg2://postgres@127.0.0.1:54329/warehouse?sslmode=prefer"
    )
    schemas = {
        yaml.safe_load(text)["schema"] for name, text in files.items() if "/datasets/" in name
    }
    assert schemas == {"marts", "ops"}


def test_every_anomaly_metric_has_a_colour_of_its_own() -> None:
    """Charts that split by metric (anomalies per day, the flagged slices) draw each
    metric in its own colour, the same in every chart."""
    from reports.marts import ANOMALY_METRICS

    dashboard = next(d for n, d in FILES.items() if n.startswith("dashboards/app_metrics"))
    colours = dashboard["metadata"]["label_colors"]
    metric_colours = [colours[m] for m in ANOMALY_METRICS]
    assert len(set(metric_colours)) == len(ANOMALY_METRICS)
    others = {colours[k] for k in ("value", "lower_bound", "anomaly_value")}
    assert not others & set(metric_colours)


def test_loyalty_levels_are_drawn_by_rank(pg_server) -> None:
    """The average-check chart's x axis is split by status, so Superset orders it by the
    axis's values: the calculated level's values, run on PostgreSQL, sort by rank."""
    import psycopg

    [chart] = [c for c in CHARTS.values() if c["slice_name"] == "Average check by loyalty level"]
    dataset = DATASETS[chart["dataset_uuid"]]
    column = next(c for c in dataset["columns"] if c["column_name"] == chart["params"]["x_axis"])
    ranks = ["bronze", "silver", "gold", "platinum"]
    with psycopg.connect(pg_server.conninfo()) as conn:
        labels = conn.execute(
            f"select loyalty_status, {column['expression']} from unnest(%s::text[])"
            " as levels (loyalty_status)",
            (sorted(ranks),),
        ).fetchall()
    assert [level for level, _ in sorted(labels, key=lambda row: row[1])] == ranks
    assert all(level in label for level, label in labels)
