"""Where each interface type says a vif must be plugged: a table keyed by libvirt type.

Pure. ``resolve(vif, snap)`` turns a DeclaredVif into an Expectation; types without an
entry (and the explicit UNVERIFIABLE ones) cannot be checked against host links.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from vifscope.model import DeclaredVif, Expectation, HostSnapshot, LibvirtNetwork, Problem

# Types with no host-side link vifscope can verify yet, and why (shown to the user).
UNVERIFIABLE: dict[str, str] = {
    "hostdev": "hostdev: the SR-IOV VF's sysfs links and its PF's VF table were not read (remote host?)",
    "vhostuser": "vhost-user: the UNIX socket was not examined (remote host?)",
    "vdpa": "vDPA devices are not checked by this version",
    "user": "user-mode networking (slirp/passt) runs inside QEMU: no host link to check",
    "server": "socket (server) backend: a TCP socket, no host link",
    "client": "socket (client) backend: a TCP socket, no host link",
    "mcast": "socket (mcast) backend: a multicast socket, no host link",
    "udp": "socket (udp) backend: a UDP socket, no host link",
    "null": "null backend: not connected anywhere",
    "vds": "VMware distributed switch: not a KVM host link",
    "internal": "internal (VirtualBox) network: not a KVM host link",
}

# libvirt's default <source mode=> for type='direct' is vepa.
DEFAULT_DIRECT_MODE = "vepa"

Resolver = Callable[[DeclaredVif, HostSnapshot], Expectation]


def _bridge_kind(name: str, declared_ovs: bool, snap: HostSnapshot) -> str:
    """OVS when declared, or when the named bridge is one OVSDB knows and Linux does not."""
    if declared_ovs:
        return "ovs-bridge"
    link = snap.links_by_name.get(name)
    if link is not None and link.kind == "openvswitch":
        return "ovs-bridge"  # kernel datapath device: it is OVS even while OVSDB is down
    if name in snap.ovs_bridges and (link is None or link.kind != "bridge"):
        return "ovs-bridge"
    return "linux-bridge"


def resolve_bridge(vif: DeclaredVif, snap: HostSnapshot) -> Expectation:
    """type='bridge': the port must be on <source bridge=> (Linux, or OVS by virtualport)."""
    if not vif.source:
        return Expectation("unverifiable", reason="type='bridge' without <source bridge=>")
    kind = _bridge_kind(vif.source, vif.virtualport == "openvswitch", snap)
    return Expectation(kind, bridge=vif.source)


def _network_plug(vif: DeclaredVif, net: LibvirtNetwork | None, snap: HostSnapshot) -> Expectation:
    """Resolve the network's plug; a running domain's live <source bridge=|dev=> wins."""
    kind = net.kind if net else None
    if kind == "hostdev" and net is not None:
        # The live XML names no VF: the one carrying the vif's MAC among the pool's is it.
        vlan = _vlan(vif, net)
        return Expectation("sriov-vf", lower_pool=net.forward_devs, pci_pool=net.forward_pci, network=net, vlan=vlan)
    if vif.live_dev or kind == "macvtap":
        pool = net.forward_devs if net else ()
        mode = vif.source_mode or (net.mode if net and net.mode != "bridge" else "bridge")
        return Expectation("macvtap", lower=vif.live_dev, lower_pool=pool, mode=mode, network=net)
    bridge = vif.live_bridge or (net.bridge if net else None)
    declared_ovs = vif.virtualport == "openvswitch" or (net is not None and net.virtualport == "openvswitch")
    attach = _bridge_kind(bridge, declared_ovs, snap) if bridge else "linux-bridge"
    return Expectation(attach, bridge=bridge, network=net)


def resolve_network(vif: DeclaredVif, snap: HostSnapshot) -> Expectation:
    """type='network': resolve the libvirt network to its bridge, OVS bridge or macvtap pool."""
    name = vif.network or vif.source
    net = snap.networks_by_name.get(name) if name else None
    problems: list[Problem] = []
    if net is None and not snap.failed("libvirt-network"):
        problems.append(Problem.NETWORK_MISSING)
    elif net is not None and not net.active:
        problems.append(Problem.NETWORK_INACTIVE)
    exp = _network_plug(vif, net, snap)
    return replace(exp, network=net, problems=tuple(problems))


def resolve_direct(vif: DeclaredVif, snap: HostSnapshot) -> Expectation:
    """type='direct': a macvtap whose lower is <source dev=>, in <source mode=>."""
    if not vif.source:
        return Expectation("unverifiable", reason="type='direct' without <source dev=>")
    return Expectation("macvtap", lower=vif.source, mode=vif.source_mode or DEFAULT_DIRECT_MODE)


def resolve_ethernet(vif: DeclaredVif, snap: HostSnapshot) -> Expectation:
    """type='ethernet': libvirt plugs the tap nowhere; it must exist and be up."""
    return Expectation("standalone")


def resolve_vhostuser(vif: DeclaredVif, snap: HostSnapshot) -> Expectation:
    """type='vhostuser': a UNIX socket at <source path=>; QEMU listens in mode='server' (the
    default libvirt writes is client: the switch listens)."""
    if not vif.source:
        return Expectation("unverifiable", reason="vhost-user without <source path=> (e.g. a passt backend)")
    return Expectation("vhostuser", socket=vif.source, mode=vif.source_mode or "client")


def _vlan(vif: DeclaredVif, net: LibvirtNetwork | None) -> int:
    """The VLAN libvirt programs into a VF: the interface's single tag, else the network's, else
    0 (libvirt clears the VF's VLAN when none is declared)."""
    tags = vif.vlan_tags or (net.vlan_tags if net else ())
    return tags[0] if tags else 0


def resolve_hostdev(vif: DeclaredVif, snap: HostSnapshot) -> Expectation:
    """type='hostdev': the SR-IOV VF at <source><address type='pci'> with the XML's MAC and VLAN."""
    if not vif.source:
        return Expectation("unverifiable", reason="type='hostdev' without a PCI <source><address>")
    if vif.virtualport:
        why = f"hostdev with <virtualport type='{vif.virtualport}'>: the port profile sets the VF, not its MAC/VLAN"
        return Expectation("unverifiable", reason=why)
    return Expectation("sriov-vf", pci=vif.source, vlan=_vlan(vif, None))


RESOLVERS: dict[str, Resolver] = {
    "bridge": resolve_bridge,
    "network": resolve_network,
    "direct": resolve_direct,
    "ethernet": resolve_ethernet,
    "vhostuser": resolve_vhostuser,
    "hostdev": resolve_hostdev,
}


def resolve(vif: DeclaredVif, snap: HostSnapshot) -> Expectation:
    """The expectation for any vif; unknown types are unverifiable with a reason."""
    resolver = RESOLVERS.get(vif.type)
    if resolver is not None:
        return resolver(vif, snap)
    reason = UNVERIFIABLE.get(vif.type, f"interface type '{vif.type}' is not known to this version")
    return Expectation("unverifiable", reason=reason)
