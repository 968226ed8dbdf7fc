"""Pure data model: what libvirt declares, what the kernel and OVSDB have, and the join.

Everything here is a frozen dataclass or an enum. No I/O, no library objects: sources
convert virDomain / ``ip -j`` / OVSDB rows into these types at the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property

from vifscope.model.backend import BackendFacts
from vifscope.model.guestaddr import AddressFacts
from vifscope.model.host import HostFacts
from vifscope.model.qos import Bandwidth
from vifscope.model.qospolicy import VifPolicy


class DomainState(StrEnum):
    """libvirt ``virDomainState`` (``virsh domstate``), as lowercase words."""

    NOSTATE = "nostate"
    RUNNING = "running"
    BLOCKED = "blocked"
    PAUSED = "paused"
    SHUTDOWN = "shutdown"  # being shut down: QEMU and its taps still exist
    SHUTOFF = "shutoff"
    CRASHED = "crashed"
    PMSUSPENDED = "pmsuspended"

    @property
    def has_taps(self) -> bool:
        """Whether a QEMU process (and so its host-side vifs) exists in this state."""
        return self not in (DomainState.SHUTOFF, DomainState.CRASHED)


@dataclass(frozen=True)
class DeclaredVif:
    """One ``<devices><interface>`` element of a domain's (live) XML.

    ``source`` is what the XML names as written: ``<source bridge=>`` for type bridge,
    ``<source network=>`` for type network, ``<source dev=>`` for direct/ethernet.
    ``live_bridge`` / ``live_dev`` are the attributes libvirt adds to ``<source>`` of a
    running domain's type='network' interface once it has resolved the network.
    """

    domain: str
    domain_uuid: str
    domain_state: DomainState
    index: int
    type: str
    mac: str | None
    model: str | None = None
    source: str | None = None
    network: str | None = None
    portgroup: str | None = None
    live_bridge: str | None = None
    live_dev: str | None = None
    source_mode: str | None = None  # <source mode=> of direct (bridge/vepa/private/passthrough)
    target: str | None = None  # <target dev=>
    link_state: str = "up"  # <link state=>; absent means up
    virtualport: str | None = None  # <virtualport type=>
    interface_id: str | None = None  # <virtualport><parameters interfaceid=>
    mtu: int | None = None  # <mtu size=>
    alias: str | None = None
    driver: str | None = None  # <driver name=> (vhost / qemu)
    queues: int | None = None
    filterref: str | None = None
    vcpus: int | None = None  # domain <vcpu>, handy for per-vif tuning checks
    bandwidth: Bandwidth | None = None  # <bandwidth> (model/qos.py)
    vlan_tags: tuple[int, ...] = ()  # <vlan><tag id=>, in document order
    qos_policy: VifPolicy | None = None  # vifscope's tc-backend policy in <metadata> (model/qospolicy.py)
    dscp_mark: int | None = None  # vifscope's DSCP mark in <metadata> (model/qosdscp.py)


@dataclass(frozen=True)
class LinkStats:
    """IFLA_STATS64 counters of a link, host view: rx is what the host received *from* the
    guest through a tap (the guest's tx), tx what the host sent to the guest."""

    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0


@dataclass(frozen=True)
class ObservedLink:
    """One kernel network link in the current namespace (``ip -d link show``).

    ``kind`` is the rtnetlink IFLA_INFO_KIND (``tun``, ``bridge``, ``macvtap``, ``veth``,
    ``openvswitch``...), None for plain devices. ``master`` is IFLA_MASTER by name;
    ``lower`` is IFLA_LINK by name (a macvtap's parent).
    """

    name: str
    ifindex: int
    kind: str | None
    admin_up: bool
    oper_state: str
    carrier: bool
    mtu: int | None
    mac: str | None = None
    master: str | None = None
    lower: str | None = None
    macvtap_mode: str | None = None
    slave_kind: str | None = None  # IFLA_INFO_SLAVE_KIND: 'bridge' or 'openvswitch'
    stp_state: int | None = None  # bridges only
    forward_delay: int | None = None  # bridges only, in centiseconds as the kernel reports
    port_state: str | None = None  # bridge ports: forwarding/blocking/learning/disabled
    isolated: bool | None = None  # bridge ports: BR_ISOLATED
    txqlen: int | None = None
    qdisc: str | None = None
    promiscuity: int | None = None
    stats: LinkStats | None = None  # IFLA_STATS64 from the same dump (ip -s)


@dataclass(frozen=True)
class OvsPort:
    """An OVSDB Interface row and the Bridge that holds it (via its Port row)."""

    name: str
    bridge: str
    type: str = ""
    iface_id: str | None = None  # external_ids:iface-id
    attached_mac: str | None = None  # external_ids:attached-mac
    vm_uuid: str | None = None  # external_ids:vm-id / vm-uuid
    ofport: int | None = None
    error: str | None = None  # Interface.error
    vhost_server_path: str | None = None  # options:vhost-server-path (type dpdkvhostuserclient)


@dataclass(frozen=True)
class DhcpRange:
    """``<network><ip><dhcp><range start= end=/>``."""

    start: str
    end: str


@dataclass(frozen=True)
class LibvirtNetwork:
    """A libvirt virtual network (``virsh net-dumpxml``) plus its run state.

    ``mode`` is the ``<forward mode=>``, with "isolated" for no ``<forward>`` and "nat"
    for a bare ``<forward/>`` (libvirt's default). ``forward_devs`` lists ``<forward><interface
    dev=>`` and ``<pf dev=>``: the pool a macvtap or hostdev network hands out.
    """

    name: str
    uuid: str
    active: bool
    autostart: bool | None
    mode: str
    bridge: str | None
    virtualport: str | None = None
    forward_devs: tuple[str, ...] = ()
    dhcp_ranges: tuple[DhcpRange, ...] = ()
    addresses: tuple[str, ...] = ()  # "ip/prefix" of <ip address= prefix|netmask=>
    leases: int | None = None  # None: unknown (inactive network or lease query failed)
    mtu: int | None = None
    forward_pci: tuple[str, ...] = ()  # hostdev pool given as <forward><address type='pci'/> (DDDD:BB:SS.F)
    vlan_tags: tuple[int, ...] = ()  # the network's own <vlan><tag id=> (an interface's <vlan> wins)
    inbound_average: int | None = None  # <bandwidth><inbound average=> kB/s (a vif's floor needs one)

    @property
    def kind(self) -> str:
        """How a vif on this network is plugged: linux-bridge, ovs-bridge, macvtap, hostdev."""
        if self.mode == "hostdev":
            return "hostdev"
        # OVS first: an OVS network may leave the bridge name to portgroups / live XML.
        if self.virtualport == "openvswitch":
            return "ovs-bridge"
        if self.mode in ("passthrough", "private", "vepa") or (self.mode == "bridge" and not self.bridge):
            return "macvtap"
        return "linux-bridge"


# Link kinds that are a guest's end of a port even when no running domain declares them
# (a tap left by a crashed QEMU is still nobody's way out).
GUEST_PORT_KINDS = frozenset({"tun", "macvtap"})


@dataclass(frozen=True)
class SourceError:
    """A source that failed while taking a snapshot. ``hint`` says what a user can do."""

    source: str
    error: str
    hint: str = ""


@dataclass(frozen=True)
class HostSnapshot:
    """Everything the sources saw at one moment. Missing parts come with ``errors``."""

    host: str
    uri: str
    taken_at: datetime
    vifs: tuple[DeclaredVif, ...] = ()
    links: tuple[ObservedLink, ...] = ()
    ovs_ports: tuple[OvsPort, ...] = ()
    ovs_bridges: tuple[str, ...] = ()
    ovs_available: bool = False  # OVSDB answered (False: not installed, or see errors)
    networks: tuple[LibvirtNetwork, ...] = ()
    errors: tuple[SourceError, ...] = ()
    facts: HostFacts | None = None  # deep snapshots only (doctor): sysctls, leases, filters...
    backends: BackendFacts | None = None  # vhost-user sockets, SR-IOV VFs (None: not read)
    addresses: AddressFacts = field(default_factory=AddressFacts)  # leases, neighbours, agent: guest addresses

    @cached_property
    def links_by_name(self) -> dict[str, ObservedLink]:
        return {link.name: link for link in self.links}

    @cached_property
    def ovs_by_name(self) -> dict[str, OvsPort]:
        return {port.name: port for port in self.ovs_ports}

    @cached_property
    def networks_by_name(self) -> dict[str, LibvirtNetwork]:
        return {net.name: net for net in self.networks}

    @cached_property
    def ports_by_master(self) -> dict[str, tuple[ObservedLink, ...]]:
        """Kernel bridge ports grouped by master name (a bridge's uplinks and taps)."""
        grouped: dict[str, list[ObservedLink]] = {}
        for link in self.links:
            if link.master:
                grouped.setdefault(link.master, []).append(link)
        return {k: tuple(v) for k, v in grouped.items()}

    @cached_property
    def running_targets(self) -> frozenset[str]:
        """The declared ``<target dev>`` of every vif whose domain has a process. A shut-off
        domain's target is a stale name: the kernel may have given it to another link since."""
        return frozenset(v.target for v in self.vifs if v.target and v.domain_state.has_taps)

    def is_guest_port(self, name: str) -> bool:
        """Whether a bridge or OVS port is a guest's end rather than a way out. The one rule
        every consumer (status uplinks, graph, checks) uses: a running domain's declared target
        whatever its kind (libvirt's LXC driver plugs veths, not taps), or a tap/macvtap."""
        if name in self.running_targets:
            return True
        link = self.links_by_name.get(name)
        return link is not None and link.kind in GUEST_PORT_KINDS

    @cached_property
    def bridge_ports(self) -> dict[str, tuple[tuple[ObservedLink, ...], tuple[ObservedLink, ...]]]:
        """Per Linux bridge: (uplinks, guest ports), split once per snapshot (per-vif
        splitting was quadratic in ports per bridge)."""
        out = {}
        for bridge, ports in self.ports_by_master.items():
            guest = [self.is_guest_port(p.name) for p in ports]
            uplinks = tuple(p for p, g in zip(ports, guest, strict=True) if not g)
            out[bridge] = (uplinks, tuple(p for p, g in zip(ports, guest, strict=True) if g))
        return out

    @cached_property
    def uplinks_by_bridge(self) -> dict[str, tuple[str, ...]]:
        """A bridge's ports that are not guest ports (see ``is_guest_port``): its way out."""
        return {bridge: tuple(p.name for p in split[0]) for bridge, split in self.bridge_ports.items()}

    @cached_property
    def failed_sources(self) -> frozenset[str]:
        return frozenset(err.source for err in self.errors)

    def failed(self, source: str) -> bool:
        return source in self.failed_sources
