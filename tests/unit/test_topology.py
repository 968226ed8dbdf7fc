"""The topology graph: layers, declared vs actual edges, networks folded with their bridges,
uplinks, statuses. Snapshots are built from real ``ip -j`` shaped dumps (tests/unit/ipjson)
and bound by the real ``bind``; the graph is what is under test."""

from __future__ import annotations

from itertools import count

import pytest

from tests.unit.ipjson import bridge, macvtap, phys, snapshot, tap
from vifscope.bind.join import bind
from vifscope.model import DeclaredVif, DomainState, HostSnapshot, LibvirtNetwork, OvsPort
from vifscope.report.topology import LAYER, EdgeKind, NodeKind, Topology, build_topology, topology_dict, vif_id

_uuid = count(1)


def vif(domain: str, type_: str, source: str, target: str | None, **kw: object) -> DeclaredVif:
    state = kw.pop("state", DomainState.RUNNING)
    return DeclaredVif(
        domain=domain,
        domain_uuid=f"00000000-0000-0000-0000-{next(_uuid):012d}",
        domain_state=state,  # type: ignore[arg-type]
        index=int(kw.pop("index", 0)),  # type: ignore[call-overload]
        type=type_,
        mac=str(kw.pop("mac", f"52:54:00:00:00:{next(_uuid) % 256:02x}")),
        source=source,
        target=target,
        **kw,  # type: ignore[arg-type]
    )


ISO = LibvirtNetwork("iso", "u-iso", True, True, "isolated", "virbr1")
NAT = LibvirtNetwork("default", "u-nat", True, True, "nat", "virbr0")


def host() -> HostSnapshot:
    """One of everything: bound, detached, misbound, network, OVS, macvtap, shut off, user."""
    vifs = [
        vif("web", "bridge", "br0", "vnet0"),
        vif("broken", "bridge", "br0", "vnet1"),
        vif("moved", "bridge", "br0", "vnet2"),
        vif("db", "network", "iso", "vnet3", network="iso"),
        vif("direct-to-netbr", "bridge", "virbr1", "vnet5"),
        vif("sw", "bridge", "ovs0", "vnet4", virtualport="openvswitch"),
        vif("mac", "direct", "eth2", "macvtap0", source_mode="bridge"),
        vif("off", "bridge", "br0", "vnet9", state=DomainState.SHUTOFF),
        vif("slirp", "user", "", None),
        vif("lost", "network", "gone", "vnet6", network="gone"),
    ]
    links = [
        bridge("br0"),
        bridge("br1"),
        bridge("virbr1"),
        bridge("virbr0"),
        phys("eth0") | {"master": "br0", "linkinfo": {"info_slave_kind": "bridge"}},
        phys("eth1"),
        phys("eth2"),
        tap("vnet0", master="br0"),
        tap("vnet1"),
        tap("vnet2", master="br1"),
        tap("vnet3", master="virbr1"),
        tap("vnet5", master="virbr1"),
        tap("vnet4"),
        tap("vnet6"),
        macvtap("macvtap0", "eth2", "bridge"),
    ]
    ports = [OvsPort("vnet4", "ovs0"), OvsPort("eth1", "ovs0"), OvsPort("ovs0", "ovs0", type="internal")]
    return snapshot(vifs, links, networks=[ISO, NAT], ovs_ports=ports, ovs_bridges=["ovs0"], ovs_available=True)


@pytest.fixture(scope="module")
def topo() -> Topology:
    snap = host()
    return build_topology(snap, bind(snap))


def edges(topo: Topology, target: str, kind: EdgeKind | None = None) -> list[tuple[str, str]]:
    return [(e.source, e.state) for e in topo.edges if e.target == target and (kind is None or e.kind is kind)]


def vid(topo: Topology, domain: str) -> str:
    return next(n.id for n in topo.nodes if n.kind is NodeKind.VIF and n.domain == domain)


def test_every_edge_goes_left_to_right(topo: Topology) -> None:
    layer = {n.id: LAYER[n.kind] for n in topo.nodes}
    assert topo.edges
    for e in topo.edges:
        assert layer[e.source] < layer[e.target], e


def test_bound_vif_hangs_off_its_bridge_and_domain(topo: Topology) -> None:
    v = vid(topo, "web")
    assert edges(topo, v, EdgeKind.DECLARED) == [("br:br0", "ok")]
    assert not edges(topo, v, EdgeKind.ACTUAL)
    node = topo.node(v)
    assert node is not None and node.status == "bound" and node.label == "vnet0"
    dom = [e for e in topo.edges if e.source == v and e.kind is EdgeKind.GUEST]
    assert [topo.node(e.target).label for e in dom] == ["web"]  # type: ignore[union-attr]


def test_detached_vif_has_a_broken_declared_edge_and_no_actual(topo: Topology) -> None:
    v = vid(topo, "broken")
    assert edges(topo, v, EdgeKind.DECLARED) == [("br:br0", "broken")]
    assert not edges(topo, v, EdgeKind.ACTUAL)
    assert topo.node(v).status == "detached"  # type: ignore[union-attr]


def test_misbound_vif_shows_where_it_really_is(topo: Topology) -> None:
    v = vid(topo, "moved")
    assert edges(topo, v, EdgeKind.DECLARED) == [("br:br0", "broken")]
    assert edges(topo, v, EdgeKind.ACTUAL) == [("br:br1", "ok")]


def test_network_and_its_bridge_are_one_node(topo: Topology) -> None:
    assert edges(topo, vid(topo, "db"), EdgeKind.DECLARED) == [("net:iso", "ok")]
    # type='bridge' onto the network's own bridge: still the network's node
    assert edges(topo, vid(topo, "direct-to-netbr"), EdgeKind.DECLARED) == [("net:iso", "ok")]
    assert topo.node("br:virbr1") is None


def test_nat_network_is_routed_through_the_host_isolated_is_not(topo: Topology) -> None:
    routed = {e.target for e in topo.edges if e.kind is EdgeKind.ROUTED}
    assert routed == {"net:default"}


def test_uplinks_linux_and_ovs_but_never_guest_taps(topo: Topology) -> None:
    uplinks = {n.name for n in topo.nodes if n.kind is NodeKind.UPLINK}
    assert uplinks == {"eth0", "eth1", "eth2"}
    assert ("link:eth0", "ok") in edges(topo, "br:br0", EdgeKind.PORT)
    assert ("link:eth1", "ok") in edges(topo, "ovs:ovs0", EdgeKind.PORT)
    assert edges(topo, "link:eth0", EdgeKind.UPLINK) == [("host", "ok")]


def test_ovs_and_macvtap_switches(topo: Topology) -> None:
    assert edges(topo, vid(topo, "sw"), EdgeKind.DECLARED) == [("ovs:ovs0", "ok")]
    assert edges(topo, vid(topo, "mac"), EdgeKind.DECLARED) == [("mvt:eth2", "ok")]
    assert edges(topo, "mvt:eth2", EdgeKind.PORT) == [("link:eth2", "ok")]


def test_shut_off_domain_is_drawn_inactive_by_mac(topo: Topology) -> None:
    v = vid(topo, "off")
    node = topo.node(v)
    assert node is not None and node.status == "inactive" and node.label.startswith("52:54:00")
    assert edges(topo, v, EdgeKind.DECLARED) == [("br:br0", "inactive")]
    dom = next(n for n in topo.nodes if n.kind is NodeKind.DOMAIN and n.label == "off")
    assert dom.status == "shutoff"


def test_undefined_network_is_a_missing_node(topo: Topology) -> None:
    net = topo.node("net:gone")
    assert net is not None and net.status == "missing"
    assert edges(topo, vid(topo, "lost"), EdgeKind.DECLARED) == [("net:gone", "broken")]


def test_unverifiable_vif_only_joins_its_domain(topo: Topology) -> None:
    v = vid(topo, "slirp")
    assert not edges(topo, v)
    assert [e.kind for e in topo.edges if e.source == v] == [EdgeKind.GUEST]


def test_bridge_status_follows_the_kernel() -> None:
    snap = snapshot([vif("web", "bridge", "br0", "vnet0")], [bridge("br0", up=False), tap("vnet0", master="br0")])
    topo = build_topology(snap, bind(snap))
    assert topo.node("br:br0").status == "down"  # type: ignore[union-attr]
    gone = snapshot([vif("web", "bridge", "br9", "vnet0")], [tap("vnet0")])
    assert build_topology(gone, bind(gone)).node("br:br9").status == "missing"  # type: ignore[union-attr]


def test_subset_leaves_out_unused_networks() -> None:
    snap = host()
    chosen = tuple(b for b in bind(snap) if b.vif.domain == "web")
    topo = build_topology(snap, chosen, all_networks=False)
    assert {n.kind for n in topo.nodes} == {
        NodeKind.HOST,
        NodeKind.UPLINK,
        NodeKind.BRIDGE,
        NodeKind.VIF,
        NodeKind.DOMAIN,
    }
    assert topo.node("net:default") is None


def test_json_names_every_node_and_edge_once(topo: Topology) -> None:
    snap = host()
    bindings = bind(snap)
    doc = topology_dict(snap, bindings, build_topology(snap, bindings))
    ids = [n["id"] for n in doc["nodes"]]
    assert len(ids) == len(set(ids)) == len(topo.nodes)
    assert set(ids) >= {e["source"] for e in doc["edges"]} | {e["target"] for e in doc["edges"]}
    assert doc["summary"]["detached"] == 2 and doc["host"] == "testhost"  # broken, and lost (no network)
    assert {vif_id(b) for b in bindings} <= set(ids)


def test_deterministic() -> None:
    a, b = host(), host()
    # fresh UUIDs differ between the two hosts; the structure must not
    ta, tb = build_topology(a, bind(a)), build_topology(b, bind(b))
    assert [(n.kind, n.label, n.status) for n in ta.nodes if n.kind is not NodeKind.VIF] == [
        (n.kind, n.label, n.status) for n in tb.nodes if n.kind is not NodeKind.VIF
    ]
