"""doctor's flows.map_full for real: a ``vifscope flows`` with a tiny --max-flows under traffic
of many more flows (UDP to 20,000 ports) fills its LRU map; doctor, another process, finds the map
by BPF map id, its fill and the collector's pid, and fixes it with that command line and a bigger
--max-flows. Once the collector is stopped the map goes with it and so does the finding.
Other runs' collectors (a bench) may be live on this host: only this test's pid counts."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vifscope.lab.flowhost import FlowHost, flow_host

pytestmark = pytest.mark.integration
P = os.environ.get("VIFSCOPE_TEST_LAB_PREFIX", "vs-t-")
NET = os.environ.get("VIFSCOPE_TEST_LAB_NET", "10.78")
SPRAY = "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
SPRAY += "for p in range(20000, 40000): s.sendto(b'x', (sys.argv[1], p))"


@pytest.fixture
def host(tmp_path: Path) -> Iterator[FlowHost]:
    if os.geteuid() != 0:
        pytest.fail("needs root (netns, veth, BPF)")
    with flow_host(tmp_path, P, NET) as h:
        yield h


def map_full(h: FlowHost, pid: int) -> list[dict[str, Any]]:
    ran = subprocess.run(h.vifscope_argv("doctor", "--json", "--only", "host"), env=h.env(), capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert ran.returncode in (0, 1), ran.stderr
    found = json.loads(ran.stdout)["findings"]
    return [f for f in found if f["check"] == "flows.map_full" and f["evidence"]["pid"] == pid]


def test_doctor_finds_a_full_flow_map_and_forgets_it_when_the_collector_stops(host: FlowHost) -> None:
    argv = host.vifscope_argv("flows", "--json", "--max-flows", "8192", "--interval", "120")
    proc = subprocess.Popen(argv, env=host.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().startswith("flows: collecting on 2 taps"), "flows did not start"
        sprayed = host.in_guest(0, "python3", "-c", SPRAY, host.addrs[1])
        assert sprayed.returncode == 0, sprayed.stderr
        found = map_full(host, proc.pid)
        assert len(found) == 1, found
        ev = found[0]["evidence"]
        entries, size = (int(x) for x in ev["entries"].split("/"))
        assert size == 8192 and entries >= 0.9 * size, ev
        assert "--max-flows 8192" in ev["cmdline"]
        fix = found[0]["fix"]
        assert fix.startswith(f"kill {proc.pid} && ") and "--max-flows 32768" in fix, fix
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 15
    while (left := map_full(host, proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left


def test_map_scan_counts_up_to_the_threshold_and_names_owners_of_full_maps_only(host: FlowHost) -> None:
    """Doctor scans in every deep snapshot: a map is counted only until it reaches the
    threshold, and a map below it is not listed (no /proc walk for it)."""
    from vifscope.sources.flows.maps import CHUNK, read_flow_maps

    argv = host.vifscope_argv("flows", "--json", "--max-flows", "65536", "--interval", "120")
    proc = subprocess.Popen(argv, env=host.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().startswith("flows: collecting on 2 taps"), "flows did not start"
        # 20,000 ports: an OUT flow on one tap and an IN flow on the other each, 40,000 of 65,536 (61 %)
        sprayed = host.in_guest(0, "python3", "-c", SPRAY, host.addrs[1])
        assert sprayed.returncode == 0, sprayed.stderr
        time.sleep(0.5)
        assert [m for m in read_flow_maps(0.9) or () if m.pid == proc.pid] == []
        half = [m for m in read_flow_maps(0.5) or () if m.pid == proc.pid]
        assert len(half) == 1 and half[0].max_entries == 65536, half
        assert 32768 <= half[0].entries < 32768 + CHUNK and "--max-flows" in half[0].argv, half
    finally:
        proc.kill()
        proc.wait()


def test_owners_walk_only_for_wanted_maps(tmp_path: Path) -> None:
    from vifscope.sources.flows.maps import map_owners

    for pid, fds in {"10": {"3": 7, "4": 8}, "11": {"5": 9}, "self": {"3": 7}}.items():
        (tmp_path / pid / "fd").mkdir(parents=True)
        (tmp_path / pid / "fdinfo").mkdir()
        for fd, map_id in fds.items():
            (tmp_path / pid / "fd" / fd).symlink_to("anon_inode:bpf-map")
            (tmp_path / pid / "fdinfo" / fd).write_text(f"pos:\t0\nmap_id:\t{map_id}\n")
    assert map_owners({9}, tmp_path) == {9: 11}
    assert map_owners({7, 9, 12}, tmp_path) == {7: 10, 9: 11}
