"""attach / detach planning: the ``<interface>`` XML (hostile names stay attribute values), the
scope rules, and every refusal, on snapshots built from ``ip -j`` shaped links (no libvirt)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest

from tests.unit.hostile import DOMAINS, IFACES, NETWORKS
from tests.unit.ipjson import bridge, phys, snapshot
from vifscope.actions.vifapply import still_declared
from vifscope.actions.vifplan import (
    NicKind,
    NicRequest,
    Refused,
    Scope,
    check_attach,
    detach_xml,
    find_interface,
    interface_xml,
    parse_direct,
    resolve_scope,
)
from vifscope.checks.macs import StoreView
from vifscope.model import DeclaredVif, DomainState, HostSnapshot, LibvirtNetwork
from vifscope.model.devices import DomainView
from vifscope.model.mac import MacRecord, MacState, parse_mac

MAC = "52:54:00:a1:00:01"
LIVE = Scope(live=True, config=False)


def vif(domain: str, mac: str, index: int = 0, state: DomainState = DomainState.RUNNING) -> DeclaredVif:
    return DeclaredVif(domain, f"uuid-{domain}", state, index, "network", mac, "virtio", "iso", network="iso")


def dom(name: str = "web1", **kw: object) -> DomainView:
    base = DomainView(name, f"uuid-{name}", DomainState.RUNNING, True, True, "x86_64", (), ())
    return replace(base, **kw)  # type: ignore[arg-type]


def host(
    *extra: DeclaredVif, ovs: tuple[str, ...] = (), net_active: bool = True, autostart: bool = False
) -> HostSnapshot:
    net = LibvirtNetwork("iso", "uuid-iso", net_active, autostart, "isolated", "isobr")
    links = [bridge("br0"), bridge("brdown", up=False), bridge("isobr"), phys("eth9")]
    links.append({**phys("hostnic"), "address": "52:54:00:a1:00:99"})
    return snapshot(list(extra), links, networks=[net], ovs_bridges=list(ovs), ovs_available=True)


def refused(req: NicRequest, d: DomainView | None = None, snap: HostSnapshot | None = None, **kw: object) -> str:
    with pytest.raises(Refused) as err:
        check_attach(req, d or dom(), LIVE, snap or host(), kw.get("store"), req.mac)  # type: ignore[arg-type]
    assert str(err.value) and err.value.hint
    return err.value.check


@pytest.mark.parametrize("name", [*IFACES, *NETWORKS, *DOMAINS])
@pytest.mark.parametrize("kind", list(NicKind))
def test_interface_xml_keeps_every_name_an_attribute_value(kind: NicKind, name: str) -> None:
    req = NicRequest(kind, name, "bridge" if kind is NicKind.DIRECT else None, "virtio")
    iface = ET.fromstring(interface_xml(req, MAC))
    assert iface.tag == "interface" and iface.get("type") == ("bridge" if kind is NicKind.OVS else kind.value)
    assert iface.find("mac").get("address") == MAC  # type: ignore[union-attr]
    attr = {NicKind.BRIDGE: "bridge", NicKind.OVS: "bridge", NicKind.NETWORK: "network", NicKind.DIRECT: "dev"}[kind]
    assert iface.find("source").get(attr) == name  # type: ignore[union-attr]
    assert (iface.find("virtualport") is not None) == (kind is NicKind.OVS)
    assert iface.find("model").get("type") == "virtio"  # type: ignore[union-attr]
    assert len(list(iface)) == (4 if kind is NicKind.OVS else 3)


@pytest.mark.parametrize("name", NETWORKS)
def test_detach_xml_names_type_mac_and_source(name: str) -> None:
    iface = ET.fromstring(detach_xml(replace(vif("d", MAC), source=name, network=name)))
    assert (iface.get("type"), iface.find("mac").get("address")) == ("network", MAC)  # type: ignore[union-attr]
    assert iface.find("source").get("network") == name  # type: ignore[union-attr]


def test_scope_follows_virsh() -> None:
    assert resolve_scope(dom(), False, False) == Scope(True, False)
    off = dom(state=DomainState.SHUTOFF)
    assert resolve_scope(off, False, False) == Scope(False, True)
    assert resolve_scope(dom(), True, True) == Scope(True, True)
    with pytest.raises(Refused, match="not running"):
        resolve_scope(off, True, False)
    with pytest.raises(Refused, match="transient"):
        resolve_scope(dom(persistent=False), False, True)


def test_direct_mode_defaults_to_vepa_and_is_checked() -> None:
    assert parse_direct("eth9") == ("eth9", "vepa")
    assert parse_direct("eth9:passthrough") == ("eth9", "passthrough")
    for bad in ("eth9:bridged", ":bridge", ""):
        with pytest.raises(Refused):
            parse_direct(bad)


def test_what_is_missing_or_inactive_is_refused() -> None:
    assert refused(NicRequest(NicKind.BRIDGE, "nobr", mac=MAC)) == "xml.bridge_missing"
    assert refused(NicRequest(NicKind.BRIDGE, "eth9", mac=MAC)) == "xml.not_a_bridge"
    assert refused(NicRequest(NicKind.NETWORK, "nonet", mac=MAC)) == "xml.network_missing"
    assert refused(NicRequest(NicKind.NETWORK, "iso", mac=MAC), snap=host(net_active=False)) == "xml.network_inactive"
    # autostarted but not running is only a warning for check-xml; a hot-plug still cannot use it
    inactive = host(net_active=False, autostart=True)
    assert refused(NicRequest(NicKind.NETWORK, "iso", mac=MAC), snap=inactive) == "xml.network_inactive"
    assert refused(NicRequest(NicKind.OVS, "br0", mac=MAC)) == "xml.bridge_kind"
    assert refused(NicRequest(NicKind.BRIDGE, "ovsbr", mac=MAC), snap=host(ovs=("ovsbr",))) == "xml.bridge_kind"
    assert refused(NicRequest(NicKind.DIRECT, "nodev", "bridge", mac=MAC)) == "xml.direct_dev_missing"


def test_what_exists_passes_and_a_down_bridge_is_left_to_verify() -> None:
    for req in (
        NicRequest(NicKind.BRIDGE, "br0", mac=MAC),
        NicRequest(NicKind.BRIDGE, "brdown", mac=MAC),  # plugged, then verify sees "down" and rolls back
        NicRequest(NicKind.NETWORK, "iso", mac=MAC),
        NicRequest(NicKind.OVS, "ovsbr", mac=MAC),
        NicRequest(NicKind.DIRECT, "eth9", "bridge", mac=MAC),
        NicRequest(NicKind.NETWORK, "iso"),  # --mac auto: the MAC is the pool's, checked there
    ):
        check_attach(req, dom(), LIVE, host(ovs=("ovsbr",)), None, req.mac)


def test_macs_in_use_anywhere_are_refused() -> None:
    req = NicRequest(NicKind.NETWORK, "iso", mac=MAC)
    assert refused(replace(req, mac="53:54:00:00:00:01")) == "xml.mac_invalid"
    assert refused(replace(req, mac="not-a-mac")) == "xml.mac_invalid"
    other = vif("db1", MAC, state=DomainState.SHUTOFF)  # a defined, shut-off domain counts too
    assert refused(req, snap=host(other)) == "xml.mac_in_use"
    assert refused(replace(req, mac="52:54:00:a1:00:99")) == "xml.mac_host_conflict"
    assert refused(req, d=dom(config=(vif("web1", MAC, state=DomainState.SHUTOFF),))) == "xml.mac_in_use"
    assert refused(req, d=dom(live=(vif("web1", MAC),))) == "xml.mac_in_use"


def store(rec: MacRecord, now: float = 1000.0) -> StoreView:
    return StoreView((rec,), (), "testhost", now)


def test_store_records_refuse_unless_free_or_reserved_for_this_domain() -> None:
    req = NicRequest(NicKind.NETWORK, "iso", mac=MAC)
    m = parse_mac(MAC)
    taken = MacRecord(m, MacState.ALLOCATED, "p", "db1", "h2", 0.0)
    assert refused(req, store=store(taken)) == "xml.mac_store_taken"
    held = MacRecord(m, MacState.QUARANTINED, "p", "db1", "h2", 900.0, reusable_at=2000.0)
    assert refused(req, store=store(held)) == "xml.mac_store_taken"
    expired = replace(held, reusable_at=999.0)
    check_attach(req, dom(), LIVE, host(), store(expired), MAC)
    mine = replace(taken, domain="web1")  # 'mac allocate --domain web1', then attach --mac
    check_attach(req, dom(), LIVE, host(), store(mine), MAC)


def test_live_hotplug_needs_acpi_on_x86_only() -> None:
    req = NicRequest(NicKind.NETWORK, "iso", mac=MAC)
    assert refused(req, d=dom(acpi=False)) == "attach.no_acpi"
    assert refused(req, d=dom(acpi=False, arch=None)) == "attach.no_acpi"
    check_attach(req, dom(acpi=False), Scope(False, True), host(), None, MAC)  # --config: no hot-plug
    check_attach(req, dom(acpi=False, arch="aarch64"), LIVE, host(), None, MAC)  # native PCIe hot-plug


def test_detach_finds_the_interface_in_the_definitions_it_changes() -> None:
    live, cfg = vif("web1", MAC, 1), vif("web1", MAC, 1, DomainState.SHUTOFF)
    d = dom(live=(vif("web1", "52:54:00:00:00:07"), live), config=(cfg,))
    assert find_interface(d, MAC.upper(), LIVE) == live
    assert find_interface(d, MAC, Scope(False, True)) == cfg
    with pytest.raises(Refused, match="no interface"):
        find_interface(d, "52:54:00:00:00:08", LIVE)
    with pytest.raises(Refused, match="several"):
        find_interface(dom(live=(live, replace(live, index=2))), MAC, LIVE)
    # a live-only detach of a NIC the persistent definition also has leaves its MAC in use
    assert still_declared(d, MAC, LIVE)
    assert not still_declared(d, MAC, Scope(True, True))
    assert not still_declared(dom(live=(live,)), MAC, LIVE)
