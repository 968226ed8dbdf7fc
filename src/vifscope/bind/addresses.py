"""Each vif's guest addresses: what the guest agent, the DHCP leases of the vif's network and the
host's neighbour table on the vif's bridge say, plus the IPv6 link-local address its MAC implies.

Pure. An address several sources know is listed once, under the best (agent > lease > ARP >
EUI-64): the agent asks the guest itself, a lease is what the DHCP server handed out (the guest
may have dropped it), an ARP entry is what the host last saw on the wire.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

from vifscope.model import (
    AddressSource,
    DeclaredVif,
    Expectation,
    HostSnapshot,
    ObservedLink,
    VifAddress,
)

RANK = {source: i for i, source in enumerate(AddressSource)}  # enum order is precedence order
# Neighbour states that are not a sighting: a failed or unanswered resolution, a NOARP entry.
_NOT_SEEN = frozenset({"FAILED", "INCOMPLETE", "NOARP", "NONE"})


def eui64_link_local(mac: str | None) -> str | None:
    """fe80::/64 with the modified EUI-64 interface id (RFC 4291 app. A): the MAC split in
    two, ff:fe inserted, the universal/local bit (0x02 of the first octet) flipped.

    Spelled by hand (RFC 5952 form, as ``ipaddress`` prints it) because status derives one per
    vif: only the first group can be zero next to the prefix's zeros, and two of the four never
    are (they hold ff and fe).
    """
    o = _octets(mac)
    if o is None:
        return None
    g1, g2, g3, g4 = (o[0] ^ 0x02) << 8 | o[1], o[2] << 8 | 0xFF, 0xFE00 | o[3], o[4] << 8 | o[5]
    if g1 == 0:  # joins the zeros after fe80: "fe80::ff:fe00:1", not "fe80::0:ff:fe00:1"
        return f"fe80::{g2:x}:{g3:x}:{g4:x}"
    return f"fe80::{g1:x}:{g2:x}:{g3:x}:{g4:x}"


def _octets(mac: str | None) -> bytes | None:
    if not mac or len(mac) != 17 or mac[2::3] != ":::::":
        return None
    try:
        octets = bytes.fromhex(mac.replace(":", ""))
    except ValueError:
        return None
    if len(octets) != 6 or octets[0] & 1 or not any(octets):  # multicast or all-zero: no NIC has it
        return None
    return octets


_V4_NOT_GUEST = frozenset({0, 127}) | frozenset(range(224, 256))  # this-network, loopback, multicast+
_V6_UNSPECIFIED, _V6_LOOPBACK = bytes(16), bytes(15) + b"\x01"


def _canonical(ip: str) -> tuple[str, bytes] | None:
    """(address as inet_ntop spells it, packed) of a guest's unicast address; None for what
    names no guest (loopback, multicast, unspecified, not an address). inet_pton / inet_ntop,
    not ``ipaddress``: status canonicalises every observed address, ~10x faster this way."""
    text = ip.split("%")[0]
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    try:
        packed = socket.inet_pton(family, text)
    except OSError:
        return None
    if family == socket.AF_INET6:
        if packed[0] == 0xFF or packed in (_V6_UNSPECIFIED, _V6_LOOPBACK):
            return None
    elif packed[0] in _V4_NOT_GUEST:
        return None
    return socket.inet_ntop(family, packed), packed


def _host_devices(exp: Expectation, link: ObservedLink | None, actual: str | None) -> tuple[str | None, ...]:
    """Host links on which the host can have seen the guest: its bridge (declared, and the one
    the tap sits on now: an OVS bridge's internal port bears the bridge's name) or its lower."""
    here = actual[4:] if actual and actual.startswith("ovs:") else actual
    return (exp.bridge, here, exp.lower, link.lower if link else None, *exp.lower_pool)


def _networks(vif: DeclaredVif, exp: Expectation, snap: HostSnapshot) -> frozenset[str]:
    """libvirt networks whose leases are this vif's: its own, or the one owning its bridge (a
    type='bridge' vif on virbr0 gets its lease from that network's dnsmasq)."""
    names = {n.name for n in snap.networks if exp.bridge and n.bridge == exp.bridge}
    if exp.network is not None:
        names.add(exp.network.name)
    return frozenset(names)


def _sightings(
    mac: str, vif: DeclaredVif, exp: Expectation, link: ObservedLink | None, actual: str | None, snap: HostSnapshot
) -> Iterator[tuple[str, int | None, AddressSource]]:
    facts = snap.addresses
    for a in facts.agent_by_mac.get(mac, ()):
        if a.where == vif.domain:
            yield a.ip, a.prefix, AddressSource.AGENT
    leases = facts.leases_by_mac.get(mac)
    if leases:  # most MACs have none: the vif's networks are worked out only for those that do
        nets = _networks(vif, exp, snap)
        yield from ((le.ip, le.prefix, AddressSource.LEASE) for le in leases if le.network in nets)
    neighbors = facts.neighbors_by_mac.get(mac)
    if neighbors:
        devs = _host_devices(exp, link, actual)
        yield from ((n.ip, None, AddressSource.ARP) for n in neighbors if n.dev in devs and n.state not in _NOT_SEEN)


Ranked = dict[str, tuple[tuple[int, int, bytes], VifAddress]]  # address -> (sort key, the address)


def _observed(sightings: Iterator[tuple[str, int | None, AddressSource]]) -> Ranked:
    """Each address once, under its best source; the key orders by source, family, address."""
    best: Ranked = {}
    for ip, prefix, source in sightings:
        canon = _canonical(ip)
        if canon is None:
            continue
        text, packed = canon
        key = (RANK[source], len(packed), packed)
        seen = best.get(text)
        if seen is None or key < seen[0]:
            best[text] = (key, VifAddress(text, prefix, "ipv4" if len(packed) == 4 else "ipv6", source))
    return best


def vif_addresses(
    vif: DeclaredVif,
    exp: Expectation,
    link: ObservedLink | None = None,
    actual: str | None = None,
    snap: HostSnapshot | None = None,
) -> tuple[VifAddress, ...]:
    """The vif's addresses, best source first, then IPv4 before IPv6, then by address. Only a
    domain with a QEMU process has observed addresses (a shut-off guest's lease is history);
    the EUI-64 link-local is listed for every vif with a unicast MAC."""
    mac = vif.mac.lower() if vif.mac else ""
    local = eui64_link_local(mac)
    derived = (VifAddress(local, 64, "ipv6", AddressSource.EUI64),) if local else ()
    if snap is None or not mac or mac not in snap.addresses.macs or not vif.domain_state.has_taps:
        return derived
    best = _observed(_sightings(mac, vif, exp, link, actual, snap))
    ordered = tuple([entry[1] for entry in sorted(best.values())])  # keys differ: addresses never compared
    return ordered if local is None or local in best else (*ordered, *derived)  # derived: always last
