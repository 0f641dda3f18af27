"""Headless Chromium for the browser tests (Debian's chromium and chromium-driver, driven by Selenium).

Browser downloads do not work here: Selenium is pointed at the system browser and driver. Tests call
``unavailable()`` and skip with its reason (printed by ``-rs``) on a machine without them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path(os.environ.get("XAIKIT_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("XAIKIT_CHROMEDRIVER", "/usr/bin/chromedriver"))
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--window-size=1280,900")


def unavailable() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements-dev.txt)"
    for path, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            return f"{path} not found: install the Debian package {pkg} (bash setup.sh test does, as root)"
    return None


@contextmanager
def chromium():
    """A fresh headless Chromium (own empty profile) whose console messages are kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="xaikit-chromium-")
    opts = Options()
    opts.binary_location = str(CHROMIUM)
    for flag in FLAGS + (f"--user-data-dir={profile}",):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver) -> list[str]:
    """Console messages of level SEVERE (errors, failed loads) since the last call."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def broken_images(driver, timeout: float = 30) -> list[str]:
    """Load every image of the page, lazy ones included, and return those that failed."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("for (const i of document.images) i.loading = 'eager';")
    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script("return [...document.images].every(i => i.complete);"))
    return driver.execute_script(
        "return [...document.images].filter(i => !(i.naturalWidth > 0)).map(i => i.getAttribute('src'));")


def unresolved_links(driver, page: Path) -> list[str]:
    """Links of the page that lead nowhere: #id without an element of that id, or a relative file
    link to a file that does not exist."""
    hrefs = driver.execute_script("return [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'));")
    bad = []
    for h in hrefs:
        if h.startswith("#"):
            if not driver.execute_script("return document.getElementById(arguments[0]) !== null;", h[1:]):
                bad.append(h)
        elif "://" not in h and not h.startswith("mailto:"):
            target = (page.parent / h.split("#")[0].split("?")[0]).resolve()
            if not target.exists():
                bad.append(h)
    return bad
