"""``vifscope top`` on the real lab: rates follow real traffic sent into a guest, in the guest's
direction; the live view refreshes in a terminal, re-sorts on a key and quits on q.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Result, ping, vifscope, wait_for
from vifscope.lab.lab import break_guest
from vifscope.lab.topology import LabSpec

pytestmark = pytest.mark.e2e

Target = Callable[..., str]
PAYLOAD = 1200  # UDP payload bytes; on the wire (Ethernet + IP + UDP headers) 1242
RATE = 100  # packets per second


def _udp_flood(netns: str, addrs: list[str], seconds: float) -> subprocess.Popen[bytes]:
    """One-way traffic into lab guests from the lab's outside namespace (UDP discard port:
    a guest only answers now and then with a rate-limited ICMP port unreachable)."""
    code = (
        "import socket,time\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        f"end=time.monotonic()+{seconds}\n"
        "while time.monotonic()<end:\n"
        f" [s.sendto(b'x'*{PAYLOAD},(a,9)) for a in {addrs!r}]; time.sleep({1 / RATE})\n"
    )
    return subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c", code])


@pytest.fixture
def flood(lab: LabSpec) -> Iterator[None]:
    """UDP into web1 (a tap on a bridge) and mac1 (a macvtap) for 6 s."""
    addrs = [f"{lab.subnet(1)}.11", f"{lab.subnet(4)}.11"]
    for addr in addrs:
        assert wait_for(lambda a=addr: ping(lab.netns, a), 30), f"{addr} must answer before we measure it"
    proc = _udp_flood(lab.netns, addrs, 6.0)
    try:
        time.sleep(1.0)  # let ARP settle and the rate become steady
        yield
    finally:
        proc.kill()
        proc.wait(timeout=10)


def top_once(lab: LabSpec, *extra: str) -> Result:
    domains = [arg for short in ("web1", "mac1", "multi", "db1", "broken") for arg in ("-d", lab.name(short))]
    return vifscope("top", "--once", "--json", "--interval", "2", *domains, *extra)


def rows_by_domain(doc: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    return {(v["domain"], v["index"]): v for v in doc["vifs"]}


def test_once_json_rates_follow_real_traffic(lab: LabSpec, flood: None) -> None:
    break_guest(lab.guest("broken"))
    res = top_once(lab, "--sort", "rx")
    assert res.rc == 1, res.err  # the lab's broken guest is detached
    doc = res.doc
    assert 1.8 <= doc["interval"] <= 3.0, doc["interval"]
    rows = rows_by_domain(doc)
    web = rows[(lab.name("web1"), 0)]
    assert web["status"] == "bound"
    # The guest receives ~RATE packets/s of ~1242 bytes (Python's sleep makes it somewhat lower).
    assert RATE * 0.4 <= web["rx_pps"] <= RATE * 1.3, web
    assert web["rx_bps"] == pytest.approx(web["rx_pps"] * (PAYLOAD + 42) * 8, rel=0.1)
    # One-way: what the guest sends back (rate-limited ICMP) is a small fraction.
    assert web["tx_bps"] < web["rx_bps"] / 5, web
    # A macvtap counts from the guest's side already: its rx is what the guest received.
    mac = rows[(lab.name("mac1"), 0)]
    assert RATE * 0.4 <= mac["rx_pps"] <= RATE * 1.3 and mac["tx_bps"] < mac["rx_bps"] / 5, mac
    assert {v["domain"] for v in doc["vifs"][:2]} == {lab.name("web1"), lab.name("mac1")}, "--sort rx: busiest first"
    idle = rows[(lab.name("db1"), 0)]
    assert idle["rx_pps"] < 5, idle
    assert rows[(lab.name("broken"), 0)]["status"] == "detached"
    assert doc["source_errors"] == []


def test_once_exit_code_and_filters(lab: LabSpec) -> None:
    res = vifscope("top", "--once", "--json", "--interval", "0.5", "-d", lab.name("web1"))
    assert res.rc == 0, res.err
    assert [v["domain"] for v in res.doc["vifs"]] == [lab.name("web1")]
    res = vifscope("top", "--once", "--interval", "0.5", "-d", lab.name("web1"), "-d", lab.name("off"))
    assert res.rc == 0
    assert lab.name("web1") in res.out and "RX bit/s" in res.out and "inactive" in res.out
    assert vifscope("top", "--once", "--interval", "0").rc == 2


def _read_for(fd: int, seconds: float) -> str:
    out, deadline = b"", time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    return out.decode(errors="replace")


def test_live_view_refreshes_resorts_and_quits(lab: LabSpec) -> None:
    """top in a real pseudo-terminal: it redraws every second, 's' changes the sort, 'q' quits."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "160", "LINES": "40", "TERM": "xterm"}
    cmd = [sys.executable, "-m", "vifscope", "top", "-d", lab.name("web1"), "-d", lab.name("multi")]
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    try:
        screen = _read_for(master, 3.6)
        assert screen.count("sort rx") >= 2, f"expected a redraw every second:\n{screen}"
        assert lab.name("web1") in screen and "keys: s sort" in screen
        os.write(master, b"s")
        assert "sort tx" in _read_for(master, 1.5)
        started = time.monotonic()
        os.write(master, b"q")
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - started < 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(master)
