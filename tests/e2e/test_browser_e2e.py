"""The web page in Debian's headless Chromium (selenium + chromium-driver), on the real lab.

The page loads from a lab with a detached vif and shows it red; clicking it shows its
finding; after the test detaches another tap, the page shows that one red too without being
reloaded. Screenshots go to the test's tmp_path (and test-output/ for a person to look at).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from tests.e2e.conftest import sh, wait_for
from tests.e2e.serve_helpers import Server, serve
from vifscope.lab.topology import LabSpec

T = TypeVar("T")

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
# This machine's closed network: no background fetches, updates, sync or first-run pages.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1600,1000",
)
RED = "rgb(250, 82, 82)"  # --bad in style.css
Target = Callable[..., str]


@pytest.fixture(scope="module")
def server(lab: LabSpec, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("vs-g-browser")) as srv:
        yield srv


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    profile = tempfile.mkdtemp(prefix="vs-g-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def vif_node(driver: WebDriver, domain: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, f'#graph g.node.kind-vif[data-domain="{domain}"]')


def fresh(read: Callable[[], T], tries: int = 20) -> T:
    """Live updates re-render the graph at any moment, so an element found a moment ago can
    be gone: look it up again instead of failing on a stale reference."""
    for _ in range(tries - 1):
        try:
            return read()
        except StaleElementReferenceException:
            time.sleep(0.05)
    return read()


def fill(driver: WebDriver, domain: str) -> str:
    def read() -> str:
        rect = vif_node(driver, domain).find_element(By.TAG_NAME, "rect")
        return str(driver.execute_script("return getComputedStyle(arguments[0]).fill", rect))

    return fresh(read)


def shows(driver: WebDriver, domain: str, status: str) -> bool:
    def read() -> bool:
        nodes = driver.find_elements(By.CSS_SELECTOR, f'#graph g.node.kind-vif[data-domain="{domain}"]')
        return bool(nodes) and nodes[0].get_attribute("data-status") == status

    return fresh(read)


def finding_text(driver: WebDriver, check: str) -> str | None:
    def read() -> str | None:
        found = driver.find_elements(By.CSS_SELECTOR, f'#details .finding[data-check="{check}"]')
        return found[0].text if found else None

    return fresh(read)


def screenshot(driver: WebDriver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    assert driver.save_screenshot(str(path))
    keep = ROOT / "test-output"
    keep.mkdir(exist_ok=True)
    shutil.copy(path, keep / name)
    return path


def test_page_shows_broken_vif_red_its_finding_and_live_updates(
    server: Server, lab: LabSpec, target: Target, browser: WebDriver, tmp_path: Path
) -> None:
    browser.get(f"{server.url}?q={lab.prefix}")
    assert wait_for(lambda: shows(browser, lab.name("broken"), "detached"), 20), "graph never drew the lab"
    assert fill(browser, lab.name("broken")) == RED
    assert fill(browser, lab.name("web1")) != RED
    row_status = fresh(
        lambda: browser.find_element(By.CSS_SELECTOR, f'#vifs tr[data-domain="{lab.name("broken")}"]').get_attribute(
            "data-status"
        )
    )
    assert row_status == "detached"

    fresh(lambda: vif_node(browser, lab.name("broken")).click())
    assert wait_for(lambda: finding_text(browser, "vif.detached") is not None, 20)
    text = finding_text(browser, "vif.detached") or ""
    assert lab.bridge in text and target("broken") in text
    screenshot(browser, tmp_path, "serve-broken-vif.png")

    loaded_at = browser.execute_script("return performance.timeOrigin")
    updates = browser.execute_script("return window.vifscope.updates")
    tap = target("web1")
    sh("ip", "link", "set", tap, "nomaster")
    try:
        started = time.monotonic()
        assert wait_for(lambda: shows(browser, lab.name("web1"), "detached"), 20), "the page did not update"
        took = time.monotonic() - started
        assert fill(browser, lab.name("web1")) == RED
        assert browser.execute_script("return performance.timeOrigin") == loaded_at  # same page: no reload
        assert browser.execute_script("return window.vifscope.updates") > updates
        screenshot(browser, tmp_path, "serve-live-update.png")
        print(f"page showed the detached tap {took:.2f} s after 'ip link set nomaster'")
    finally:
        sh("ip", "link", "set", tap, "master", lab.bridge)
    assert wait_for(lambda: shows(browser, lab.name("web1"), "bound"), 20)
