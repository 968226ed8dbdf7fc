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
