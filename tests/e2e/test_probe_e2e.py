"""doctor DOMAIN --probe on real TCG guests: reachable guests, a detached tap (the failing hop is
named), OVS, a bridge down, and cleanup when the probe is interrupted or killed.

Probe traffic stays inside the lab's own bridges (the guests' lab addresses).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import Result, sh, vifscope, wait_for
from vifscope.lab.topology import LabSpec

pytestmark = pytest.mark.e2e

Target = Callable[..., str]


def _argv(domain: str, address: str | None) -> list[str]:
    """vifscope doctor DOMAIN --probe, as a user runs it (its pid names the probe's namespace)."""
    extra = ["--address", address] if address else []
    return [sys.executable, "-m", "vifscope", "doctor", domain, "--probe", "--json", *extra]


@dataclass
class Probe(Result):
    pid: int = 0


def probe(domain: str, address: str | None = None) -> Probe:
    proc = subprocess.Popen(_argv(domain, address), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=120)
    return Probe(proc.returncode, out, err, proc.pid)


def probe_objects(pid: int) -> list[str]:
    """The probe namespace / veth / OVS port of the probe process ``pid`` that still exist."""
    ns = [n.split()[0] for n in sh("ip", "netns", "list").splitlines() if n.strip()]
    links = [entry["ifname"] for entry in json.loads(sh("ip", "-j", "link", "show"))]
    ports = [p for br in sh("ovs-vsctl", "list-br").split() for p in sh("ovs-vsctl", "list-ports", br).split()]
    return [x for x in (*ns, *links, *ports) if x in (f"vs-probe-{pid}", f"vs-pb{pid}")]


def hops(vif: dict[str, Any]) -> dict[str, bool | None]:
    return {h["hop"]: h["ok"] for h in vif["hops"]}


def _leases(lab: LabSpec) -> int:
    nets = {n["name"]: n for n in vifscope("networks", "--json").doc["networks"]}
    return int(nets[lab.network]["leases"] or 0)


def test_guest_on_a_dhcp_network_is_reachable_via_its_lease(lab: LabSpec) -> None:
    assert wait_for(lambda: _leases(lab) >= 1, 30), "db1 takes a DHCP lease at boot"
    res = probe(lab.name("db1"))
    assert res.rc == 0, res.out + res.err
    (vif,) = res.doc["vifs"]
    assert vif["bridge"] == lab.network_bridge
    assert vif["address_source"] == "lease"
    assert vif["address"].startswith(f"{lab.subnet(2)}.")
    assert hops(vif) == {"bridge": True, "probe-port": True, "address": True, "arp": True, "icmp": True}
    assert vif["reachable"] is True and vif["failed_hop"] is None
    assert vif["probe_address"].startswith(f"{lab.subnet(2)}.")
    assert vif["leftover"] == []
    assert probe_objects(res.pid) == []


def test_detached_tap_fails_at_the_arp_hop(lab: LabSpec, target: Target) -> None:
    tap, addr = target("web1"), f"{lab.subnet(1)}.11/24"
    sh("ip", "link", "set", tap, "nomaster")
    try:
        res = probe(lab.name("web1"), addr)
        assert res.rc == 1, res.out + res.err
        (vif,) = res.doc["vifs"]
        assert hops(vif) == {"bridge": True, "probe-port": True, "address": True, "arp": False, "icmp": None}
        assert vif["failed_hop"] == "arp"
        assert vif["binding"]["status"] == "detached"
        assert "detached" in vif["diagnosis"] and "--fix" in vif["diagnosis"]
    finally:
        sh("ip", "link", "set", tap, "master", lab.bridge)
    res = probe(lab.name("web1"), addr)
    assert res.rc == 0, res.out
    assert res.doc["vifs"][0]["reachable"] is True
    assert probe_objects(res.pid) == []


def test_guest_on_an_ovs_bridge_is_reachable(lab: LabSpec) -> None:
    res = probe(lab.name("ovs1"), f"{lab.subnet(3)}.11/24")
    assert res.rc == 0, res.out + res.err
    (vif,) = res.doc["vifs"]
    assert vif["attach"] == "ovs-bridge"
    assert all(hops(vif).values()), vif["hops"]
    assert probe_objects(res.pid) == []


def test_bridge_down_is_the_failing_hop(lab: LabSpec) -> None:
    sh("ip", "link", "set", lab.bridge, "down")
    try:
        res = probe(lab.name("web1"), f"{lab.subnet(1)}.11/24")
        assert res.rc == 1
        (vif,) = res.doc["vifs"]
        assert vif["failed_hop"] == "bridge"
        assert hops(vif)["probe-port"] is None  # nothing was plugged into a down bridge
    finally:
        sh("ip", "link", "set", lab.bridge, "up")


def test_macvtap_vif_is_not_probed(lab: LabSpec) -> None:
    res = probe(lab.name("mac1"))
    assert res.rc == 2
    assert "no running bridge or network vif" in res.err


def _as_a_terminal() -> None:
    """SIGINT as a user's Ctrl-C finds it. Run from a background job (`make test &`, a CI runner)
    this test inherits SIGINT ignored, Python then installs no KeyboardInterrupt handler, and
    the probe would rightly carry on: that is not the case under test."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_probe_and_wait_for_its_namespace(lab: LabSpec, tap: str) -> subprocess.Popen[str]:
    """A probe of web1 with its tap detached: it sits in the ARP hop for a few seconds."""
    sh("ip", "link", "set", tap, "nomaster")
    proc = subprocess.Popen(
        _argv(lab.name("web1"), f"{lab.subnet(1)}.11/24"), stdout=subprocess.PIPE, text=True, preexec_fn=_as_a_terminal
    )
    # A cheap check polled often: probe_objects() runs ip/ovs-vsctl, and on a loaded host one
    # round of it could outlast the hops this test means to interrupt.
    plugged = f"/sys/class/net/vs-pb{proc.pid}"
    deadline = time.monotonic() + 20
    while not os.path.exists(plugged) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert os.path.exists(plugged), "the probe never plugged in"
    time.sleep(0.3)  # into the ARP / DAD exchange
    return proc


def _interrupt(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    """Deliver ``sig`` while the probe is mid-hop, however loaded the host: it is stopped first,
    so it cannot finish its hops between our check and the signal; the signal is handled as it
    resumes. (Its hop's helper process keeps running meanwhile, as it would under any signal.)"""
    proc.send_signal(signal.SIGSTOP)
    assert proc.poll() is None, "the probe finished before it could be interrupted"
    proc.send_signal(sig)
    proc.send_signal(signal.SIGCONT)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupted_probe_removes_everything(lab: LabSpec, target: Target, sig: signal.Signals) -> None:
    tap = target("web1")
    proc = _start_probe_and_wait_for_its_namespace(lab, tap)
    try:
        _interrupt(proc, sig)
        assert proc.wait(30) == 128 + sig
        assert probe_objects(proc.pid) == []
    finally:
        proc.kill()
        proc.wait()
        sh("ip", "link", "set", tap, "master", lab.bridge)


def test_next_probe_sweeps_what_a_killed_probe_left(lab: LabSpec, target: Target) -> None:
    tap = target("web1")
    proc = _start_probe_and_wait_for_its_namespace(lab, tap)
    try:
        proc.kill()  # SIGKILL: no cleanup possible in that process
        proc.wait()
        left = probe_objects(proc.pid)
        assert f"vs-probe-{proc.pid}" in left
        sh("ip", "link", "set", tap, "master", lab.bridge)
        res = probe(lab.name("web1"), f"{lab.subnet(1)}.11/24")
        assert res.rc == 0, res.out
        assert any(f"vs-probe-{proc.pid}" in s for s in res.doc["swept"])
        assert probe_objects(proc.pid) == []
    finally:
        subprocess.run(["ip", "netns", "del", f"vs-probe-{proc.pid}"], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", f"vs-pb{proc.pid}"], capture_output=True, check=False)
        sh("ip", "link", "set", tap, "master", lab.bridge)


def test_objects_of_a_live_process_are_not_swept(lab: LabSpec) -> None:
    """Objects of a live process with a probe-like name are not ours to sweep."""
    name = f"vs-probe-{os.getpid()}"  # this test process is alive
    sh("ip", "netns", "add", name)
    try:
        res = probe(lab.name("web1"), f"{lab.subnet(1)}.11/24")
        assert res.rc == 0, res.out
        assert not any(name in s for s in res.doc["swept"])
        assert name in sh("ip", "netns", "list")
    finally:
        sh("ip", "netns", "del", name)
