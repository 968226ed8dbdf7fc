"""The web page in headless Chromium with hostile names: a domain named
``-vs-h-<img src=x onerror=alert(1)>&ü``, a bridge ``vs-h-<i>&``, quotes, ``$(…)`` and backticks
(hostile_host.node_xml, read through libvirt's test driver by a read-only ``vifscope serve``).

Each name shows as text, exactly, in the vif table, the graph and the details panel; no
element the names spell (an ``<img>``, an ``<i>``) exists in the document, and no dialog opens.
The page's CSP would block an inline handler anyway: what is checked is that the markup is
never parsed at all.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from tests.integration.hostile_host import BR, BR2, D1, D2, ROOT, T1, T2, T3, node_xml

pytestmark = pytest.mark.integration
T = TypeVar("T")
CHROMIUM_FLAGS = (  # as tests/e2e/test_browser_e2e.py: no background traffic on a closed network
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1600,1000",
)

webdriver = pytest.importorskip("selenium.webdriver")
if shutil.which("chromedriver") is None:
    pytest.skip("Chromium is installed by make setup-test", allow_module_level=True)

from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("vs-h-page")
    (tmp / "node.xml").write_text(node_xml())
    cmd = [sys.executable, "-m", "vifscope", "-c", f"test://{tmp / 'node.xml'}", "serve", "--json"]
    cmd += ["--listen", "127.0.0.1:0", "--interval", "0.5", "--audit-log", str(tmp / "a.jsonl")]
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        yield str(json.loads(line)["url"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert not (tmp / "vs-h-pwned").exists()


@pytest.fixture()
def browser() -> Iterator[WebDriver]:
    profile = tempfile.mkdtemp(prefix="vs-h-chromium-")
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


def until(read: Callable[[], T], timeout: float = 30) -> T:
    """The first truthy value of ``read`` (the page re-renders live: a stale element is retried)."""
    end = time.monotonic() + timeout
    while True:
        try:
            value = read()
            if value or time.monotonic() > end:
                return value
        except StaleElementReferenceException:
            pass
        time.sleep(0.1)


def no_dialog(driver: WebDriver) -> bool:
    try:
        driver.switch_to.alert  # noqa: B018 - raises when no dialog is open
    except NoAlertPresentException:
        return True
    return False


def test_hostile_names_render_as_text_only(browser: WebDriver, url: str) -> None:
    browser.get(url)
    rows = until(
        lambda: (
            browser.find_elements(By.CSS_SELECTOR, "#vifs tr[data-domain]")
            if len(browser.find_elements(By.CSS_SELECTOR, "#vifs tr[data-domain]")) == 3
            else []
        )
    )
    assert len(rows) == 3, "the table never showed the three vifs"
    cells = until(
        lambda: [
            [td.get_attribute("textContent") for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in browser.find_elements(By.CSS_SELECTOR, "#vifs tr[data-domain]")
        ]
    )
    assert sorted((c[0], c[2]) for c in cells) == sorted([(D1, T1), (D1, T2), (D2, T3)])
    assert {c[4] for c in cells} == {BR, BR2}  # the bridge column: "vs-h-<i>&" as text
    domains = browser.execute_script(
        "return [...document.querySelectorAll('#graph g.node[data-domain]')].map(g => g.dataset.domain)"
    )
    assert set(domains) == {D1, D2}
    graph_text = browser.execute_script("return document.querySelector('#graph').textContent")
    assert "-vs-h-<img" in graph_text  # the label, shortened maybe, but as text
    node = browser.find_element(By.CSS_SELECTOR, "#graph g.node.kind-vif[data-domain]:not([data-domain^='vs-h'])")
    node.click()
    details = until(
        lambda: (
            browser.execute_script("return document.querySelector('#details').textContent")
            if D2 in browser.execute_script("return document.querySelector('#details').textContent")
            else ""
        )
    )
    assert D2 in details and T3 in details
    injected = browser.execute_script(
        "return {img: [...document.images].filter(e => !e.src.endsWith('/static/favicon.svg')).length,"
        " i: document.getElementsByTagName('i').length,"
        " onerror: document.querySelectorAll('[onerror]').length}"
    )
    assert injected == {"img": 0, "i": 0, "onerror": 0}
    assert no_dialog(browser)
