"""``vifscope serve --flows`` in the flows test host (vifscope.lab.flowhost, test driver, serve in
the host netns): the server attaches to both taps by itself; after iperf3 (TCP) and ping
between the two netns guests, ``GET /api/v1/vifs/{domain}/{mac}/flows`` shows the peer named
with at least the bytes iperf3 sent and exactly the 5 echo requests / replies; unknown vifs
are 404; after SIGTERM no vifscope link or program remains."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vifscope.lab.flowhost import MACS, FlowHost, flow_host, vifscope_links, vifscope_programs

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


def ours(before: set[int]) -> list[dict[str, Any]]:
    return [link for link in vifscope_links() if link["prog_id"] not in before]


@contextmanager
def serve_flows(host: FlowHost, *extra: str) -> Iterator[Served]:
    """serve --flows in the host netns; on the way out SIGTERM, exit 0, and nothing of ours left."""
    before = {p["id"] for p in vifscope_programs()}
    argv = host.vifscope_argv("serve", "--json", "--listen", "127.0.0.1:0", "--flows", *extra)
    argv += ["--audit-log", str(host.dir / "audit.jsonl"), "--interval", "0.5"]
    proc = subprocess.Popen(argv, env=host.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        yield Served(host, json.loads(line)["url"], proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    assert rc == 0, proc.stderr.read() if proc.stderr else ""
    assert not ours(before), "a TCX link of serve's program outlived it"
    until(lambda: not [p for p in vifscope_programs() if p["id"] not in before], 10)


def talker(doc: dict[str, Any], key: str) -> dict[str, Any]:
    (vif,) = doc["vifs"]
    rows = {t["key"]: t for t in vif["talkers"]}
    assert key in rows, f"{key} not among {sorted(rows)}"
    return rows[key]


def test_serve_flows_route_shows_real_talkers(host: FlowHost) -> None:
    before = {p["id"] for p in vifscope_programs()}
    with serve_flows(host, "--flows-window", "60") as srv:
        until(lambda: len(ours(before)) == 4)  # both taps, each way: attached with no request
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
