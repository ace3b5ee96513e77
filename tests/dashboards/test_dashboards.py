"""The dashboards as code, in a real Superset: every chart draws real mart data, re-imports update.

Three simulated days of the sources the dashboards read (the order system,
the partner sales API, the feed and messenger events) go through the real
loaders and dbt into the test's warehouse; the bundle is imported the way
`make dashboards` does it, and headless Chromium opens every dashboard (the
platform health one reads what those loads and dbt invocations kept).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml

from config import SupersetSettings, WarehouseSettings
from pipelines import SOURCES_BY_NAME, run_source
from stack.dbt_build import run_dbt
from stack.superset import ASSETS_DIR, Superset, import_assets, login
from tests.dashboards import browser

# A real Superset in headless Chromium; the first test may wait for its set-up.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

START = dt.date(2026, 10, 1)
DAYS = 3  # enough for day-over-day numbers, trendlines and weekly retention
# Every mart a dataset of the bundle reads (the virtual ones join d_item and d_city).
MARTS = ("app_metrics_daily", "feed_anomalies", "feed_dimension_daily", "f_sales",
         "f_customer_retention", "d_item", "d_city", "mart_average_check",
         "mart_user_activity")  # fmt: skip
SLUGS = (
    SupersetSettings.APP_DASHBOARD_SLUG,
    SupersetSettings.SALES_DASHBOARD_SLUG,
    SupersetSettings.PLATFORM_DASHBOARD_SLUG,
)


@pytest.fixture
def marts(warehouse, api, oltp, kafka_topic, clickhouse_db, local_dirs, tmp_path, monkeypatch):
    """The marts the dashboards read, built from three simulated days (models only, no tests)."""
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    monkeypatch.setenv("DATAGEN_SCALE", "0.05")
    monkeypatch.setenv("DATAGEN_START_DATE", START.isoformat())
    monkeypatch.setenv("DATAGEN_HISTORY_DAYS", str(DAYS))
    days = [START + dt.timedelta(days=k) for k in range(DAYS)]
    sources = [SOURCES_BY_NAME[name] for name in ("oltp", "kafka", "sales_api", "events")]
    for day in days:  # as `make run` does: each system writes the day, then the loaders land it
        for source in sources:
            if source.simulate is not None:
                source.simulate(day)
    for source in sources:
        for day in days if source.daily else days[-1:]:
            run_source(source, day)
    selection = " ".join(f"+{mart}" for mart in MARTS)
    summary = run_dbt(
        ["build", "--select", selection, "--exclude-resource-type", "test", "unit_test",
         "--vars", f"{{logical_date: '{days[-1]}'}}"],
        tmp_path / "dbt-logs",
    )  # fmt: skip
    assert summary.success, summary.failures
    # The platform health views, over what those loads and builds kept, and their
    # tests: a day of test results for its dashboard.
    tested = run_dbt(["build", "--select", "tag:ops"], tmp_path / "dbt-logs")
    assert tested.success, tested.failures
    return warehouse


def test_every_chart_of_every_dashboard_draws_mart_data(
    marts, superset: Superset, tmp_path: Path
) -> None:
    # marts first: they build while Superset's background set-up may still run.
    counts = import_assets(superset, WarehouseSettings.from_env())
    assert counts == {"databases": 1, "datasets": 14, "charts": 34, "dashboards": 3}
    driver = browser.chromium()
    try:
        browser.login(
            driver,
            superset.url,
            superset.settings.admin_user,
            superset.settings.admin_password.get_secret_value(),
        )
        for slug in SLUGS:
            expected = browser.dashboard_charts(slug)
            charts = browser.open_dashboard(
                driver, f"{superset.url}/superset/dashboard/{slug}/", len(expected)
            )
            browser.screenshot(driver, tmp_path / f"{slug}.png")
            assert sorted(c.title for c in charts) == sorted(expected), slug
            not_drawn = [c for c in charts if c.state != "drawn"]
            assert not not_drawn, f"{slug}: {not_drawn} (screenshot {tmp_path / slug}.png)"

        # And the check is not blind: a chart whose query fails shows as an error
        # tile, one whose query returns no rows as empty.
        broken = tmp_path / "broken"
        shutil.copytree(ASSETS_DIR, broken)
        edit_chart(
            broken,
            "ctr.yaml",
            metrics=[
                {"expressionType": "SQL", "label": "broken", "sqlExpression": "sum(no_such_column)"}
            ],
        )
        edit_chart(
            broken,
            "messages_sent.yaml",
            adhoc_filters=[{"clause": "WHERE", "expressionType": "SQL", "sqlExpression": "1 = 0"}],
        )
        import_assets(superset, WarehouseSettings.from_env(), broken)
        slug = SupersetSettings.APP_DASHBOARD_SLUG
        charts = browser.open_dashboard(
            driver,
            f"{superset.url}/superset/dashboard/{slug}/",
            len(browser.dashboard_charts(slug)),
        )
        states = {c.title: c.state for c in charts if c.state != "drawn"}
        assert states == {"CTR per day": "error", "Messages sent": "empty"}, charts
    finally:
        driver.quit()


def edit_chart(assets: Path, file: str, **params: object) -> None:
    """Change some params of an app dashboard chart in a copy of the bundle."""
    path = assets / "charts" / "app_metrics" / file
    chart = yaml.safe_load(path.read_text())
    chart["params"].update(params)
    path.write_text(yaml.safe_dump(chart, sort_keys=False))


def test_reimporting_after_a_change_updates_the_dashboard(
    superset: Superset, warehouse, tmp_path: Path
) -> None:
    """The bundle is the source of truth: a re-import overwrites, it never duplicates."""
    assets = tmp_path / "assets"
    shutil.copytree(ASSETS_DIR, assets)
    wh = WarehouseSettings.from_env()
    import_assets(superset, wh, assets)
    with login(superset) as api:
        before = api.get("/api/v1/dashboard/app-metrics/charts")["result"]
        total_before = api.get("/api/v1/chart/")["count"]

    chart_file = assets / "charts" / "app_metrics" / "daily_active_users.yaml"
    chart = yaml.safe_load(chart_file.read_text())
    assert chart["slice_name"] == "Daily active users"
    chart["slice_name"] = "Daily active users (feed, messenger, both)"
    chart_file.write_text(yaml.safe_dump(chart, sort_keys=False))
    import_assets(superset, wh, assets)

    with login(superset) as api:
        after = api.get("/api/v1/dashboard/app-metrics/charts")["result"]
        total_after = api.get("/api/v1/chart/")["count"]
    titles = {c["slice_name"] for c in after}
    assert "Daily active users (feed, messenger, both)" in titles
    assert "Daily active users" not in titles
    assert len(after) == len(before) and total_after == total_before  # updated in place
    assert sorted(c["id"] for c in after) == sorted(c["id"] for c in before)
