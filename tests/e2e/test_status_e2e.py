"""vifscope status on real libvirtd + real TCG guests: each fault is made for real, then checked.

Each test restores what it broke in ``finally`` so the order does not matter.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.conftest import ping, sh, vif_of, vifscope, wait_for
from vifscope.lab.lab import break_guest
from vifscope.lab.topology import LabSpec

pytestmark = pytest.mark.e2e

Target = Callable[..., str]


def status(lab: LabSpec, *extra: str) -> dict:  # type: ignore[type-arg]
    res = vifscope("status", "--json", *extra)
    assert res.rc in (0, 1), res.err
    return res.doc


def test_lab_baseline_verdicts(lab: LabSpec) -> None:
    # Re-apply the lab's deliberate fault: a libvirtd restart (another test) re-plugs
    # bridge taps when it reconnects to running domains (libvirt >= 6.x does this).
    break_guest(lab.guest("broken"))
    res = vifscope("status", "--json")
    doc = res.doc
    assert res.rc == 1, "the lab's deliberately broken guest must make status exit 1"
    web = vif_of(doc, lab.name("web1"))
    assert (web["status"], web["problems"]) == ("bound", [])
    assert web["observed"]["master"] == lab.bridge
    assert web["observed"]["carrier"] is True
    assert lab.uplink in web["observed"]["uplinks"]
    assert vif_of(doc, lab.name("broken"))["status"] == "detached"
    off = vif_of(doc, lab.name("off"))
    assert (off["status"], off["domain_state"]) == ("inactive", "shutoff")
    multi = [v for v in doc["vifs"] if v["domain"] == lab.name("multi")]
    assert [v["status"] for v in multi] == ["bound", "bound"]
    assert doc["uri"] == "qemu:///system"
    assert doc["source_errors"] == []


def test_bound_guest_answers_and_detached_one_does_not(lab: LabSpec) -> None:
    """The verdict matches reality: a bound guest pings, the detached one does not."""
    assert wait_for(lambda: ping(lab.netns, f"{lab.subnet(1)}.11"), 20)
    assert not ping(lab.netns, f"{lab.subnet(1)}.13")


def test_detached_tap(lab: LabSpec, target: Target) -> None:
    tap = target("web1")
    sh("ip", "link", "set", tap, "nomaster")
    try:
        web = vif_of(status(lab), lab.name("web1"))
        assert web["status"] == "detached"
        assert "detached" in web["problems"]
        assert web["observed"]["master"] is None
        assert not ping(lab.netns, f"{lab.subnet(1)}.11")
    finally:
        sh("ip", "link", "set", tap, "master", lab.bridge)
    assert vif_of(status(lab), lab.name("web1"))["status"] == "bound"


def test_tap_on_other_bridge_is_misbound(lab: LabSpec, target: Target) -> None:
    tap = target("web1")
    sh("ip", "link", "set", tap, "master", lab.spare_bridge)
    try:
        web = vif_of(status(lab), lab.name("web1"))
        assert web["status"] == "misbound"
        assert web["observed"]["master"] == lab.spare_bridge
        assert lab.spare_bridge in web["detail"] and lab.bridge in web["detail"]
    finally:
        sh("ip", "link", "set", tap, "master", lab.bridge)


def test_tap_admin_down(lab: LabSpec, target: Target) -> None:
    tap = target("web1")
    sh("ip", "link", "set", tap, "down")
    try:
        web = vif_of(status(lab), lab.name("web1"))
        assert web["status"] == "down"
        assert "tap_down" in web["problems"]
        assert web["observed"]["admin_up"] is False
    finally:
        sh("ip", "link", "set", tap, "up")


def test_bridge_admin_down(lab: LabSpec) -> None:
    sh("ip", "link", "set", lab.bridge, "down")
    try:
        doc = status(lab)
        for short in ("web1", "multi"):
            vif = vif_of(doc, lab.name(short))
            assert vif["status"] == "down", vif
            assert "bridge_down" in vif["problems"]
    finally:
        sh("ip", "link", "set", lab.bridge, "up")


def test_libvirt_link_state_down(lab: LabSpec) -> None:
    dom = lab.name("web1")
    mac = lab.guest("web1").nics[0].mac or ""
    sh("virsh", "-c", "qemu:///system", "domif-setlink", dom, mac, "down")
    try:
        web = vif_of(status(lab), dom)
        assert web["link_state"] == "down"
        assert web["status"] == "down"
        assert "link_state_down" in web["problems"]
    finally:
        sh("virsh", "-c", "qemu:///system", "domif-setlink", dom, mac, "up")
    assert vif_of(status(lab), dom)["link_state"] == "up"


def test_network_interface_bound_via_its_bridge(lab: LabSpec) -> None:
    doc = status(lab)
    db = vif_of(doc, lab.name("db1"))
    assert (db["type"], db["source"], db["network"]) == ("network", lab.network, lab.network)
    assert db["bridge"] == lab.network_bridge
    assert db["status"] == "bound"
    assert db["observed"]["master"] == lab.network_bridge
    assert vif_of(doc, lab.name("multi"), 1)["bridge"] == lab.network_bridge


def test_network_bridge_recreated_leaves_tap_detached(lab: LabSpec, target: Target) -> None:
    """net-destroy + net-start: libvirt recreates the bridge but does not re-plug running taps."""
    virsh = ("virsh", "-c", "qemu:///system")
    sh(*virsh, "net-destroy", lab.network)
    try:
        db = vif_of(status(lab), lab.name("db1"))
        assert db["status"] == "detached"
        assert {"network_inactive", "bridge_missing", "detached"} <= set(db["problems"])
        sh(*virsh, "net-start", lab.network)
        db = vif_of(status(lab), lab.name("db1"))
        assert db["status"] == "detached"
    finally:
        sh(*virsh, "net-start", lab.network, check=False)
        for short, idx in (("db1", 0), ("multi", 1)):
            sh("ip", "link", "set", target(short, idx), "master", lab.network_bridge, "up")
    assert vif_of(status(lab), lab.name("db1"))["status"] == "bound"


def test_ovs_port_bound_then_removed(lab: LabSpec, target: Target) -> None:
    tap = target("ovs1")
    ovs = vif_of(status(lab), lab.name("ovs1"))
    assert ovs["status"] == "bound", ovs
    assert ovs["observed"]["ovs_bridge"] == lab.ovs_bridge
    assert ovs["observed"]["ovs_attached_mac"] == ovs["mac"]
    assert ovs["observed"]["ovs_iface_id"]
    iface_id, mac = ovs["observed"]["ovs_iface_id"], ovs["mac"]
    sh("ovs-vsctl", "del-port", lab.ovs_bridge, tap)
    try:
        gone = vif_of(status(lab), lab.name("ovs1"))
        assert gone["status"] == "detached"
        assert gone["observed"]["ovs_bridge"] is None
    finally:
        sh(
            "ovs-vsctl",
            "--may-exist",
            "add-port",
            lab.ovs_bridge,
            tap,
            "--",
            "set",
            "Interface",
            tap,
            f"external-ids:iface-id={iface_id}",
            f"external-ids:attached-mac={mac}",
            "external-ids:iface-status=active",
        )
    assert vif_of(status(lab), lab.name("ovs1"))["status"] == "bound"


def test_ovs_attached_mac_mismatch(lab: LabSpec, target: Target) -> None:
    tap = target("ovs1")
    good = vif_of(status(lab), lab.name("ovs1"))["mac"]
    sh("ovs-vsctl", "set", "Interface", tap, "external-ids:attached-mac=52:54:00:ff:ff:ff")
    try:
        ovs = vif_of(status(lab), lab.name("ovs1"))
        assert ovs["status"] == "misbound"
        assert "ovs_attached_mac_mismatch" in ovs["problems"]
    finally:
        sh("ovs-vsctl", "set", "Interface", tap, f"external-ids:attached-mac={good}")


def test_macvtap_bound_and_lower_down(lab: LabSpec) -> None:
    mac = vif_of(status(lab), lab.name("mac1"))
    assert mac["status"] == "bound", mac
    assert (mac["observed"]["kind"], mac["observed"]["lower"]) == ("macvtap", lab.macvtap_lower)
    assert mac["mode"] == "bridge"
    sh("ip", "link", "set", lab.macvtap_lower, "down")
    try:
        mac = vif_of(status(lab), lab.name("mac1"))
        assert mac["status"] == "down"
        assert "lower_down" in mac["problems"]
    finally:
        sh("ip", "link", "set", lab.macvtap_lower, "up")


def test_filters_domain_and_problems(lab: LabSpec) -> None:
    doc = status(lab, "--domain", lab.name("web1"), "--domain", lab.name("off"))
    assert {v["domain"] for v in doc["vifs"]} == {lab.name("web1"), lab.name("off")}
    doc = status(lab, "--problems")
    assert lab.name("broken") in {v["domain"] for v in doc["vifs"]}
    assert all(v["status"] not in ("bound", "inactive") for v in doc["vifs"])


def test_table_output(lab: LabSpec) -> None:
    res = vifscope("status", "--domain", lab.name("web1"), "--domain", lab.name("broken"))
    assert res.rc == 1
    assert "detached" in res.out and "bound" in res.out
    assert "2 vifs: 1 bound, 1 detached" in res.out


def test_networks(lab: LabSpec) -> None:
    res = vifscope("networks", "--json")
    nets = {n["name"]: n for n in res.doc["networks"]}
    iso = nets[lab.network]
    assert (iso["mode"], iso["bridge"], iso["active"]) == ("isolated", lab.network_bridge, True)
    assert (iso["bridge_exists"], iso["bridge_up"]) == (True, True)
    assert iso["dhcp_ranges"] == [{"start": f"{lab.subnet(2)}.100", "end": f"{lab.subnet(2)}.200"}]
    # db1 asks for DHCP at boot; its lease shows up within a few seconds.
    assert wait_for(lambda: vifscope("networks", "--json").doc["networks"] and _leases(lab) >= 1, 30)


def _leases(lab: LabSpec) -> int:
    nets = {n["name"]: n for n in vifscope("networks", "--json").doc["networks"]}
    return int(nets[lab.network]["leases"] or 0)
