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

import numpy as np

from report import explorer

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


# ---------------------------------------------------------------- the explorer's checks (issue 22)

def saved(build: Path, name: str) -> dict:
    with np.load(build / "attributions" / f"{name}.npz") as z:
        return {k: z[k] for k in z.files}


def expected_counts(build: Path) -> dict:
    """Filter -> number of cards, computed from the saved arrays (not from data.js)."""
    ig = saved(build, "ig_main")
    y, t = ig["labels"], ig["targets"]
    q5 = set(saved(build, "q5_maps")["names"].tolist()) if (build / "attributions" / "q5_maps.npz").exists() else set()
    return {("f-label", "NORMAL"): int(np.sum(y == 0)), ("f-label", "PNEUMONIA"): int(np.sum(y == 1)),
            ("f-outcome", "correct"): int(np.sum(y == t)), ("f-outcome", "FP"): int(np.sum((y == 0) & (t == 1))),
            ("f-outcome", "FN"): int(np.sum((y == 1) & (t == 0))),
            ("f-target", "NORMAL"): int(np.sum(t == 0)), ("f-target", "PNEUMONIA"): int(np.sum(t == 1)),
            ("f-set", "q5"): len(q5)}


def shown(driver) -> tuple[int, int]:
    """(the count the page states, the cards really visible)."""
    return (int(driver.find_element("id", "count").text),     # rendered, not only flagged hidden
            driver.execute_script("return [...document.querySelectorAll('.card')].filter(c => c.offsetHeight > 0).length;"))


def check_explorer(driver, build: Path, report_names: int | None = None) -> None:
    """The checks of issue 22 on one build's explorer; raises AssertionError naming what failed."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    page = build / explorer.LINK
    ig = saved(build, "ig_main")
    n = len(ig["names"])
    driver.get(page.as_uri())
    assert shown(driver) == (n, n)
    assert driver.find_element(By.ID, "total").text == str(n)
    assert broken_images(driver) == []
    assert console_errors(driver) == []

    for (select, value), want in expected_counts(build).items():
        Select(driver.find_element(By.ID, select)).select_by_value(value)
        assert shown(driver) == (want, want), (select, value)
        driver.find_element(By.ID, "reset-filters").click()
    if report_names is not None:
        Select(driver.find_element(By.ID, "f-set")).select_by_value("report")
        assert shown(driver) == (report_names, report_names)
        driver.find_element(By.ID, "reset-filters").click()
    gaps = ig["gaps"]
    cut = float(np.median(gaps))
    Select(driver.find_element(By.ID, "f-col")).select_by_value("ig_main.gaps")
    driver.find_element(By.ID, "f-max").send_keys(repr(cut))
    assert shown(driver) == (int(np.sum(gaps <= cut)),) * 2
    driver.find_element(By.ID, "reset-filters").click()
    Select(driver.find_element(By.ID, "sort")).select_by_value("p")
    Select(driver.find_element(By.ID, "sort-dir")).select_by_value("desc")
    first = driver.execute_script("return document.querySelector('.card:not([hidden])').querySelector('.path').textContent;")
    assert first == str(ig["names"][np.argmax(ig["probs"])])
    driver.find_element(By.ID, "reset-filters").click()

    # the numbers on every card are the saved ones, as shown (4 decimals, gaps in % with 2)
    cards = driver.execute_script("""return [...document.querySelectorAll('.card')].map(c => ({
        name: c.querySelector('.path').textContent,
        rows: Object.fromEntries([...c.querySelectorAll('table.nums tr')].map(r => [r.dataset.key, r.cells[1].textContent]))}));""")
    by_name = {c["name"]: c["rows"] for c in cards}
    classes = ("NORMAL", "PNEUMONIA")
    for i, name in enumerate(ig["names"].tolist()):
        rows = by_name[name]
        assert rows["label"] == classes[ig["labels"][i]] and rows["target"] == classes[ig["targets"][i]]
        assert rows["outcome"] == ("correct" if ig["labels"][i] == ig["targets"][i] else
                                   "false positive" if ig["targets"][i] == 1 else "false negative")
        assert rows["p"] == f"{float(ig['probs'][i]):.4f}"
        assert rows["ig_main.gaps"] == f"{100 * float(ig['gaps'][i]):.2f}%"
        assert rows["ig_main.f_image"] == f"{float(ig['f_image'][i]):.4f}"

    # an address #image-name scrolls to that card; arrow keys move to the next one
    ids = driver.execute_script("return [...document.querySelectorAll('.card')].map(c => c.id);")
    target = ids[-2]
    for width in (1280, 700):           # the sticky bar is taller on a narrow window
        driver.set_window_size(width, 900)
        driver.get(page.as_uri() + "#" + target)
        top, bar, scrolled, current = driver.execute_script(
            "const c = document.getElementById(arguments[0]);"
            "return [c.getBoundingClientRect().top, document.getElementById('bar').offsetHeight, window.scrollY,"
            "        c.classList.contains('current')];", target)
        assert scrolled > 0 and current and bar - 1 <= top <= bar + 40, (width, top, bar, scrolled, current)
    driver.set_window_size(1280, 900)
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_DOWN)
    assert driver.execute_script("return location.hash;") == "#" + ids[-1]
    assert console_errors(driver) == []
