"""``vifscope serve --flows`` in the flows test host (vifscope.lab.flowhost, test driver, serve in
the host netns): the server attaches to both taps by itself; after iperf3 (TCP) and ping
between the two netns guests, ``GET /api/v1/vifs/{domain}/{mac}/flows`` shows the peer named
with at least the bytes iperf3 sent and exactly the 5 echo requests / replies; unknown vifs
are 404; after SIGTERM no vifscope link or program remains. And the web page in Debian's
headless Chromium (run inside the same netns): clicking a vif with traffic shows its talker
row, peer named and refreshed; without --flows the panel says flows are off."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from vifscope.lab.flowhost import MACS, FlowHost, flow_host, vifscope_links

pytestmark = pytest.mark.integration
P = os.environ.get("VIFSCOPE_TEST_LAB_PREFIX", "vs-t-")
NET = os.environ.get("VIFSCOPE_TEST_LAB_NET", "10.78")
GET = """
import json, sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=60) as r:
        print(json.dumps([r.status, json.load(r)]))
except urllib.error.HTTPError as e:
    print(json.dumps([e.code, json.load(e)]))
"""


@dataclass
class Served:
    host: FlowHost
    url: str
    proc: subprocess.Popen[str]
    links: set[int] = field(default_factory=set)  # every link id serve held while it ran

    def attached(self, n: int) -> bool:
        """serve holds ``n`` links now (``ip netns exec`` execs: proc.pid is serve's)."""
        now = link_ids(self.proc.pid)
        self.links |= now
        return len(now) == n

    def get(self, path: str) -> tuple[int, Any]:
        """From inside the host netns, where serve listens on the loopback."""
        status, doc = json.loads(self.host.in_host(sys.executable, "-c", GET, self.url + path.lstrip("/")))
        return int(status), doc

    def flows(self, i: int, query: str = "") -> dict[str, Any]:
        status, doc = self.get(f"api/v1/vifs/{self.host.domains[i]}/{MACS[i]}/flows?{query}")
        assert status == 200, doc
        return dict(doc)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[FlowHost]:
    if os.geteuid() != 0:
        pytest.fail("needs root (netns, veth, BPF)")
    with flow_host(tmp_path, P, NET) as h:
        yield h


def until(pred: Any, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def link_ids(pid: int) -> set[int]:
    """The BPF links process ``pid`` holds (its fds' fdinfo): serve's TCX links, and no other
    process's (other flows tests may run on this host at the same time)."""
    ids: set[int] = set()
    fdinfo = Path(f"/proc/{pid}/fdinfo")
    for entry in fdinfo.iterdir():
        try:
            text = entry.read_text()
        except OSError:  # an fd closed meanwhile
            continue
        ids.update(int(line.split()[1]) for line in text.splitlines() if line.startswith("link_id:"))
    return ids


def alive(ids: set[int]) -> set[int]:
    return ids & {link["id"] for link in vifscope_links()}


@contextmanager
def serve_flows(host: FlowHost, *extra: str, flows: bool = True) -> Iterator[Served]:
    """serve --flows in the host netns; on the way out SIGTERM, exit 0, and nothing of ours left."""
    argv = host.vifscope_argv("serve", "--json", "--listen", "127.0.0.1:0", *(("--flows",) if flows else ()), *extra)
    argv += ["--audit-log", str(host.dir / "audit.jsonl"), "--interval", "0.5"]
    proc = subprocess.Popen(argv, env=host.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        srv = Served(host, json.loads(line)["url"], proc)
        yield srv
        srv.attached(-1)  # the links held now, for the check after exit
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    assert rc == 0, proc.stderr.read() if proc.stderr else ""
    assert bool(srv.links) == flows, "serve --flows never attached (or serve without it did)"
    assert not alive(srv.links), "a TCX link of serve's program outlived it"


def talker(doc: dict[str, Any], key: str) -> dict[str, Any]:
    (vif,) = doc["vifs"]
    rows = {t["key"]: t for t in vif["talkers"]}
    assert key in rows, f"{key} not among {sorted(rows)}"
    return rows[key]


def test_serve_flows_route_shows_real_talkers(host: FlowHost) -> None:
    with serve_flows(host, "--flows-window", "60") as srv:
        until(lambda: srv.attached(4))  # both taps, each way: attached with no request
        iperf_server = subprocess.Popen(
            ["ip", "netns", "exec", host.guests[1], "iperf3", "-s", "-1"], stdout=subprocess.DEVNULL
        )
        try:
            time.sleep(0.3)
            ran = host.in_guest(0, "iperf3", "-c", host.addrs[1], "-n", "4M", "-J")
            assert ran.returncode == 0, ran.stderr
        finally:
            iperf_server.kill()
            iperf_server.wait()
        sent = json.loads(ran.stdout)["end"]["sum_sent"]["bytes"]
        pinged = host.in_guest(0, "ping", "-c", "5", "-i", "0.2", "-s", "100", host.addrs[1])
        assert pinged.returncode == 0, pinged.stderr

        doc = srv.flows(0)
        assert doc["schema"] == "vifscope.flows/1" and doc["attached"] is True and doc["window"] == 60
        peer = talker(doc, host.addrs[1])
        assert peer["peer"] == host.domains[1]
        assert peer["out"]["payload_bytes"] >= sent and peer["out"]["bytes"] >= sent
        assert peer["in"]["packets"] > 0 and peer["out"]["bps"] > 0
        icmp = talker(srv.flows(0, "by=proto"), "icmp")
        assert (icmp["out"]["packets"], icmp["in"]["packets"]) == (5, 5)
        assert icmp["out"]["bytes"] == 5 * 142  # Ethernet 14 + IPv4 20 + ICMP 8 + 100
        other_side = talker(srv.flows(1, "top=1"), host.addrs[0])
        assert other_side["peer"] == host.domains[0]
        assert other_side["in"]["payload_bytes"] == peer["out"]["payload_bytes"]  # the same segments

        status, err = srv.get(f"api/v1/vifs/{host.domains[0]}/52:54:00:00:00:99/flows")
        assert status == 404 and "52:54:00:00:00:99" in err["error"]
        status, err = srv.get(f"api/v1/vifs/{P}nosuch/{MACS[0]}/flows")
        assert status == 404
        status, _ = srv.get(f"api/v1/vifs/{host.domains[0]}/{MACS[0]}/flows?by=nonsense")
        assert status == 422

        host.in_host("ip", "link", "del", host.taps[1])
        until(lambda: srv.attached(2))  # the gone tap's links closed by the next pass, the other's kept
        assert srv.flows(1)["attached"] is False


def test_serve_without_bpf_still_serves_and_says_why(host: FlowHost) -> None:
    """As nobody (no CAP_BPF / CAP_NET_ADMIN) the program cannot load: serve starts anyway, says
    so once on stderr, and the route answers the documented 503 with the reason."""
    shared = Path(tempfile.mkdtemp(prefix=f"{P}nobpf-"))
    try:
        shared.chmod(0o755)
        node = shared / "node.xml"
        shutil.copy(host.dir / "node.xml", node)
        node.chmod(0o644)
        argv = ["ip", "netns", "exec", host.ns, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        argv += [sys.executable, "-m", "vifscope", "-c", f"test://{node}", "serve", "--json", "--flows"]
        argv += ["--listen", "127.0.0.1:0", "--audit-log", str(shared / "audit.jsonl")]
        proc = subprocess.Popen(argv, env=host.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            srv = Served(host, json.loads(proc.stdout.readline())["url"], proc)
            path = f"api/v1/vifs/{host.domains[0]}/{MACS[0]}/flows"
            starting = "the flow collector is not running (yet)"
            until(lambda: srv.get(path)[1]["source_errors"][-1]["error"] != starting)  # the first pass ran
            status, doc = srv.get(path)
            assert status == 503 and doc["vifs"] == [], doc
            (bpf,) = doc["source_errors"]
            assert bpf["source"] == "bpf" and "EPERM" in bpf["error"] and bpf["hint"], bpf
            assert srv.get("api/v1/vifs")[0] == 200  # the rest of the server works
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=30)
        err = proc.stderr.read() if proc.stderr else ""
        assert rc == 0, err
        assert err.count("vifscope serve: flows: ") == 1 and "EPERM" in err, err
    finally:
        shutil.rmtree(shared, ignore_errors=True)


CLONE_NEWNET = 0x40000000
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--window-size=1600,1000",
)  # fmt: skip


@contextmanager
def in_netns(name: str) -> Iterator[None]:
    """This thread (and what it starts: chromedriver, Chromium) in netns ``name``, where serve
    listens on its own loopback; back to the original netns after."""
    libc = ctypes.CDLL(None, use_errno=True)
    mine = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")
        try:
            yield
        finally:
            assert libc.setns(mine, CLONE_NEWNET) == 0, "could not return to the original netns"
    finally:
        os.close(target)
        os.close(mine)


@contextmanager
def chromium(netns: str) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix=f"{P}chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    with in_netns(netns):
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        try:
            yield driver
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)


def talker_rows(driver: Any) -> dict[str, list[str]]:
    """The talkers panel's rows by key (re-read: the panel redraws every refresh)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        rows = driver.find_elements(By.CSS_SELECTOR, "#talkers tr.talker")
        return {r.get_attribute("data-key"): [td.text for td in r.find_elements(By.TAG_NAME, "td")] for r in rows}
    except StaleElementReferenceException:
        return {}


def click_vif(driver: Any, domain: str) -> None:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def clicked() -> bool:
        try:
            driver.find_element(By.CSS_SELECTOR, f'#graph g.node.kind-vif[data-domain="{domain}"]').click()
        except (NoSuchElementException, StaleElementReferenceException):
            return False
        return True

    until(clicked)


def page_text(driver: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, css)
    return str(found[0].text) if found else ""


def test_page_shows_a_vifs_talkers_on_click(host: FlowHost) -> None:
    pinger = subprocess.Popen(
        ["ip", "netns", "exec", host.guests[0], "ping", "-i", "0.2", "-s", "1000", host.addrs[1]],
        stdout=subprocess.DEVNULL,
    )
    try:
        with serve_flows(host, "--flows-window", "4") as srv, chromium(host.ns) as page:
            page.get(srv.url)
            click_vif(page, host.domains[0])
            until(lambda: host.addrs[1] in talker_rows(page), 30)
            first = talker_rows(page)[host.addrs[1]]
            assert first[1] == host.domains[1]  # the peer named
            assert first[2].endswith(("KiB", "MiB")) and first[3].endswith("kbit/s")  # ~5 × 1042 B/s out
            heading = page_text(page, "#talkers h3")
            assert heading.startswith("Talkers (last "), heading
            # refreshed while open: the packet counts move on without another click
            until(lambda: talker_rows(page).get(host.addrs[1], first)[6] != first[6], 15)
            keep = Path(__file__).resolve().parents[2] / "test-output"
            keep.mkdir(exist_ok=True)
            assert page.save_screenshot(str(keep / "serve-talkers.png"))
    finally:
        pinger.kill()
        pinger.wait()


def test_page_says_when_flows_are_off(host: FlowHost) -> None:
    with serve_flows(host, flows=False) as srv, chromium(host.ns) as page:
        page.get(srv.url)
        click_vif(page, host.domains[0])
        until(lambda: "flows are off" in page_text(page, "#talkers"), 20)
        assert "vifscope serve --flows" in page_text(page, "#talkers")
