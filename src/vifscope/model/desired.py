"""``vifscope apply``'s two sides as data: what a file declares (``Desired``) and what the
host holds of the objects it names (``HostState``). Pure.

A declared object is either present with these settings or (``present=False``) absent. A
field left ``None`` is not managed: whatever the host has stays. Rollback uses the same
model: the checkpoint, read back as a Desired with every field set (``NetworkSpec.xml``
carries a network's whole definition), is applied like any file.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from vifscope.model.host import Shaping
from vifscope.model.qos import Bandwidth, BandwidthRate
from vifscope.model.qospolicy import VifPolicy, VifSite


class BridgeKind(StrEnum):
    LINUX = "linux"
    OVS = "ovs"


class NetMode(StrEnum):
    """A libvirt network's forward mode as the file names it."""

    ISOLATED = "isolated"  # no <forward>
    NAT = "nat"
    ROUTE = "route"
    OPEN = "open"
    BRIDGE = "bridge"  # <forward mode='bridge'/> on an existing host bridge
    MACVTAP = "macvtap"  # <forward mode='bridge'><interface dev=…/></forward>

    @property
    def has_own_bridge(self) -> bool:
        """libvirt creates (and deletes) the network's Linux bridge itself."""
        return self in (NetMode.ISOLATED, NetMode.NAT, NetMode.ROUTE, NetMode.OPEN)


@dataclass(frozen=True)
class BridgeSpec:
    """A host bridge. ``uplinks``: ports it must have (others are left alone, unless
    ``exact``: rollback's restore removes ports the checkpoint did not have)."""

    name: str
    kind: BridgeKind = BridgeKind.LINUX
    present: bool = True
    uplinks: tuple[str, ...] = ()
    stp: bool | None = None
    mtu: int | None = None
    datapath: str | None = None  # OVS datapath_type (netdev / system); creation only
    up: bool = True
    exact: bool = False


@dataclass(frozen=True)
class Ipv4:
    """The network's IPv4 address (``a.b.c.d/nn``) and its DHCP range, if any."""

    address: str
    dhcp: tuple[str, str] | None = None


@dataclass(frozen=True)
class NetworkSpec:
    """A libvirt network. ``xml`` (rollback only) is its whole persistent definition,
    used instead of the fields."""

    name: str
    present: bool = True
    mode: NetMode | None = None  # None: not managed (a new network is isolated)
    bridge: str | None = None
    ipv4: Ipv4 | None = None
    devices: tuple[str, ...] = ()  # macvtap: host devices
    autostart: bool = True
    active: bool = True
    xml: str | None = None


class VifKind(StrEnum):
    """What a guest NIC plugs into (``<interface type=>``; OVS is a bridge with a virtualport)."""

    NETWORK = "network"
    BRIDGE = "bridge"
    OVS = "ovs"


@dataclass(frozen=True)
class QosSpec:
    """A NIC's rates as ``qos set`` takes them (libvirt's units); neither direction: clear."""

    inbound: BandwidthRate | None = None
    outbound: BandwidthRate | None = None
    backend: str = "libvirt"  # libvirt (<bandwidth>, virsh domiftune) or tc (vifscope's htb + ifb)

    @property
    def clear(self) -> bool:
        return self.inbound is None and self.outbound is None


@dataclass(frozen=True)
class VifSpec:
    """One NIC of a guest, by MAC: plugged into ``source`` (present) or not there (absent)."""

    mac: str
    kind: VifKind | None = None  # None: absent
    source: str | None = None
    model: str = "virtio"
    present: bool = True
    isolated: bool | None = None  # <port isolated='yes'/>; None: not managed
    nwfilter: str | None = None  # <filterref filter=…/>; "": none; None: not managed
    pool: str | None = None  # mac "auto": the MAC pool it comes from (None: the only pool)
    qos: QosSpec | None = None  # None: QoS not managed (left as it is)


@dataclass(frozen=True)
class DomainSpec:
    """A guest (defined already) and the NICs the file declares; its other NICs stay."""

    name: str
    interfaces: tuple[VifSpec, ...] = ()


@dataclass(frozen=True)
class Desired:
    bridges: tuple[BridgeSpec, ...] = ()
    networks: tuple[NetworkSpec, ...] = ()
    domains: tuple[DomainSpec, ...] = ()

    @property
    def names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return tuple(b.name for b in self.bridges), tuple(n.name for n in self.networks)

    @property
    def domain_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.domains)


# --- what the host holds ---------------------------------------------------------------------


@dataclass(frozen=True)
class BridgeState:
    """A host bridge as found. ``ports``: its ports that are not guest taps."""

    name: str
    kind: BridgeKind
    mtu: int | None
    stp: bool
    up: bool
    ports: tuple[str, ...] = ()
    datapath: str | None = None


@dataclass(frozen=True)
class NetworkState:
    """A libvirt network as found: its persistent XML (``--inactive``), and the running
    guests' taps on it with their current master (libvirt unplugs them on a restart)."""

    name: str
    xml: str
    active: bool
    autostart: bool
    taps: tuple[tuple[str, str | None], ...] = ()
    tap_macs: tuple[tuple[str, str], ...] = ()  # (tap, the guest NIC's MAC)


@dataclass(frozen=True)
class QosState:
    """A live NIC's QoS as found. ``backend``: who declares it (tc: vifscope's metadata;
    libvirt: the live ``<bandwidth>``; None: nobody), its declared rates, the verdict of a
    fresh read (enforced, missing, drift...), and what ``qos set`` plans from: where the
    shaping goes (None: not read) and the domain's tc-backend policies."""

    backend: str | None
    inbound: BandwidthRate | None = None
    outbound: BandwidthRate | None = None
    verdict: str = "none"
    site: VifSite | None = None
    policies: tuple[VifPolicy, ...] = ()
    vif_type: str = "bridge"
    error: str | None = None  # why it could not be read afresh (then: only what the snapshot declares)

    @property
    def bandwidth(self) -> Bandwidth | None:
        """libvirt's ``<bandwidth>`` (only when libvirt declares the rates)."""
        return Bandwidth(self.inbound, self.outbound) if self.backend == "libvirt" else None


@dataclass(frozen=True)
class VifState:
    """A guest NIC as found. ``kind`` None: a type apply does not manage (direct, hostdev…).
    ``status``: the binding verdict (live NICs of running guests; None otherwise)."""

    mac: str
    kind: VifKind | None
    source: str | None
    model: str | None = None
    status: str | None = None
    isolated: bool = False
    nwfilter: str | None = None
    qos: QosState | None = None  # live NICs of running guests (None: not read)


@dataclass(frozen=True)
class GuestState:
    """A defined guest: whether it runs / is persistent, its live and persistent NICs."""

    name: str
    running: bool
    persistent: bool
    live: tuple[VifState, ...] = ()
    config: tuple[VifState, ...] = ()


@dataclass(frozen=True)
class HostState:
    """What apply plans against: bridges and networks by name, every link's master (for
    uplinks), whether OVSDB answered."""

    uri: str
    bridges: tuple[BridgeState, ...] = ()
    networks: tuple[NetworkState, ...] = ()
    link_masters: tuple[tuple[str, str | None], ...] = ()
    ovs_members: tuple[tuple[str, str], ...] = ()  # (interface, OVS bridge): netdev ports have no kernel master
    ovs_available: bool = False
    guests: tuple[GuestState, ...] = ()
    shaping: Shaping | None = None  # what libvirt's <bandwidth> needs of the kernel (None: unknown)

    def guest(self, name: str) -> GuestState | None:
        return next((g for g in self.guests if g.name == name), None)

    def bridge(self, name: str) -> BridgeState | None:
        return next((b for b in self.bridges if b.name == name), None)

    def network(self, name: str) -> NetworkState | None:
        return next((n for n in self.networks if n.name == name), None)

    def link_exists(self, name: str) -> bool:
        return any(link == name for link, _ in self.link_masters)

    def master_of(self, name: str) -> str | None:
        """The bridge ``name`` is a port of: its kernel master, or the OVS bridge holding it."""
        return dict(self.ovs_members).get(name) or dict(self.link_masters).get(name)

    def on_ovs(self, name: str) -> bool:
        return name in dict(self.ovs_members)

    def only(self, desired: Desired) -> HostState:
        """The part of this state the file names (the checkpoint)."""
        bridges, networks = desired.names
        return HostState(
            self.uri,
            tuple(b for b in self.bridges if b.name in bridges),
            tuple(n for n in self.networks if n.name in networks),
            self.link_masters,
            self.ovs_members,
            self.ovs_available,
            tuple(g for g in self.guests if g.name in {d.name for d in desired.domains}),
            self.shaping,
        )
