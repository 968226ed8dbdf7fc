"""``vifscope attach`` / ``detach`` on real TCG guests and a real libvirtd.

- A NIC hot-plugged with ``--mac auto`` onto the lab's isolated network: verified ``bound``,
  the guest asks for DHCP on it (the lab image runs udhcpc on NICs that appear after boot),
  dnsmasq leases it an address, and that address answers ping from the network's bridge.
  Detach waits for libvirt's DEVICE_REMOVED; the MAC goes back to the pool, quarantined.
- Rollback: a hot-plug onto a Linux bridge that exists but is admin down. libvirt plugs the
  tap (it does not look at the bridge's state), the fresh snapshot's verdict is ``down``
  (bridge_down), so attach detaches it again and releases the MAC. Deterministic: the bridge
  is down before the attach starts, whatever the timing.
- ``--config`` on a shut-off guest: the persistent definition changes, no event to wait for.

Every test uses its own store and audit log (tmp_path), never the host's.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Result, sh, vifscope, wait_for
from vifscope.actions import read_records
from vifscope.lab.topology import LabSpec

pytestmark = pytest.mark.e2e

VIRSH = ("virsh", "-c", "qemu:///system")


@pytest.fixture
def store(tmp_path: Path, lab: LabSpec) -> list[str]:
    """--db and --audit-log options for one test, with one pool in a range no lab MAC is in."""
    octet = int(lab.net.split(".")[1]) & 0xFF
    db = f"sqlite:///{tmp_path / 'store.db'}"
    res = vifscope(
        "mac", "--db", db, "pool", "add", "e2e", "--range", f"52:54:a1:{octet:02x}:00:00-52:54:a1:{octet:02x}:00:ff"
    )
    assert res.rc == 0, res.err
    return ["--db", db, "--audit-log", str(tmp_path / "audit.jsonl")]


def macs_of(domain: str, *extra: str) -> list[str]:
    out = sh(*VIRSH, "domiflist", domain, *extra)
    return [line.split()[-1].lower() for line in out.splitlines()[2:] if line.strip()]


def lease_of(network: str, mac: str) -> str | None:
    for line in sh(*VIRSH, "net-dhcp-leases", network, "--mac", mac).splitlines():
        words = line.split()
        if mac in (w.lower() for w in words):
            return next(w.split("/")[0] for w in words if "/" in w and w[0].isdigit() and "." in w)
    return None


def answers_ping(addr: str, bridge: str) -> bool:
    proc = subprocess.run(["ping", "-c", "1", "-W", "1", "-I", bridge, addr], capture_output=True, check=False)
    return proc.returncode == 0


def store_record(opts: list[str], mac: str) -> dict[str, Any]:
    res = vifscope("mac", "list", "--json", *opts[:2])
    assert res.rc == 0, res.err
    return next(r for r in res.doc["macs"] if r["mac"] == mac)


def audit_steps(opts: list[str], run: str) -> list[tuple[str, str, str]]:
    return [(r.phase, r.action, r.result) for r in read_records(Path(opts[3])) if r.run == run]


def cleanup(domain: str, mac: str, itype: str, *flags: str) -> None:
    """Leave the guest as the lab made it even when an assertion failed half-way."""
    if mac in macs_of(domain, *(("--inactive",) if "--config" in flags else ())):
        sh(*VIRSH, "detach-interface", domain, "--mac", mac, "--type", itype, *flags, check=False)


def attach(*args: str) -> Result:
    res = vifscope("attach", *args, "--json")
    assert res.out, res.err
    return res


def test_attach_auto_gets_a_lease_answers_ping_and_detach_releases(lab: LabSpec, store: list[str]) -> None:
    web1 = lab.name("web1")
    res = attach(web1, "--network", lab.network, *store)
    doc = res.doc
    mac = doc["mac"]
    try:
        assert res.rc == 0, doc
        assert (doc["result"], doc["pool"], doc["scope"]) == ("attached", "e2e", ["live"])
        assert (doc["vif"]["status"], doc["vif"]["bridge"], doc["vif"]["mac"]) == ("bound", lab.network_bridge, mac)
        assert mac in macs_of(web1)
        assert store_record(store, mac)["state"] == "allocated"
        status = vifscope("status", "-d", web1, "--json").doc
        assert [v["status"] for v in status["vifs"] if v["mac"] == mac] == ["bound"]
        # The guest's init brings the new NIC up and runs udhcpc on it (every 2 s; TCG is slow).
        assert wait_for(lambda: lease_of(lab.network, mac) is not None, 120), "no DHCP lease for the new NIC"
        addr = lease_of(lab.network, mac)
        assert addr is not None and addr.startswith(lab.subnet(2) + ".")
        assert wait_for(lambda: answers_ping(addr, lab.network_bridge), 30), f"{addr} does not answer ping"
        attach_steps = audit_steps(store, doc["run"])
        assert attach_steps == [
            ("apply", "mac-allocate", "ok"),
            ("apply", "vif-attach", "ok"),
            ("verify", "vif-attach", "verified"),
        ]

        gone = vifscope("detach", web1, "--mac", mac, *store, "--json")
        assert gone.rc == 0, gone.out + gone.err
        assert (gone.doc["result"], gone.doc["released"], gone.doc["removal"]["status"]) == (
            "detached",
            True,
            "removed",
        )
        assert mac not in macs_of(web1)
        assert not answers_ping(addr, lab.network_bridge)
        rec = store_record(store, mac)
        assert rec["state"] == "quarantined" and rec["reusable_at"]
        assert audit_steps(store, gone.doc["run"]) == [
            ("apply", "vif-detach", "ok"),
            ("verify", "vif-detach", "verified"),
            ("apply", "mac-release", "ok"),
        ]
    finally:
        cleanup(web1, mac, "network", "--live")


def test_verify_failure_detaches_again_and_releases_the_mac(lab: LabSpec, store: list[str]) -> None:
    web1, down = lab.name("web1"), lab.name("brdn")
    sh("ip", "link", "add", "name", down, "type", "bridge")  # created admin down, and left so
    mac = ""
    try:
        res = attach(web1, "--bridge", down, "--settle", "1", *store)
        doc = res.doc
        mac = doc["mac"]
        assert res.rc == 1, doc
        assert (doc["result"], doc["released"]) == ("rolled-back", True)
        assert doc["vif"]["status"] == "down" and doc["vif"]["problems"] == ["bridge_down"]
        assert "bridge_down" in doc["error"]
        assert mac not in macs_of(web1)  # the hot-plugged NIC is gone again
        assert sh("ip", "-o", "link", "show", "master", down).strip() == ""
        assert store_record(store, mac)["state"] == "quarantined"
        assert audit_steps(store, doc["run"]) == [
            ("apply", "mac-allocate", "ok"),
            ("apply", "vif-attach", "ok"),
            ("verify", "vif-attach", "not-verified"),
            ("rollback", "vif-detach", "rolled-back"),
            ("rollback", "mac-release", "rolled-back"),
        ]
    finally:
        if mac:
            cleanup(web1, mac, "bridge", "--live")
        sh("ip", "link", "del", "dev", down, check=False)


def test_config_attach_to_a_shut_off_guest_and_refusals_on_real_guests(lab: LabSpec, store: list[str]) -> None:
    off, db1 = lab.name("off"), lab.name("db1")
    assert attach(off, "--live", "--network", lab.network, *store).rc == 2  # not running
    taken = attach(db1, "--network", lab.network, "--mac", lab.mac(1, 0), *store)  # web1's MAC
    assert (taken.rc, taken.doc["check"]) == (2, "xml.mac_in_use")
    missing = attach(db1, "--bridge", lab.name("nobr"), *store)
    assert (missing.rc, missing.doc["check"]) == (2, "xml.bridge_missing")
    assert not Path(store[3]).exists()  # refusals write no audit line

    res = attach(off, "--network", lab.network, *store)
    mac = res.doc["mac"]
    try:
        assert res.rc == 0, res.doc
        assert (res.doc["scope"], res.doc["vif"]["status"]) == (["config"], "inactive")
        assert mac in macs_of(off, "--inactive")
        gone = vifscope("detach", off, "--mac", mac, *store, "--json")
        assert gone.rc == 0, gone.out + gone.err
        assert (gone.doc["removal"]["status"], gone.doc["released"]) == ("config-only", True)
        assert mac not in macs_of(off, "--inactive")
    finally:
        cleanup(off, mac, "network", "--config")


@pytest.mark.parametrize("kind", ["bridge", "ovs", "direct"])
def test_each_plug_kind_is_verified_bound_then_detached(lab: LabSpec, store: list[str], kind: str) -> None:
    """The XML attach builds for a Linux bridge, an OVS bridge (OVSDB must hold the port) and a
    macvtap is what libvirt plugs and vifscope's verdict calls bound."""
    db1 = lab.name("db1")
    where = {"bridge": lab.bridge, "ovs": lab.ovs_bridge, "direct": f"{lab.macvtap_lower}:bridge"}[kind]
    res = attach(db1, f"--{kind}", where, *store)
    mac = res.doc["mac"]
    try:
        assert res.rc == 0, res.doc
        vif = res.doc["vif"]
        expected = {"bridge": "linux-bridge", "ovs": "ovs-bridge", "direct": "macvtap"}[kind]
        assert (vif["status"], vif["expected_attach"]) == ("bound", expected)
        gone = vifscope("detach", db1, "--mac", mac, *store, "--json")
        assert (gone.rc, gone.doc["released"]) == (0, True), gone.out + gone.err
        assert mac not in macs_of(db1)
    finally:
        cleanup(db1, mac, "direct" if kind == "direct" else "bridge", "--live")


def test_detach_waits_for_the_guest_and_keeps_the_mac_when_it_does_not_let_go(lab: LabSpec, store: list[str]) -> None:
    """A paused guest cannot answer the ACPI eject: libvirt returns after its own ~5 s, no
    DEVICE_REMOVED comes within --timeout, so detach says so (exit 1) and keeps the MAC. Once
    the guest runs again it lets go, and libvirt removes the device."""
    db1 = lab.name("db1")
    res = attach(db1, "--network", lab.network, *store)
    mac = res.doc["mac"]
    try:
        assert res.rc == 0, res.doc
        sh(*VIRSH, "suspend", db1)
        try:
            slow = vifscope("detach", db1, "--mac", mac, "--timeout", "1", *store, "--json")
        finally:
            sh(*VIRSH, "resume", db1)
        assert slow.rc == 1, slow.out + slow.err
        assert (slow.doc["result"], slow.doc["removal"]["status"], slow.doc["released"]) == (
            "not-removed", "timeout", False,
        )  # fmt: skip
        assert store_record(store, mac)["state"] == "allocated"
        assert audit_steps(store, slow.doc["run"]) == [
            ("apply", "vif-detach", "ok"),
            ("verify", "vif-detach", "not-verified"),
        ]
        assert wait_for(lambda: mac not in macs_of(db1), 60), "the resumed guest never released the NIC"
    finally:
        cleanup(db1, mac, "network", "--live")


def test_a_rollback_the_guest_does_not_let_go_of_keeps_the_mac_and_says_so(lab: LabSpec, store: list[str]) -> None:
    """Verify fails (admin-down bridge) on a paused guest: the rollback's detach gets no
    DEVICE_REMOVED within --timeout, so the MAC is not released (it is still on a NIC) and the
    audit log says rollback-failed; exit 1. Resumed, the guest lets the NIC go."""
    db1, down = lab.name("db1"), lab.name("brdp")
    sh("ip", "link", "add", "name", down, "type", "bridge")
    mac = ""
    try:
        sh(*VIRSH, "suspend", db1)
        try:
            res = attach(db1, "--bridge", down, "--settle", "0", "--timeout", "1", *store)
        finally:
            sh(*VIRSH, "resume", db1)
        mac = res.doc["mac"]
        assert res.rc == 1, res.doc
        assert (res.doc["result"], res.doc["released"]) == ("rollback-failed", False)
        assert "bridge_down" in res.doc["error"] and "timeout" in res.doc["error"]
        assert store_record(store, mac)["state"] == "allocated"
        assert audit_steps(store, res.doc["run"]) == [
            ("apply", "mac-allocate", "ok"),
            ("apply", "vif-attach", "ok"),
            ("verify", "vif-attach", "not-verified"),
            ("rollback", "vif-detach", "rollback-failed"),
        ]
        assert wait_for(lambda: mac not in macs_of(db1), 60), "the resumed guest never released the NIC"
    finally:
        if mac:
            cleanup(db1, mac, "bridge", "--live")
        sh("ip", "link", "del", "dev", down, check=False)
