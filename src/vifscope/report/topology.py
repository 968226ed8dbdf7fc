"""The host's virtual network as a layered graph, every vif coloured by its verdict. Pure.

Layers, left to right: the host → its uplinks (bridge ports that are not guest ports, see
``HostSnapshot.is_guest_port``: NICs, veths, OVS system ports; macvtap lower devices) →
switches (Linux bridges, OVS bridges, libvirt networks, the macvtap "switch" of a lower device) → vifs → domains.

A libvirt network and its bridge are one node (``net:NAME``): a vif of type='bridge' whose
``<source bridge=>`` is a network's bridge hangs off that network. Each vif has a *declared*
edge from the switch its XML names (state ``broken`` when the vif is not really there) and,
when it sits somewhere else (misbound), an *actual* edge from where it is. NAT, routed and
open networks reach the host through its IP stack: a ``routed`` edge host → network.
``build_topology(snapshot, bindings)`` feeds ``vifscope graph`` and ``/api/v1/topology``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from vifscope.model import HostSnapshot, LibvirtNetwork, VifBinding, VifStatus
from vifscope.report import documents as report


class NodeKind(StrEnum):
    HOST = "host"
    UPLINK = "uplink"  # a bridge port that is not a guest port, or a macvtap lower device
    BRIDGE = "bridge"  # Linux bridge (IFLA_INFO_KIND bridge)
    OVS_BRIDGE = "ovs-bridge"  # OVSDB Bridge row
    NETWORK = "network"  # libvirt <network>, its <bridge name=> folded in
    MACVTAP = "macvtap"  # the macvtaps of one lower device (type='direct'): a switch of sorts
    VIF = "vif"  # one <interface> of a domain
    DOMAIN = "domain"


LAYER: dict[NodeKind, int] = {
    NodeKind.HOST: 0,
    NodeKind.UPLINK: 1,
    NodeKind.BRIDGE: 2,
    NodeKind.OVS_BRIDGE: 2,
    NodeKind.NETWORK: 2,
    NodeKind.MACVTAP: 2,
    NodeKind.VIF: 3,
    NodeKind.DOMAIN: 4,
}


class EdgeKind(StrEnum):
    UPLINK = "uplink"  # host → uplink
    PORT = "port"  # uplink → switch: the uplink is a port (or the lower device) of it
    ROUTED = "routed"  # host → NAT / routed / open network, through the host's IP stack
    DECLARED = "declared"  # switch → vif: where the domain XML says the vif is plugged
    ACTUAL = "actual"  # switch → vif: where the vif really is, when that differs
    GUEST = "guest"  # vif → its domain


@dataclass(frozen=True)
class Node:
    """``status``: a vif's verdict; a domain's state; up / down / missing / inactive / unknown
    for everything else. ``name`` is the object's own name (bridge, link, network, target)."""

    id: str
    kind: NodeKind
    label: str
    status: str
    name: str = ""
    detail: str = ""
    domain: str | None = None  # vifs and domains
    mac: str | None = None  # vifs

    @property
    def layer(self) -> int:
        return LAYER[self.kind]


@dataclass(frozen=True)
class Edge:
    """``state``: ok, broken (declared but not so on the host), inactive (domain off), unknown."""

    source: str
    target: str
    kind: EdgeKind
    state: str = "ok"


@dataclass(frozen=True)
class Topology:
    host: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def node(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes if n.id == node_id), None)


def vif_id(b: VifBinding) -> str:
    """Stable id of a vif: its domain's UUID and position in <devices> (a MAC may repeat)."""
    return f"vif:{b.vif.domain_uuid}:{b.vif.index}"


@dataclass
class _Graph:
    """Scratch while building (never leaves this module): first node with an id wins."""

    snap: HostSnapshot
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: dict[tuple[str, str, EdgeKind], Edge] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.net_of_bridge = {n.bridge: n for n in self.snap.networks if n.bridge}

    def add(self, node: Node) -> str:
        self.nodes.setdefault(node.id, node)
        return node.id

    def link(self, source: str, target: str, kind: EdgeKind, state: str = "ok") -> None:
        self.edges.setdefault((source, target, kind), Edge(source, target, kind, state))


def _link_status(g: _Graph, name: str) -> str:
    link = g.snap.links_by_name.get(name)
    if link is None:
        return "missing"
    return "up" if link.admin_up and link.carrier else "down"


def _bridge_status(g: _Graph, name: str) -> str:
    """A Linux bridge is up when admin up: it has no carrier while no port is, which is normal."""
    link = g.snap.links_by_name.get(name)
    return "missing" if link is None else ("up" if link.admin_up else "down")


def _uplink(g: _Graph, name: str, switch: str) -> None:
    link = g.snap.links_by_name.get(name)
    status = _link_status(g, name) if link is not None else "unknown"
    detail = f"{link.kind or 'device'}, {link.oper_state}" if link else "not a kernel link (OVS userspace port)"
    uid = g.add(Node(f"link:{name}", NodeKind.UPLINK, name, status, name, detail))
    g.link("host", uid, EdgeKind.UPLINK)
    g.link(uid, switch, EdgeKind.PORT)


def _ovs_uplinks(g: _Graph, bridge: str) -> tuple[str, ...]:
    """OVS ports that are not the bridge's own internal port and not a guest port."""
    return tuple(
        p.name
        for p in g.snap.ovs_ports
        if p.bridge == bridge and p.name != bridge and p.type != "internal" and not g.snap.is_guest_port(p.name)
    )


def _bridge_uplinks(g: _Graph, switch: str, bridge: str, ovs: bool) -> None:
    names = _ovs_uplinks(g, bridge) if ovs else g.snap.uplinks_by_bridge.get(bridge, ())
    for name in names:
        _uplink(g, name, switch)


def _network_node(g: _Graph, net: LibvirtNetwork) -> str:
    ovs = net.virtualport == "openvswitch"
    nid = f"net:{net.name}"
    if nid in g.nodes:
        return nid
    if not net.active:
        status = "inactive"
    elif net.bridge:
        exists, up = report.bridge_state(net, g.snap)
        status = "up" if up else ("down" if exists else "missing")
    else:
        status = "up"
    where = f"bridge {net.bridge}" if net.bridge else "devices " + ", ".join(net.forward_devs or ("-",))
    mode = "ovs" if ovs else net.mode
    g.add(Node(nid, NodeKind.NETWORK, net.name, status, net.name, f"{mode} network, {where}"))
    if net.mode in ("nat", "route", "open"):
        g.link("host", nid, EdgeKind.ROUTED)
    if net.bridge:
        _bridge_uplinks(g, nid, net.bridge, ovs or net.bridge in g.snap.ovs_bridges)
    for dev in net.forward_devs:
        _uplink(g, dev, nid)
    return nid


def _switch(g: _Graph, bridge: str, ovs: bool) -> str:
    """The node of a Linux / OVS bridge by name (its libvirt network's node if one owns it)."""
    net = g.net_of_bridge.get(bridge)
    if net is not None:
        return _network_node(g, net)
    sid = f"{'ovs' if ovs else 'br'}:{bridge}"
    if sid not in g.nodes:
        if ovs:
            status = ("up" if bridge in g.snap.ovs_bridges else "missing") if g.snap.ovs_available else "unknown"
        else:
            status = _bridge_status(g, bridge)
        kind = NodeKind.OVS_BRIDGE if ovs else NodeKind.BRIDGE
        g.add(Node(sid, kind, bridge, status, bridge, "OVS bridge" if ovs else "Linux bridge"))
        _bridge_uplinks(g, sid, bridge, ovs)
    return sid


def _macvtap_switch(g: _Graph, lower: str) -> str:
    sid = f"mvt:{lower}"
    if sid not in g.nodes:
        g.add(Node(sid, NodeKind.MACVTAP, f"macvtap on {lower}", _link_status(g, lower), lower, "macvtap lower"))
        _uplink(g, lower, sid)
    return sid


def _missing_network(g: _Graph, name: str) -> str:
    return g.add(Node(f"net:{name}", NodeKind.NETWORK, name, "missing", name, "libvirt network not defined"))


def declared_switch(g: _Graph, b: VifBinding) -> str | None:
    """The node the domain XML plugs this vif into (None: ethernet, user, hostdev...)."""
    exp, v = b.expect, b.vif
    if exp.network is not None:
        return _network_node(g, exp.network)
    if v.type == "network" and (v.network or v.source):
        return _missing_network(g, v.network or v.source or "")
    if exp.attach in ("linux-bridge", "ovs-bridge") and exp.bridge:
        return _switch(g, exp.bridge, exp.attach == "ovs-bridge")
    if exp.attach == "macvtap" and exp.lower:
        return _macvtap_switch(g, exp.lower)
    return None


def actual_switch(g: _Graph, b: VifBinding, declared: str | None) -> str | None:
    """The node the vif's host link really sits on now (None: nowhere, or not running)."""
    if not b.vif.domain_state.has_taps or b.link is None:
        return None
    exp = b.expect
    if exp.attach == "macvtap":
        lower = b.link.lower
        if not lower:
            return None
        return declared if lower == exp.lower or lower in exp.lower_pool else _macvtap_switch(g, lower)
    if b.ovs is not None:
        return _switch(g, b.ovs.bridge, ovs=True)
    actual = b.actual_bridge
    if not actual or actual == "ovs-system":
        return None
    ovs = actual.startswith("ovs:")
    return _switch(g, actual.removeprefix("ovs:"), ovs)


def _edge_state(b: VifBinding, declared: str, actual: str | None) -> str:
    if b.status is VifStatus.INACTIVE:
        return "inactive"
    if b.status is VifStatus.UNVERIFIED:
        return "unknown"
    return "ok" if actual == declared else "broken"


def _add_vif(g: _Graph, b: VifBinding) -> None:
    v = b.vif
    label = (v.target if v.domain_state.has_taps else None) or v.mac or f"#{v.index}"
    node = Node(vif_id(b), NodeKind.VIF, label, b.status.value, v.target or "", b.detail, v.domain, v.mac)
    vid = g.add(node)
    dom = g.add(Node(f"dom:{v.domain_uuid}", NodeKind.DOMAIN, v.domain, v.domain_state.value, v.domain, "", v.domain))
    g.link(vid, dom, EdgeKind.GUEST, "inactive" if b.status is VifStatus.INACTIVE else "ok")
    declared = declared_switch(g, b)
    actual = actual_switch(g, b, declared)
    if declared is not None:
        g.link(declared, vid, EdgeKind.DECLARED, _edge_state(b, declared, actual))
    if actual is not None and actual != declared:
        g.link(actual, vid, EdgeKind.ACTUAL)


def build_topology(snap: HostSnapshot, bindings: Sequence[VifBinding], *, all_networks: bool = True) -> Topology:
    """The graph of these bindings; ``all_networks`` adds libvirt networks no vif uses."""
    g = _Graph(snap)
    g.add(Node("host", NodeKind.HOST, snap.host, "up", snap.host, snap.uri))
    for b in bindings:
        _add_vif(g, b)
    if all_networks:
        for net in snap.networks:
            _network_node(g, net)
    nodes = sorted(g.nodes.values(), key=lambda n: (n.layer, n.id))
    edges = sorted(g.edges.values(), key=lambda e: (e.source, e.target, e.kind.value))
    return Topology(snap.host, tuple(nodes), tuple(edges))


def node_dict(n: Node) -> dict[str, Any]:
    return {
        "id": n.id,
        "kind": n.kind.value,
        "layer": n.layer,
        "label": n.label,
        "name": n.name,
        "status": n.status,
        "detail": n.detail,
        "domain": n.domain,
        "mac": n.mac,
    }


def edge_dict(e: Edge) -> dict[str, Any]:
    return {"source": e.source, "target": e.target, "kind": e.kind.value, "state": e.state}


def topology_dict(snap: HostSnapshot, bindings: Sequence[VifBinding], topo: Topology) -> dict[str, Any]:
    """``graph --format json`` and ``/api/v1/topology`` (names are a contract: add, never rename)."""
    return {
        "host": snap.host,
        "uri": snap.uri,
        "taken_at": snap.taken_at.isoformat(),
        "summary": dict(report.counts(bindings)),
        "nodes": [node_dict(n) for n in topo.nodes],
        "edges": [edge_dict(e) for e in topo.edges],
        "source_errors": report.errors_list(snap.errors),
    }
