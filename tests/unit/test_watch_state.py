"""The watcher's state: partial re-binding and the transitions it reports (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.unit.ipjson import bridge, snapshot, tap
from vifscope.model import DeclaredVif, DomainState, HostSnapshot, LibvirtNetwork, OvsPort, VifStatus
from vifscope.sources.kernel.links import parse_links
from vifscope.watch.output import transition_doc, transition_text
from vifscope.watch.state import (
    Everything,
    OfDomain,
    OfNetwork,
    TouchesLinks,
    VifTable,
    on_ovs,
    with_domain,
    with_links,
    with_networks,
    with_ovs,
)

LATER = datetime(2026, 1, 2, 3, 5, 0, tzinfo=UTC)


def vif(domain: str, target: str, source: str = "br0", *, mac: str = "52:54:00:00:00:01", **kw: object) -> DeclaredVif:
    fields: dict[str, object] = {
        "domain": domain,
        "domain_uuid": f"uuid-{domain}",
        "domain_state": DomainState.RUNNING,
        "index": 0,
        "type": "bridge",
        "mac": mac,
        "source": source,
        "target": target,
    }
    fields.update(kw)
    return DeclaredVif(**fields)  # type: ignore[arg-type]


def two_bridges() -> HostSnapshot:
    return snapshot(
        [vif("web1", "vnet0"), vif("db1", "vnet1", "br1", mac="52:54:00:00:00:02")],
        [bridge("br0"), bridge("br1"), tap("vnet0", master="br0"), tap("vnet1", master="br1")],
    )


def relink(snap: HostSnapshot, *links: dict[str, object]) -> HostSnapshot:
    return with_links(snap, parse_links(list(links)), LATER)


def test_detached_tap_is_one_transition_with_the_issue_wording() -> None:
    table = VifTable(two_bridges())
    new = relink(table.snap, bridge("br0"), bridge("br1"), tap("vnet0"), tap("vnet1", master="br1"))
    [t] = table.update(new, TouchesLinks(frozenset({"vnet0"})), "netlink")
    assert (t.old and t.old.status, t.new and t.new.status) == (VifStatus.BOUND, VifStatus.DETACHED)
    line = transition_text(t)
    assert line.startswith("web1 52:54:00:00:00:01 vnet0 bound → detached (master br0 → none)")
    doc = transition_doc(t)
    assert (doc["from"], doc["to"], doc["master_from"], doc["master_to"]) == ("bound", "detached", "br0", None)
    assert doc["cause"] == "netlink"
    assert doc["vif"]["status"] == "detached"  # the status --json shape rides along


def test_only_affected_vifs_are_rebound() -> None:
    table = VifTable(two_bridges())
    untouched = table.bindings[("uuid-db1", "52:54:00:00:00:02")]
    # db1's tap changed too, but no event named it: it keeps its old binding object.
    new = relink(table.snap, bridge("br0"), bridge("br1"), tap("vnet0"), tap("vnet1"))
    changes = table.update(new, TouchesLinks(frozenset({"vnet0"})), "netlink")
    assert [t.vif.domain for t in changes] == ["web1"]
    assert table.rebound == 1
    assert table.bindings[("uuid-db1", "52:54:00:00:00:02")] is untouched


def test_event_on_a_bridge_rebinds_every_vif_declared_on_it() -> None:
    snap = snapshot(
        [
            vif("a", "vnet0"),
            vif("b", "vnet1", mac="52:54:00:00:00:02"),
            vif("c", "vnet2", "br1", mac="52:54:00:00:00:03"),
        ],
        [
            bridge("br0"),
            bridge("br1"),
            tap("vnet0", master="br0"),
            tap("vnet1", master="br0"),
            tap("vnet2", master="br1"),
        ],
    )
    table = VifTable(snap)
    gone = relink(snap, bridge("br1"), tap("vnet0"), tap("vnet1"), tap("vnet2", master="br1"))
    changes = table.update(gone, TouchesLinks(frozenset({"br0"})), "netlink")
    assert {t.vif.domain: t.new.status for t in changes if t.new} == {"a": VifStatus.DETACHED, "b": VifStatus.DETACHED}
    assert all("bridge_missing" in transition_doc(t)["problems"] for t in changes)


def test_counter_changes_are_not_transitions() -> None:
    table = VifTable(two_bridges())
    busy = tap("vnet0", master="br0")
    busy["stats64"] = {"rx": {"bytes": 999, "packets": 9}, "tx": {"bytes": 5, "packets": 1}}
    new = relink(table.snap, bridge("br0"), bridge("br1"), busy, tap("vnet1", master="br1"))
    assert table.update(new, Everything(), "resync") == []


def test_domain_gone_and_new_domain() -> None:
    table = VifTable(two_bridges())
    [gone] = table.update(
        with_domain(table.snap, "uuid-web1", ()), OfDomain("uuid-web1"), "libvirt:lifecycle:undefined"
    )
    assert gone.new is None and "bound → (gone)" in transition_text(gone)
    back = with_domain(table.snap, "uuid-web1", (vif("web1", "vnet0"),))
    [new] = table.update(back, OfDomain("uuid-web1"), "libvirt:lifecycle:defined")
    assert new.old is None and "(new) → bound" in transition_text(new)


def test_shutdown_domain_turns_inactive() -> None:
    table = VifTable(two_bridges())
    off = vif("web1", "vnet0", domain_state=DomainState.SHUTOFF)
    [t] = table.update(with_domain(table.snap, "uuid-web1", (off,)), OfDomain("uuid-web1"), "libvirt:lifecycle:stopped")
    assert "bound → inactive (domain running → shutoff)" in transition_text(t)


def test_network_update_rebinds_only_that_networks_vifs() -> None:
    net = LibvirtNetwork("iso", "u1", active=True, autostart=False, mode="isolated", bridge="isobr")
    on_net = vif("db1", "vnet1", type="network", source="iso", network="iso", mac="52:54:00:00:00:02")
    snap = snapshot(
        [vif("web1", "vnet0"), on_net],
        [bridge("br0"), bridge("isobr"), tap("vnet0", master="br0"), tap("vnet1", master="isobr")],
        networks=[net],
    )
    table = VifTable(snap)
    stopped = LibvirtNetwork("iso", "u1", active=False, autostart=False, mode="isolated", bridge="isobr")
    changes = table.update(with_networks(snap, (stopped,)), OfNetwork("iso"), "libvirt:network-stopped:iso")
    assert [(t.vif.domain, t.new and t.new.status) for t in changes] == [("db1", VifStatus.DOWN)]
    assert "network_inactive" in transition_doc(changes[0])["problems"]


def test_ovs_port_removed_and_readded() -> None:
    ovs_vif = vif("ovs1", "vnet5", "ovsbr", virtualport="openvswitch")
    port = OvsPort("vnet5", "ovsbr", iface_id="i1", attached_mac="52:54:00:00:00:01")
    snap = snapshot([ovs_vif], [tap("vnet5")], ovs_ports=[port], ovs_bridges=["ovsbr"], ovs_available=True)
    table = VifTable(snap)
    removed = with_ovs(snap, (), ("ovsbr",), True)
    [t] = table.update(removed, on_ovs(removed), "ovsdb")
    assert "bound → detached (master ovs:ovsbr → none)" in transition_text(t)
    down = with_ovs(removed, (), (), False)
    [t] = table.update(down, on_ovs(down), "ovsdb-lost")
    assert (t.new and t.new.status) == VifStatus.UNVERIFIED


def test_broken_lists_heal_candidates_only() -> None:
    snap = snapshot(
        [vif("web1", "vnet0"), vif("off", "vnet9", domain_state=DomainState.SHUTOFF, mac="52:54:00:00:00:09")],
        [bridge("br0"), tap("vnet0")],
    )
    assert [b.vif.domain for b in VifTable(snap).broken()] == ["web1"]
