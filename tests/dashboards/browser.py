"""Superset's dashboards in headless Chromium: log in, open one, see what each chart drew.

Debian's ``chromium`` and ``chromium-driver`` (``make browser`` installs
them); selenium drives them through the given chromedriver, never
downloading one. Used by the dashboards test and by
``python -m tests.dashboards.screenshots`` (the pictures in docs/dashboards.md).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from stack.superset import asset_files

WIDTH = 1400  # px: the screenshots in docs/dashboards.md are this wide
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVER = "chromedriver"

# What each chart shows once its query came back, as one word: an error tile,
# Superset's "No results" state, something drawn (canvas pixels, an SVG
# drawing, table rows, a big number), or still loading.
CHART_STATES_JS = """
const inked = (canvas) => {
  try {
    const ctx = canvas.getContext('2d');
    if (!ctx || !canvas.width || !canvas.height) return 0;
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 3; i < data.length; i += 16) if (data[i] > 0) n++;
    return n;
  } catch (e) { return 0; }
};
return [...document.querySelectorAll("[data-test='chart-grid-component']")].map((el) => {
  const title = (el.querySelector("[data-test='editable-title']") || {}).innerText || '';
  const error = el.querySelector('.ant-alert-error');
  if (error) return [title, 'error', error.innerText.slice(0, 300)];
  if (el.querySelector('.ant-empty')) return [title, 'empty', el.innerText.slice(0, 200)];
  const body = el.querySelector("[data-test='chart-container']");
  if (!body) return [title, 'loading', ''];
  const rows = body.querySelectorAll('tbody tr').length;
  const number = (body.querySelector('.header-line') || {}).innerText || '';
  const ink = [...body.querySelectorAll('canvas')].reduce((sum, c) => sum + inked(c), 0);
  if (rows > 0) return [title, 'drawn', rows + ' table rows'];
  if (number.trim()) return [title, 'drawn', 'big number ' + number.trim()];
  if (ink > 200) return [title, 'drawn', ink + ' canvas pixels'];
  return [title, 'loading', ''];
});
"""


class BrowserMissing(RuntimeError):
    pass


def dashboard_charts(slug: str) -> list[str]:
    """The chart titles a dashboard of the bundle shows, in layout order."""
    files = asset_files()
    titles = {str(c["uuid"]): c["slice_name"] for n, c in files.items() if n.startswith("charts/")}
    [dashboard] = [c for n, c in files.items() if n.startswith("dashboards/") and c["slug"] == slug]
    return [
        titles[item["meta"]["uuid"]]
        for item in dashboard["position"].values()
        if isinstance(item, dict) and item.get("type") == "CHART"
    ]


def find_browser() -> tuple[str, str]:
    """(chromium, chromedriver) on PATH, or BrowserMissing saying how to install them."""
    browser = next((p for name in CHROMIUM if (p := shutil.which(name))), None)
    driver = shutil.which(DRIVER)
    if not browser or not driver:
        raise BrowserMissing(
            "chromium and chromedriver are needed: run `make browser` (as root it "
            "apt-get installs chromium and chromium-driver)"
        )
    return browser, driver


def chromium(height: int = 1000) -> webdriver.Chrome:
    browser, driver = find_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in CI containers
        "--disable-dev-shm-usage",  # small /dev/shm in containers
        "--hide-scrollbars",
        f"--window-size={WIDTH},{height}",
        "--force-device-scale-factor=1",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def login(driver: webdriver.Chrome, base_url: str, user: str, password: str) -> None:
    """Superset's own login form, as a person would use it.

    The form is React's: on a loaded machine it can re-render between the
    typing and the Enter, and the values typed are lost (the form then stays
    on /login, saying the fields are required). So the values are checked
    before Enter, and a form still on /login after a while is loaded and
    filled again, until the deadline; the failure says what the page showed.
    """
    deadline = time.monotonic() + 90
    shown = ""
    while time.monotonic() < deadline:
        driver.get(f"{base_url}/login/")
        while not driver.find_elements(By.ID, "username"):
            if time.monotonic() > deadline:
                raise AssertionError(f"no login form at {base_url}/login/")
            time.sleep(0.2)
        try:
            name, secret = (
                driver.find_element(By.ID, "username"),
                driver.find_element(By.ID, "password"),
            )
            name.send_keys(user)
            secret.send_keys(password)
            if name.get_attribute("value") != user or secret.get_attribute("value") != password:
                continue  # re-rendered while typing: load the form again
            secret.send_keys(Keys.ENTER)
        except WebDriverException:  # an element went stale under a re-render
            continue
        tried = time.monotonic()
        while "/login" in driver.current_url and time.monotonic() - tried < 15:
            time.sleep(0.2)
        if "/login" not in driver.current_url:
            return
        shown = driver.find_element(By.TAG_NAME, "body").text[:300]
    raise AssertionError(f"the login of {user!r} was not accepted; the page said: {shown!r}")


@dataclass(frozen=True)
class Chart:
    title: str
    state: str  # drawn, error, empty or loading
    detail: str


def open_dashboard(
    driver: webdriver.Chrome, url: str, charts: int, timeout: float = 90
) -> list[Chart]:
    """Open a dashboard and wait until each of its ``charts`` has settled; what each shows.

    The window is made as tall as the page first, so every chart is in view
    (Superset draws charts below the fold only when scrolled to).
    """
    driver.get(url)
    deadline = time.monotonic() + timeout
    sized = False
    states: list[Chart] = []
    while time.monotonic() < deadline:
        try:
            states = [Chart(*row) for row in driver.execute_script(CHART_STATES_JS)]
        except WebDriverException:
            states = []
        if len(states) >= charts and not sized:
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(WIDTH, int(height) + 100)
            sized = True
        elif sized and len(states) >= charts and all(c.state != "loading" for c in states):
            time.sleep(1)  # let the last animations finish before anyone takes a picture
            return [Chart(*row) for row in driver.execute_script(CHART_STATES_JS)]
        time.sleep(0.5)
    return states  # whatever is still loading shows up as such


def screenshot(driver: webdriver.Chrome, path: Path) -> None:
    """The whole page (the window is already as tall as the dashboard)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
