"""Host facts the doctor checks need beyond the binding join: sysctls, device nodes,
qdiscs, neighbours, DHCP leases, nwfilter bindings, firewall policy, daemons' runtime.

Pure data. ``HostFacts`` rides on ``HostSnapshot.facts`` and is only read by ``doctor``
(a "deep" snapshot). A part that could not be read is ``None`` (its SourceError is in
``HostSnapshot.errors``); an empty tuple means "read, and there is none".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property

from vifscope.model.flows import FlowSupport
from vifscope.model.qos import OvsQos, TcShaping
from vifscope.model.qosdscp import DscpMark


@dataclass(frozen=True)
class Sysctls:
    """``/proc/sys`` values of the namespace vifscope runs in; None: the key does not exist.

    ``bridge_nf_call_*`` exist only with br_netfilter; ``nf_conntrack_*`` only with conntrack.
    """

    ip_forward: int | None = None  # net.ipv4.ip_forward
    ipv6_forwarding: int | None = None  # net.ipv6.conf.all.forwarding
    bridge_nf_call_iptables: int | None = None  # net.bridge.bridge-nf-call-iptables
    bridge_nf_call_ip6tables: int | None = None
    somaxconn: int | None = None  # net.core.somaxconn
    ip_local_port_range: tuple[int, int] | None = None  # net.ipv4.ip_local_port_range
    nf_conntrack_max: int | None = None  # net.netfilter.nf_conntrack_max
    nf_conntrack_count: int | None = None  # net.netfilter.nf_conntrack_count


@dataclass(frozen=True)
class DeviceNode:
    """A character device QEMU/libvirt opens (/dev/net/tun, /dev/vhost-net, /dev/kvm)."""

    path: str
    exists: bool
    is_char: bool = False
    major: int | None = None
    minor: int | None = None
    mode: int | None = None  # permission bits, e.g. 0o660
    group: str | None = None
    openable: bool | None = None  # vifscope (root) could open it read-write
    error: str | None = None  # why it could not be opened / probed


@dataclass(frozen=True)
class DeviceNodes:
    """The device nodes a KVM host needs, plus what /dev/kvm answered."""

    tun: DeviceNode
    vhost_net: DeviceNode
    kvm: DeviceNode
    kvm_api_version: int | None = None  # KVM_GET_API_VERSION (12 on every sane kernel)
    cpu_virt_extensions: bool | None = None  # vmx/svm in /proc/cpuinfo


@dataclass(frozen=True)
class Qdisc:
    """One ``tc qdisc show`` entry. ``ingress`` covers both ingress and clsact."""

    dev: str
    kind: str
    handle: str
    root: bool
    ingress: bool = False


@dataclass(frozen=True)
class NeighEntry:
    """One ``ip neigh`` (ARP / NDP) entry of the host: ``ip`` was last seen at ``mac`` on ``dev``."""

    dev: str
    ip: str
    mac: str | None
    state: str  # REACHABLE, STALE, FAILED, PERMANENT...


@dataclass(frozen=True)
class HostAddress:
    """An IP address configured on a host link (``ip addr``): "a.b.c.d/nn"."""

    dev: str
    address: str
    family: str  # inet / inet6


@dataclass(frozen=True)
class DhcpLease:
    """One ``virNetworkGetDHCPLeases`` entry (dnsmasq's lease of a libvirt network)."""

    network: str
    mac: str
    ip: str
    prefix: int | None = None
    hostname: str | None = None
    expiry: int | None = None  # epoch seconds


class AddressSource(StrEnum):
    """Where a guest address came from, best first: the guest agent, a DHCP lease, ARP, and
    last the IPv6 link-local address derived from the MAC (EUI-64), which needs no source."""

    AGENT = "agent"
    LEASE = "lease"
    ARP = "arp"
    EUI64 = "eui64"


@dataclass(frozen=True)
class GuestAddress:
    """An IP address a vif (by MAC) holds, from the best source that knew it."""

    mac: str
    ip: str
    source: AddressSource
    where: str = ""  # network name / host link / domain the observation came from
    prefix: int | None = None  # the agent's and leases' prefix length; ARP knows none


@dataclass(frozen=True)
class NwfilterBinding:
    """A libvirt nwfilter binding (``virsh nwfilter-binding-list``): a filter applied to a port."""

    port_dev: str
    filter: str
    mac: str | None = None
    owner: str | None = None  # domain name
    owner_uuid: str | None = None


@dataclass(frozen=True)
class NwfilterDef:
    """A libvirt nwfilter definition and the filters it pulls in via ``<filterref>``."""

    name: str
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class FirewallChain:
    """A netfilter base chain (one attached to a hook), from nft or iptables-legacy."""

    family: str  # ip / ip6 / inet / bridge
    table: str
    name: str
    hook: str  # forward / input / postrouting ...
    policy: str  # accept / drop
    backend: str = "nft"  # nft | iptables-legacy


@dataclass(frozen=True)
class NatRule:
    """A source-NAT rule (MASQUERADE / SNAT) and the source prefix it matches."""

    table: str
    chain: str
    target: str  # masquerade / snat
    source: str | None = None  # "10.0.0.0/24", None: any
    out_iface: str | None = None
    backend: str = "nft"


@dataclass(frozen=True)
class Firewall:
    """What the packet filter does to forwarded traffic, enough for the doctor's questions."""

    chains: tuple[FirewallChain, ...] = ()
    nat_rules: tuple[NatRule, ...] = ()
    # Interfaces some forward-hook rule accepts by iifname/oifname (libvirt, Docker add these).
    forward_accept_ifaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class NetworkRuntime:
    """Runtime side of a libvirt network: its dnsmasq, and network-wide ``<port isolated>``."""

    name: str
    dnsmasq_pid: int | None = None
    dnsmasq_running: bool | None = None  # None: unknown (remote host, no pid file to read)
    port_isolated: bool = False  # <network><port isolated='yes'/>


@dataclass(frozen=True)
class DomainRuntime:
    """A domain's hypervisor type and, when local, its QEMU process."""

    name: str
    uuid: str
    virt_type: str  # <domain type=>: kvm / qemu / ...
    pid: int | None = None
    started_at: datetime | None = None
    vhost_fds: int | None = None  # open /dev/vhost-net fds of the QEMU process


@dataclass(frozen=True)
class InterfaceExtras:
    """``<interface>`` details the binding join does not need but security checks do."""

    domain: str
    index: int
    trust_guest_rx_filters: bool = False  # <interface trustGuestRxFilters='yes'>
    port_isolated: bool | None = None  # <port isolated='yes|no'/>; None: not written
    bandwidth: bool = False  # <bandwidth> present (libvirt installs an htb/ingress qdisc)


@dataclass(frozen=True)
class HostFacts:
    """Everything a deep snapshot adds. ``None`` parts could not be read (see errors)."""

    sysctls: Sysctls | None = None
    devices: DeviceNodes | None = None
    qdiscs: tuple[Qdisc, ...] | None = None
    neighbors: tuple[NeighEntry, ...] | None = None
    addresses: tuple[HostAddress, ...] | None = None
    leases: tuple[DhcpLease, ...] | None = None
    guest_addresses: tuple[GuestAddress, ...] | None = None
    nwfilter_bindings: tuple[NwfilterBinding, ...] | None = None
    nwfilters: tuple[NwfilterDef, ...] | None = None
    firewall: Firewall | None = None
    network_runtime: tuple[NetworkRuntime, ...] | None = None
    domain_runtime: tuple[DomainRuntime, ...] | None = None
    interface_extras: tuple[InterfaceExtras, ...] | None = None
    tc_shaping: TcShaping | None = None  # htb classes and ingress police filters (qos.* checks)
    kernel_shaping: Shaping | None = None  # sfq / police built in (/proc/config.gz); None: unknown
    ovs_qos: tuple[OvsQos, ...] | None = None  # OVSDB's QoS rows and ingress policing per Interface
    dscp_marks: tuple[DscpMark, ...] | None = None  # vifscope's nft table (netdev vifscope_qos); () no table
    flows: FlowSupport | None = None  # can vifscope flows load its BPF program here; None: not probed
    notes: tuple[str, ...] = field(default_factory=tuple)  # e.g. "guest agent needs a read-write connection"

    @cached_property
    def qdiscs_by_dev(self) -> dict[str, tuple[Qdisc, ...]]:
        grouped: dict[str, list[Qdisc]] = {}
        for q in self.qdiscs or ():
            grouped.setdefault(q.dev, []).append(q)
        return {k: tuple(v) for k, v in grouped.items()}

    @cached_property
    def ovs_qos_by_name(self) -> dict[str, OvsQos]:
        return {q.name: q for q in self.ovs_qos or ()}

    @cached_property
    def marks_by_dev(self) -> dict[str, DscpMark]:
        return {m.dev: m for m in self.dscp_marks or ()}

    @cached_property
    def bindings_by_port(self) -> dict[str, NwfilterBinding]:
        return {b.port_dev: b for b in self.nwfilter_bindings or ()}

    @cached_property
    def extras_by_vif(self) -> dict[tuple[str, int], InterfaceExtras]:
        return {(e.domain, e.index): e for e in self.interface_extras or ()}

    @cached_property
    def runtime_by_domain(self) -> dict[str, DomainRuntime]:
        return {d.name: d for d in self.domain_runtime or ()}

    @cached_property
    def runtime_by_network(self) -> dict[str, NetworkRuntime]:
        return {n.name: n for n in self.network_runtime or ()}

    @cached_property
    def addresses_by_dev(self) -> dict[str, tuple[HostAddress, ...]]:
        grouped: dict[str, list[HostAddress]] = {}
        for a in self.addresses or ():
            grouped.setdefault(a.dev, []).append(a)
        return {k: tuple(v) for k, v in grouped.items()}


@dataclass(frozen=True)
class Shaping:
    """Whether the kernel has what libvirt's ``<bandwidth>`` needs: ``sch_sfq`` (the leaf of the
    htb class libvirt builds for ``<inbound>``) and ``act_police`` (its ``<outbound>`` filter).
    Kernels without them make libvirt refuse to start a domain with ``<bandwidth>``."""

    sfq: bool
    police: bool
