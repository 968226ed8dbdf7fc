"""The raw rtnetlink monitor against the real kernel, in a private network namespace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.integration

NS = "vs-w-nlt"
LISTENER = r"""
import dataclasses, json, sys
from vifscope.watch.nlmon import LinkMonitor
mon = LinkMonitor()
print("ready", flush=True)
while True:
    got = mon.read()
    for e in got:
        print(json.dumps(dataclasses.asdict(e)), flush=True)
        if e.action == "del" and e.name == "vs-w-b0":
            sys.exit(0)
"""


def ip(*args: str) -> str:
    return subprocess.run(["ip", "-n", NS, *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.fail("needs root (creates a network namespace)")
    subprocess.run(["ip", "netns", "add", NS], check=True)
    try:
        yield NS
    finally:
        subprocess.run(["ip", "netns", "del", NS], check=False)


def test_real_link_events_are_parsed(netns: str) -> None:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", LISTENER], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
        ip("link", "add", "vs-w-b0", "type", "bridge")
        ip("link", "add", "vs-w-v0", "type", "veth", "peer", "name", "vs-w-v1")
        ip("link", "set", "vs-w-v0", "master", "vs-w-b0")
        ip("link", "set", "vs-w-v0", "up")
        ip("link", "set", "vs-w-v0", "nomaster")
        bridge_index = json.loads(ip("-j", "link", "show", "vs-w-b0"))[0]["ifindex"]
        ip("link", "del", "vs-w-b0")
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    events = [json.loads(line) for line in out.splitlines()]
    v0 = [e for e in events if e["name"] == "vs-w-v0" and not e["bridge_port_msg"]]
    masters = [e["master_ifindex"] for e in v0]
    assert bridge_index in masters, v0
    assert masters[-1] is None  # after nomaster
    assert any(e["admin_up"] for e in v0)
    assert all(e["kind"] == "veth" for e in v0)
    b0 = [e for e in events if e["name"] == "vs-w-b0"]
    assert b0[0]["action"] == "new" and b0[0]["kind"] == "bridge"
    assert b0[-1]["action"] == "del"
    assert any(e["bridge_port_msg"] for e in events if e["name"] == "vs-w-v0")  # AF_BRIDGE port copies


OVERFLOWER = r"""
import sys
from vifscope.watch.nlmon import LinkMonitor
from vifscope.watch.events import LinksOverrun
mon = LinkMonitor(rcvbuf=int(sys.argv[1]))
print("ready", flush=True)
sys.stdin.readline()  # the storm has been sent, none of it read yet
kinds = []
while True:
    got = mon.read()
    kinds.append("overrun" if isinstance(got, LinksOverrun) else "events")
    if isinstance(got, list) and any(e.name == "vs-w-end" for e in got):
        break
print(" ".join(dict.fromkeys(kinds)), flush=True)
"""


def test_a_storm_that_overflows_the_socket_is_reported_not_missed(netns: str) -> None:
    """ENOBUFS: the kernel drops what does not fit; the monitor must say so (the engine then
    re-dumps every link), and keep reading afterwards."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", OVERFLOWER, "65536"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
        ip("link", "add", "vs-w-st0", "type", "bridge")
        batch = "link set vs-w-st0 up\nlink set vs-w-st0 down\n" * 2000  # 4,000 events, ~1 MB of messages
        subprocess.run(["ip", "-n", netns, "-batch", "-"], input=batch, text=True, check=True)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        ip("link", "add", "vs-w-end", "type", "bridge")  # after the overflow: still heard
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert out.split()[0] == "overrun", out
    assert "events" in out.split()
