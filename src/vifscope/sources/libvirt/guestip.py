"""Guest addresses per vif MAC, from the best source that knows them: the guest agent, then
the libvirt network's DHCP leases, then the host's neighbour (ARP/NDP) table. Pure."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from vifscope.model import AddressSource, DhcpLease, GuestAddress, NeighEntry

_USELESS_STATES = frozenset({"FAILED", "INCOMPLETE", "NOARP"})


def _usable(ip: str) -> bool:
    """Link-local and multicast addresses say nothing about who owns an address."""
    try:
        addr = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return False
    return not (addr.is_link_local or addr.is_multicast or addr.is_unspecified)


def _from_leases(leases: Iterable[DhcpLease]) -> list[GuestAddress]:
    return [GuestAddress(le.mac, le.ip, AddressSource.LEASE, le.network) for le in leases if le.mac and le.ip]


def _from_neighbors(neighbors: Iterable[NeighEntry]) -> list[GuestAddress]:
    return [
        GuestAddress(n.mac, n.ip, AddressSource.ARP, n.dev)
        for n in neighbors
        if n.mac and n.state not in _USELESS_STATES
    ]


def merge_guest_addresses(
    macs: Iterable[str],
    agent: Iterable[GuestAddress] = (),
    leases: Iterable[DhcpLease] = (),
    neighbors: Iterable[NeighEntry] = (),
) -> tuple[GuestAddress, ...]:
    """For each vif MAC, the addresses of its best source (agent > lease > ARP), sorted."""
    by_source: dict[AddressSource, list[GuestAddress]] = {
        AddressSource.AGENT: list(agent),
        AddressSource.LEASE: _from_leases(leases),
        AddressSource.ARP: _from_neighbors(neighbors),
    }
    out: list[GuestAddress] = []
    for mac in sorted(set(macs)):
        for source in AddressSource:  # enum order is priority order
            found = {a.ip: a for a in by_source[source] if a.mac == mac and _usable(a.ip)}
            if found:
                out.extend(found[ip] for ip in sorted(found))
                break
    return tuple(out)
