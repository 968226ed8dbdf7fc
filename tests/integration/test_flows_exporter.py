"""``vifscope exporter --flows`` in the flows test host (vifscope.lab.flowhost): the first
scrape attaches to both taps, pings then show up as per-peer counters with the peer's domain,
a tap that goes is dropped by the next scrape (its flows deleted from the map), and when the
exporter is stopped (SIGTERM) no vifscope program stays loaded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vifscope.lab.flowhost import FlowHost, flow_host, vifscope_programs

pytestmark = pytest.mark.integration
P = os.environ.get("VIFSCOPE_TEST_LAB_PREFIX", "vs-t-")
NET = os.environ.get("VIFSCOPE_TEST_LAB_NET", "10.78")
SCRAPE = """
import json, sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
text = urllib.request.urlopen(sys.argv[1], timeout=60).read().decode()
print(json.dumps([[s.name, s.labels, s.value] for f in text_string_to_metric_families(text) for s in f.samples]))
"""


@pytest.fixture
def host(tmp_path: Path) -> Iterator[FlowHost]:
    if os.geteuid() != 0:
        pytest.fail("needs root (netns, veth, BPF)")
    with flow_host(tmp_path, P, NET) as h:
        yield h


def scrape(h: FlowHost, url: str) -> list[tuple[str, dict[str, str], float]]:
    import sys

    out = h.in_host(sys.executable, "-c", SCRAPE, url)
    return [(n, lab, v) for n, lab, v in json.loads(out)]


def value(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float | None:
    hits = [v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in labels.items())]
    return sum(hits) if hits else None


def test_exporter_flows(host: FlowHost) -> None:
    before = {p["id"] for p in vifscope_programs()}
    argv = host.vifscope_argv(
        "exporter", "--json", "--flows", "--no-checks", "--listen", "127.0.0.1:0",
        "--audit-log", str(host.dir / "audit.jsonl"),
    )  # fmt: skip
    proc = subprocess.Popen(argv, env=host.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = json.loads(proc.stdout.readline())["url"]
        first = scrape(host, url)
        assert value(first, "vifscope_flow_taps", state="attached") == 2
        assert value(first, "vifscope_source_up", source="bpf") == 1
        assert host.in_guest(0, "ping", "-c", "5", "-i", "0.2", "-s", "100", host.addrs[1]).returncode == 0
        second = scrape(host, url)
        a, b = host.domains
        sent = value(second, "vifscope_vif_flow_bytes_total", domain=a, direction="out", peer=host.addrs[1])
        assert sent == 5 * 142  # 5 echo requests: Ethernet 14 + IPv4 20 + ICMP 8 + 100
        assert value(second, "vifscope_vif_flow_packets_total", domain=a, direction="in", peer=host.addrs[1]) == 5
        peers = {
            lab["peer_domain"] for n, lab, _ in second if n == "vifscope_vif_flow_bytes_total" and lab["domain"] == a
        }
        assert b in peers
        assert value(second, "vifscope_flow_map_capacity") == 65536
        assert value(second, "vifscope_flow_map_evicted_total") == 0
        host.in_host("ip", "link", "del", host.taps[1])
        third = scrape(host, url)
        assert value(third, "vifscope_flow_taps", state="attached") == 1
        assert value(third, "vifscope_vif_flow_bytes_total", domain=b) is None
        # the gone tap's flows were deleted from the map, and that is not counted as eviction
        assert (value(third, "vifscope_flow_map_entries") or 0) < (value(second, "vifscope_flow_map_entries") or 0)
        assert value(third, "vifscope_flow_map_evicted_total") == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while [p for p in vifscope_programs() if p["id"] not in before] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in vifscope_programs() if p["id"] not in before]
