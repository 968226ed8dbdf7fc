"""``vifscope watch --flows`` in the flows test host (vifscope.lab.flowhost; its node file served
by a private libvirtd, since watch needs a daemon's events and keepalive): at start the
program is attached to both running vifs' taps; pings show up in ``flows`` events (per interval
deltas, summed here: exactly the 5 requests out and 5 replies in, the peer named); a tap that is
deleted is detached on its netlink event; SIGTERM stops watch with nothing of vifscope left."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vifscope.lab.flowhost import FlowHost, flow_host, vifscope_links, vifscope_programs
from vifscope.lab.private import PrivateLibvirtd

pytestmark = pytest.mark.integration
P = os.environ.get("VIFSCOPE_TEST_LAB_PREFIX", "vs-t-")
NET = os.environ.get("VIFSCOPE_TEST_LAB_NET", "10.78")


@pytest.fixture
def host(tmp_path: Path) -> Iterator[FlowHost]:
    if os.geteuid() != 0:
        pytest.fail("needs root (netns, veth, BPF)")
    with flow_host(tmp_path, P, NET) as h:
        yield h


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[dict[str, Any]]:
    q: queue.Queue[dict[str, Any]] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            q.put(json.loads(line))

    threading.Thread(target=pump, daemon=True).start()
    return q


def _until(pred: Any, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_watch_flows(host: FlowHost) -> None:
    before = {p["id"] for p in vifscope_programs()}
    with PrivateLibvirtd() as daemon:
        daemon.start()
        _watch(host, daemon.uri(host.dir / "node.xml"), before)


def _watch(host: FlowHost, uri: str, before: set[int]) -> None:

    def our_links() -> int:
        return len([link for link in vifscope_links() if link["prog_id"] not in before])

    argv = ["ip", "netns", "exec", host.ns, sys.executable, "-m", "vifscope", "-c", uri, "watch", "--json"]
    argv += ["--flows", "2", "--audit-log", str(host.dir / "audit.jsonl")]
    proc = subprocess.Popen(argv, env=host.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events = _lines(proc)
    try:
        assert events.get(timeout=60)["event"] == "start"
        _until(lambda: our_links() == 4)  # both taps, each way
        assert host.in_guest(0, "ping", "-c", "5", "-i", "0.2", host.addrs[1]).returncode == 0
        out = inn = 0
        deadline = time.monotonic() + 8  # the pings' interval and the next report
        while time.monotonic() < deadline:
            try:
                e = events.get(timeout=1)
            except queue.Empty:
                continue
            if e["event"] == "flows" and e["domain"] == host.domains[0]:
                for t in e["talkers"]:
                    if t["key"] == host.addrs[1]:
                        assert t["peer"] == host.domains[1]
                        out, inn = out + t["out"]["packets"], inn + t["in"]["packets"]
        assert (out, inn) == (5, 5)
        host.in_host("ip", "link", "del", host.taps[1])
        _until(lambda: our_links() == 2)  # the deleted tap's links are gone, the other's stay
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    assert rc == 0, proc.stderr.read() if proc.stderr else ""
    _until(lambda: not [p for p in vifscope_programs() if p["id"] not in before], 10)
