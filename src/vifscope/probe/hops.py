"""``vifscope doctor DOMAIN --probe``: can this guest be reached? Answered hop by hop.

For each bridge / network vif of the domain: plug a temporary veth from a private namespace
into the vif's bridge (an OVS port on OVS bridges), find the guest's address (``--address``,
else its DHCP lease, else the host's ARP table), take a free address next to it (checked with
an ARP probe first, so no one's address is stolen), then ARP and ping the guest. Hops, in
order: bridge (exists, up) -> probe-port (the bridge forwards on a new port) -> address ->
arp (the guest's MAC answers) -> icmp. The first failing hop, with the passive binding verdict,
makes the diagnosis. Everything made is removed in ``finally``, also on SIGINT/SIGTERM/SIGHUP.
"""

from __future__ import annotations

import ipaddress
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from vifscope.model import HostSnapshot, VifBinding
from vifscope.sources.probe_net import (
    ProbeNames,
    ProbePort,
    ProbeSetupError,
    lease_addresses,
    neighbour_addresses,
)

HOPS = ("bridge", "probe-port", "address", "arp", "icmp")
DEFAULT_PREFIX = 24  # when nothing says how big the guest's subnet is
ARP_SECONDS = 2.0
DAD_SECONDS = 0.7


class ProbeInterrupted(Exception):
    """SIGTERM / SIGHUP arrived mid-probe (SIGINT arrives as KeyboardInterrupt)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass(frozen=True)
class Hop:
    name: str
    ok: bool | None  # None: not tried, an earlier hop failed
    detail: str


@dataclass(frozen=True)
class GuestAddress:
    ip: str
    prefix: int
    source: str  # option | lease | arp


@dataclass(frozen=True)
class VifProbe:
    binding: VifBinding
    hops: tuple[Hop, ...]
    address: GuestAddress | None = None
    probe_address: str | None = None
    leftover: tuple[str, ...] = ()

    @property
    def failed_hop(self) -> Hop | None:
        return next((h for h in self.hops if h.ok is False), None)


def _hops(done: Sequence[Hop]) -> tuple[Hop, ...]:
    """Pad with not-tried hops after the last one tried."""
    names = {h.name for h in done}
    return (*done, *(Hop(n, None, "not tried: an earlier hop failed") for n in HOPS if n not in names))


def bridge_hop(b: VifBinding, snap: HostSnapshot) -> Hop:
    name, ovs = b.expect.bridge or "", b.expect.attach == "ovs-bridge"
    if ovs:
        ok = name in snap.ovs_bridges
        return Hop("bridge", ok, f"OVS bridge {name} {'exists' if ok else 'does not exist'}")
    link = snap.links_by_name.get(name)
    if link is None or link.kind != "bridge":
        return Hop("bridge", False, f"bridge {name} does not exist")
    return Hop("bridge", link.admin_up, f"bridge {name} is {'up' if link.admin_up else 'admin down'}")


def _parse_option(text: str) -> GuestAddress:
    iface = ipaddress.ip_interface(text if "/" in text else f"{text}/{DEFAULT_PREFIX}")
    return GuestAddress(str(iface.ip), iface.network.prefixlen, "option")


def valid_address_option(text: str) -> bool:
    try:
        return ipaddress.ip_interface(text).version == 4
    except ValueError:
        return False


def _network_prefix(b: VifBinding, ip: str) -> int | None:
    """The prefix of the libvirt network's <ip> that holds ``ip``."""
    for cidr in b.expect.network.addresses if b.expect.network else ():
        net = ipaddress.ip_interface(cidr).network
        if ipaddress.ip_address(ip) in net:
            return net.prefixlen
    return None


def find_address(b: VifBinding, uri: str, option: str | None) -> GuestAddress | None:
    """--address, else the DHCP lease of the vif's MAC, else the host's neighbour table."""
    given = _parse_option(option) if option else None
    # An address outside the vif's own libvirt network is meant for another vif of the domain.
    has_ip = bool(b.expect.network and b.expect.network.addresses)
    if given is not None and (not has_ip or _network_prefix(b, given.ip) is not None):
        return given
    mac, net = b.vif.mac or "", b.expect.network
    for ip, prefix in lease_addresses(uri, net.name, mac) if net and mac else ():
        return GuestAddress(ip, prefix or _network_prefix(b, ip) or DEFAULT_PREFIX, "lease")
    for ip in neighbour_addresses(mac) if mac else ():
        return GuestAddress(ip, _network_prefix(b, ip) or DEFAULT_PREFIX, "arp")
    return None


def _candidates(guest: GuestAddress, b: VifBinding) -> Iterator[str]:
    """Addresses from the top of the guest's subnet down, skipping the guest and the network's own."""
    net = ipaddress.ip_network(f"{guest.ip}/{guest.prefix}", strict=False)
    taken = {
        guest.ip,
        *(str(ipaddress.ip_interface(a).ip) for a in (b.expect.network.addresses if b.expect.network else ())),
    }
    top = int(net.broadcast_address) - 1 if net.prefixlen < 31 else int(net.broadcast_address)
    for n in range(top, max(int(net.network_address), top - 16), -1):
        if str(ipaddress.ip_address(n)) not in taken:
            yield str(ipaddress.ip_address(n))


def pick_source(port: ProbePort, guest: GuestAddress, b: VifBinding) -> str | None:
    """A free address (no one answers an ARP probe for it) in the guest's subnet, "a.b.c.d/nn"."""
    for ip in _candidates(guest, b):
        if not port.arp(ip, "0.0.0.0", DAD_SECONDS):
            return f"{ip}/{guest.prefix}"
    return None


def _port_hop(port: ProbePort) -> Hop:
    ok, state = port.wait_forwarding()
    held = state in ("listening", "learning", "blocking")
    stp = " (STP: a new port forwards only after 2x forward delay; a guest's port waits as long)" if held else ""
    return Hop("probe-port", ok, f"probe port {port.names.host_if} on {port.bridge}: {state}{stp}")


def _arp_hop(port: ProbePort, b: VifBinding, guest: GuestAddress, src: str) -> Hop:
    macs = port.arp(guest.ip, src.split("/")[0], ARP_SECONDS)
    mine = (b.vif.mac or "").lower()
    if not macs:
        return Hop("arp", False, f"no ARP answer for {guest.ip} within {ARP_SECONDS:.0f} s")
    if mine not in macs:
        return Hop("arp", False, f"{guest.ip} is answered by {', '.join(macs)}, not by this vif's MAC {mine}")
    extra = f" (also answered by {', '.join(m for m in macs if m != mine)}: address conflict)" if len(macs) > 1 else ""
    return Hop("arp", len(macs) == 1, f"{guest.ip} is at {mine}{extra}")


def _icmp_hop(port: ProbePort, guest: GuestAddress) -> Hop:
    res = port.ping(guest.ip)
    rtt = f", avg {res.rtt_ms:.1f} ms" if res.rtt_ms is not None else ""
    return Hop("icmp", res.received > 0, f"ping {guest.ip}: {res.received}/{res.sent} replies{rtt}")


def _active_hops(port: ProbePort, b: VifBinding, guest: GuestAddress | None) -> tuple[list[Hop], str | None]:
    hops = [_port_hop(port)]
    if guest is None:
        return [*hops, Hop("address", False, "guest address unknown (no lease, no ARP entry): pass --address")], None
    src = pick_source(port, guest, b)
    if src is None:
        return [*hops, Hop("address", False, f"no free address near {guest.ip}/{guest.prefix} for the probe")], None
    port.add_address(src)
    hops.append(Hop("address", True, f"guest {guest.ip}/{guest.prefix} (from {guest.source}); probe uses {src}"))
    hops.append(_arp_hop(port, b, guest, src))
    if hops[-1].ok:
        hops.append(_icmp_hop(port, guest))
    return hops, src


def probe_vif(b: VifBinding, snap: HostSnapshot, names: ProbeNames, option: str | None) -> VifProbe:
    """Every hop for one vif; the probe's namespace and port exist only inside this call."""
    first = bridge_hop(b, snap)
    if not first.ok:
        return VifProbe(b, _hops([first]))
    guest = find_address(b, snap.uri, option)
    port = ProbePort(names, b.expect.bridge or "", ovs=b.expect.attach == "ovs-bridge")
    try:
        port.open()
        hops, src = _active_hops(port, b, guest)
        result = VifProbe(b, _hops([first, *hops]), guest, src)
    except ProbeSetupError as exc:
        result = VifProbe(b, _hops([first, Hop("probe-port", False, str(exc))]), guest)
    finally:
        with _deferred_signals():
            leftover = tuple(port.close())
    return replace(result, leftover=leftover)


SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
Handler = Callable[[int, Any], None]


@contextmanager
def signal_handlers(handler: Handler, sigs: Sequence[signal.Signals]) -> Iterator[None]:
    """Install ``handler`` for ``sigs`` for a while (only the main thread may set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, handler) for s in sigs}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def raise_interrupted(signum: int, _frame: Any) -> None:
    raise ProbeInterrupted(signum)


@contextmanager
def _deferred_signals() -> Iterator[None]:
    """Cleanup must finish: a signal arriving during it is held, then raised once it is done."""
    held: list[int] = []
    with signal_handlers(lambda signum, _frame: held.append(signum), SIGNALS):
        yield
    if held:
        raise ProbeInterrupted(held[0])
