"""Whose vif is a flow's peer: by its address, else by its MAC; on this host (the bindings),
else on another fleet host (the vifs its agent reports). Pure.

The order is: this host's addresses, the fleet's addresses, this host's MACs, the fleet's
MACs. Addresses come first because the MAC of a routed flow is the router's (a router VM here
would otherwise take the name of a guest on another host). This host comes first because its
bindings are read now, the fleet's from agents a moment ago (and this host may be in the
inventory too). Where several fleet vifs claim the same address or MAC (a duplicate MAC on two
hosts, a domain defined on two), the running ones are preferred; if more than one is left the
peer is not named: the candidates are returned, for the report to say so rather than guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from vifscope.model import VifBinding
from vifscope.model.fleetvif import FleetPeerVif
from vifscope.model.flows import PeerName

Claims = dict[str, list[tuple[PeerName, bool]]]  # address or MAC -> (name, running) of each claimant


@dataclass(frozen=True)
class PeerNames:
    """This host's vifs by guest address and MAC; the fleet's by the same, each with every claimant."""

    by_address: dict[str, PeerName] = field(default_factory=dict)
    by_mac: dict[str, PeerName] = field(default_factory=dict)
    fleet_by_address: dict[str, tuple[PeerName, ...]] = field(default_factory=dict)
    fleet_by_mac: dict[str, tuple[PeerName, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, bindings: Iterable[VifBinding], fleet: Iterable[FleetPeerVif] = ()) -> PeerNames:
        names = cls()
        for b in bindings:
            mac = b.vif.mac.lower() if b.vif.mac else None
            name = PeerName(b.vif.domain, mac)
            if mac:
                names.by_mac[mac] = name
            for a in b.addresses:
                names.by_address[a.address] = name
        by_address: Claims = {}
        by_mac: Claims = {}
        for v in fleet:
            name = PeerName(v.domain, v.mac, v.host)
            if v.mac:
                by_mac.setdefault(v.mac.lower(), []).append((name, v.active))
            for address in v.addresses:
                by_address.setdefault(address, []).append((name, v.active))
        names.fleet_by_address.update((k, _preferred(c)) for k, c in by_address.items())
        names.fleet_by_mac.update((k, _preferred(c)) for k, c in by_mac.items())
        return names

    def lookup(self, address: str | None, mac: str) -> tuple[PeerName, ...]:
        """() when nobody's; one name; or, when fleet vifs disagree, every candidate."""
        if address is not None:
            if address in self.by_address:
                return (self.by_address[address],)
            if address in self.fleet_by_address:
                return self.fleet_by_address[address]
        mac = mac.lower()
        if mac in self.by_mac:
            return (self.by_mac[mac],)
        return self.fleet_by_mac.get(mac, ())

    def name(self, address: str | None, mac: str) -> str | None:
        """The peer's label (``domain`` here, ``host/domain`` on the fleet); None if unknown or ambiguous."""
        found = self.lookup(address, mac)
        return found[0].label if len(found) == 1 else None


def _preferred(claims: list[tuple[PeerName, bool]]) -> tuple[PeerName, ...]:
    """The running claimants (all of them if none runs), each once, in a stable order."""
    running = [n for n, active in claims if active]
    chosen = running or [n for n, _ in claims]
    return tuple(sorted(set(chosen), key=lambda n: (n.host or "", n.domain, n.mac or "")))
