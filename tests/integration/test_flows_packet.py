"""The packet collector (AF_PACKET sampling, the fallback where BPF cannot load) against real
traffic between two netns "guests" (vifscope.lab.flowhost), forced with ``--collector packet``.

- At 1:1 every frame is counted: the same numbers as the BPF program (test_flows_real.py):
  iperf3's TCP bytes + its 37-byte cookie exactly (GSO packets counted in segments via
  PACKET_VNET_HDR), ping's 5 × 100 payload bytes in 142-byte frames each way.
- At 1:N each frame is counted ×N with probability 1/N: for k frames of one size the estimate
  is N·Binomial(k, 1/N). The test floods 20,000 pings of one size each way and accepts the
  estimate within 6 standard deviations (N·6·sqrt(k·(1/N)(1−1/N)): ±11 % at N=8) — a miss has
  probability ~2·10⁻⁹, so a failure is a bug, not bad luck. Bytes are packets × 1014 exactly.
- auto without CAP_BPF / CAP_SYS_ADMIN (setpriv drops them, CAP_NET_RAW stays): the BPF
  program gets EPERM and the packet collector runs, saying so.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vifscope.lab.flowhost import FlowHost, flow_host

pytestmark = pytest.mark.integration
P = os.environ.get("VIFSCOPE_TEST_LAB_PREFIX", "vs-t-")
NET = os.environ.get("VIFSCOPE_TEST_LAB_NET", "10.78")
IPERF_COOKIE = 37
NO_BPF = ["setpriv", "--bounding-set=-bpf,-sys_admin,-perfmon", "--inh-caps=-all", "--"]


@pytest.fixture
def host(tmp_path: Path) -> Iterator[FlowHost]:
    if os.geteuid() != 0:
        pytest.fail("needs root (netns, veth, AF_PACKET)")
    with flow_host(tmp_path, P, NET) as h:
        yield h


def start(h: FlowHost, *argv: str, taps: int = 2, prefix: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    """``vifscope flows --json ...`` in the host netns, returned once it collects."""
    base = h.vifscope_argv("flows", "--json", *argv)
    proc = subprocess.Popen(
        [*base[:4], *prefix, *base[4:]], env=h.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("flows: collecting"):
            assert f"on {taps} taps" in line, line
            proc.seen = seen  # type: ignore[attr-defined]
            return proc
    proc.kill()
    out, err = proc.communicate()
    pytest.fail(f"flows never attached (rc {proc.returncode}): {out} {''.join(seen)} {err}")


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def row(doc: dict[str, Any], domain: str, key: str) -> dict[str, Any]:
    v = next(v for v in doc["vifs"] if v["domain"] == domain)
    rows = {t["key"]: t for t in v["talkers"]}
    assert key in rows, f"{key} not among {sorted(rows)}"
    return rows[key]


def test_every_frame_iperf3_tcp_bytes_exact(host: FlowHost) -> None:
    server = subprocess.Popen(["ip", "netns", "exec", host.guests[1], "iperf3", "-s", "-1"], stdout=subprocess.DEVNULL)
    try:
        proc = start(host, "--collector", "packet", "--by", "flow", "--interval", "6", "--top", "50")
        ran = host.in_guest(0, "iperf3", "-c", host.addrs[1], "-t", "2", "-b", "400M", "-J")
        assert ran.returncode == 0, ran.stderr
        doc = finish(proc)
    finally:
        server.kill()
        server.wait()
    got = (doc["collector"], doc["sample_rate"], doc["estimated"], doc["fallback_reason"])
    assert got == ("packet", 1, False, None)
    iperf = json.loads(ran.stdout)
    sent, retrans = iperf["end"]["sum_sent"]["bytes"], iperf["end"]["sum_sent"].get("retransmits", 0)
    port = iperf["start"]["connected"][0]["local_port"]
    a = row(doc, host.domains[0], f"tcp :{port} > {host.addrs[1]}:5201")
    assert a["peer"] == host.domains[1]
    assert 0 <= a["out"]["payload_bytes"] - sent - IPERF_COOKIE <= retrans * 1448, (a, sent, retrans)
    b = row(doc, host.domains[1], f"tcp :5201 > {host.addrs[0]}:{port}")
    assert b["in"]["payload_bytes"] == a["out"]["payload_bytes"]
    assert b["in"]["packets"] == a["out"]["packets"]
    assert a["out"]["packets"] >= sent // 1448  # segments, not GSO packets
    headers = a["out"]["bytes"] - a["out"]["payload_bytes"]
    assert 54 * a["out"]["packets"] <= headers <= 134 * a["out"]["packets"]
    assert doc["counters"]["failed"] == 0


def test_every_frame_ping_exact(host: FlowHost) -> None:
    proc = start(host, "--collector", "packet", "--by", "proto", "--interval", "3", host.domains[0], taps=1)
    assert host.in_guest(0, "ping", "-c", "5", "-i", "0.2", "-s", "100", host.addrs[1]).returncode == 0
    doc = finish(proc)
    icmp = row(doc, host.domains[0], "icmp")
    assert (icmp["out"]["packets"], icmp["in"]["packets"]) == (5, 5)
    assert (icmp["out"]["payload_bytes"], icmp["in"]["payload_bytes"]) == (500, 500)
    assert (icmp["out"]["bytes"], icmp["in"]["bytes"]) == (5 * 142, 5 * 142)


def test_sampled_estimate_within_six_sigma(host: FlowHost) -> None:
    n, k, frame = 8, 20000, 14 + 20 + 8 + 972
    proc = start(host, "--collector", "packet", "--sample", str(n), "--by", "proto", "--interval", "6",
                 host.domains[0], taps=1)  # fmt: skip
    ran = host.in_guest(0, "ping", "-f", "-c", str(k), "-s", "972", "-W", "1", host.addrs[1], timeout=30)
    assert ran.returncode == 0 and " 0% packet loss" in ran.stdout, ran.stdout
    doc = finish(proc)
    assert (doc["collector"], doc["sample_rate"], doc["estimated"]) == ("packet", n, True)
    c = doc["counters"]
    assert (c["failed"], c["dropped"]) == (0, 0)  # no sample dropped by a full socket buffer
    # packets seen is an estimate ×N like the flows' counts (ICMP: no GSO, 1 packet a frame)
    rows = [t for v in doc["vifs"] for t in [*v["talkers"], *([v["other"]] if v["other"] else [])]]
    assert c["packets"] == sum(t[side]["packets"] for t in rows for side in ("out", "in")), c
    bound = n * 6 * math.sqrt(k * (1 / n) * (1 - 1 / n))
    icmp = row(doc, host.domains[0], "icmp")
    for side in ("out", "in"):
        est = icmp[side]["packets"]
        assert est % n == 0 and abs(est - k) <= bound, (side, est, k, bound)
        assert icmp[side]["bytes"] == est * frame and icmp[side]["payload_bytes"] == est * 972


def test_auto_falls_back_to_packet_without_bpf_capabilities(host: FlowHost) -> None:
    proc = start(host, "--by", "proto", "--interval", "3", host.domains[0], taps=1, prefix=tuple(NO_BPF))
    assert host.in_guest(0, "ping", "-c", "4", "-i", "0.2", host.addrs[1]).returncode == 0
    doc = finish(proc)
    note = "".join(proc.seen)  # type: ignore[attr-defined]
    assert "fallback: packet sampling 1:1 active" in note and "EPERM" in note, note
    assert doc["collector"] == "packet" and "EPERM" in doc["fallback_reason"]
    icmp = row(doc, host.domains[0], "icmp")
    assert (icmp["out"]["packets"], icmp["in"]["packets"]) == (4, 4)


def test_bpf_forced_without_capabilities_does_not_fall_back(host: FlowHost) -> None:
    base = host.vifscope_argv("flows", "--collector", "bpf", "--interval", "0.5")
    ran = subprocess.run([*base[:4], *NO_BPF, *base[4:]], env=host.env(), capture_output=True, text=True)
    assert ran.returncode == 3 and "EPERM" in ran.stderr, ran.stderr


def test_doctor_names_the_active_fallback_without_bpf_capabilities() -> None:
    """doctor's flows.unavailable in a process that may not load BPF but may open AF_PACKET."""
    if os.geteuid() != 0:
        pytest.fail("needs root")
    src = Path(__file__).resolve().parents[2] / "src"
    code = "import json; from dataclasses import asdict; from vifscope.sources.flows.support import read_flow_support; "
    code += "print(json.dumps(asdict(read_flow_support())))"
    ran = subprocess.run([*NO_BPF, sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(src)})  # fmt: skip
    got = json.loads(ran.stdout)
    assert got["available"] is False and "EPERM" in got["reason"]
    assert got["packet"] is True and got["maps"] is None  # map ids need CAP_SYS_ADMIN: not listed
