"""Guest addresses per vif MAC, from the best source that knows them: the guest agent, then
the libvirt network's DHCP leases, then the host's neighbour (ARP/NDP) table. Pure: also the
conversions of what libvirt hands back (lease dicts, the agent's interface dict).

``merge_guest_addresses`` is doctor's view (each MAC's best source only, for ip.duplicate);
status lists every address with its own best source (bind.addresses)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

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
    return [
        GuestAddress(le.mac, le.ip, AddressSource.LEASE, le.network, le.prefix) for le in leases if le.mac and le.ip
    ]


def parse_lease(net: str, raw: Mapping[str, Any]) -> DhcpLease:
    """One entry of virNetworkGetDHCPLeases (a dict with libvirt's key names)."""
    return DhcpLease(
        network=net,
        mac=str(raw.get("mac") or "").lower(),
        ip=str(raw.get("ipaddr") or ""),
        prefix=raw.get("prefix"),
        hostname=raw.get("hostname"),
        expiry=raw.get("expirytime"),
    )


def parse_agent_interfaces(domain: str, ifaces: Mapping[str, Any]) -> Iterator[GuestAddress]:
    """virDomainInterfaceAddresses(SRC_AGENT): {guest ifname: {"hwaddr", "addrs": [{"type",
    "addr", "prefix"}]}}. The guest's loopback has no MAC and names no vif."""
    for info in ifaces.values():
        mac = str(info.get("hwaddr") or "").lower()
        if not mac or mac == "00:00:00:00:00:00":
            continue
        for addr in info.get("addrs") or ():
            if addr.get("addr"):
                prefix = addr.get("prefix")
                yield GuestAddress(mac, str(addr["addr"]), AddressSource.AGENT, domain, prefix)


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
    by_source: dict[AddressSource, list[GuestAddress]] = {  # in priority order
        AddressSource.AGENT: list(agent),
        AddressSource.LEASE: _from_leases(leases),
        AddressSource.ARP: _from_neighbors(neighbors),
    }
    out: list[GuestAddress] = []
    for mac in sorted(set(macs)):
        for found_by in by_source.values():
            found = {a.ip: a for a in found_by if a.mac == mac and _usable(a.ip)}
            if found:
                out.extend(found[ip] for ip in sorted(found))
                break
    return tuple(out)
