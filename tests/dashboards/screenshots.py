"""``python -m tests.dashboards.screenshots``: docs/dashboards.md's pictures, from Superset.

Start it with `make dashboards` first (after `make run`, so the marts have a
week of data). This logs in as the admin (SUPERSET_ADMIN_PASSWORD or the
generated password kept in DATA_DIR/superset), opens every dashboard in
headless Chromium, checks that every chart drew, and writes
``docs/img/dashboard-<slug>.png``: 1400 px wide, cropped below the last chart
and reduced to a 256-colour palette, so they stay small in git.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

from config import PROJECT_ROOT, SupersetSettings
from stack.superset import Superset, admin_password
from tests.dashboards.browser import chromium, dashboard_charts, login, open_dashboard

BOTTOM_JS = """
return Math.max(...[...document.querySelectorAll("[data-test='chart-grid-component']")]
  .map((el) => el.getBoundingClientRect().bottom + window.scrollY));
"""


def shrink(path: Path, bottom: int) -> None:
    """Crop below the dashboard (plus a margin) and store as a 256-colour palette PNG."""
    image = Image.open(path).convert("RGB")
    image = image.crop((0, 0, image.width, min(image.height, bottom + 24)))
    # Median cut keeps the page's light grey (octree turns it white); one k-means
    # pass keeps small bright marks such as the red anomaly dots.
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, kmeans=1).save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tests.dashboards.screenshots", description=__doc__)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "img")
    args = parser.parse_args(argv)
    superset = Superset.from_env()
    if not superset.answers():
        print(f"screenshots: Superset does not answer on {superset.url}: run `make dashboards`")
        return 1
    driver = chromium()
    try:
        login(driver, superset.url, superset.settings.admin_user, admin_password(superset)[0])
        for slug in (
            SupersetSettings.APP_DASHBOARD_SLUG,
            SupersetSettings.SALES_DASHBOARD_SLUG,
            SupersetSettings.PLATFORM_DASHBOARD_SLUG,
        ):
            charts = open_dashboard(
                driver, f"{superset.url}/superset/dashboard/{slug}/", len(dashboard_charts(slug))
            )
            not_drawn = [c for c in charts if c.state != "drawn"]
            if not_drawn:
                print(f"screenshots: {slug}: not every chart drew: {not_drawn}", file=sys.stderr)
                return 1
            path = args.out / f"dashboard-{slug}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(path))
            shrink(path, int(driver.execute_script(BOTTOM_JS)))
            print(f"{path.relative_to(PROJECT_ROOT)}  {path.stat().st_size // 1024} KB")
    finally:
        driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
