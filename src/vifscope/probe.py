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

import argparse
import ipaddress
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from vifscope import report
from vifscope.model import HostSnapshot, VifBinding, VifStatus
from vifscope.render import make_console
from vifscope.sources.probe_net import (
    ProbeNames,
    ProbePort,
    ProbeSetupError,
    lease_addresses,
    neighbour_addresses,
    probe_names,
    sweep_stale,
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


def _valid_option(text: str) -> bool:
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
def _signals(handler: Handler, sigs: Sequence[signal.Signals]) -> Iterator[None]:
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


def _raise(signum: int, _frame: Any) -> None:
    raise ProbeInterrupted(signum)


@contextmanager
def _deferred_signals() -> Iterator[None]:
    """Cleanup must finish: a signal arriving during it is held, then raised once it is done."""
    held: list[int] = []
    with _signals(lambda signum, _frame: held.append(signum), SIGNALS):
        yield
    if held:
        raise ProbeInterrupted(held[0])


# --- diagnosis and report ---------------------------------------------------------------------

_FIX_HINT = "vifscope doctor --fix re-plugs it"
DIAGNOSIS: dict[str, str] = {
    "bridge": "the vif's bridge is missing or down: nothing on it can be reached",
    "probe-port": "the bridge does not forward on a new port: the guest's port is no better",
    "address": "the guest's address is unknown, so it cannot be probed (pass --address A.B.C.D/NN)",
    "arp": "the guest does not answer ARP on its bridge: its NIC is not up or not addressed as expected",
    "icmp": "ARP works but ping does not: a filter drops it (nwfilter, host firewall with br_netfilter, guest)",
}


def diagnose(p: VifProbe) -> str:
    """One line: the failing hop's meaning, sharpened by the passive binding verdict."""
    failed, b = p.failed_hop, p.binding
    if failed is None:
        return f"reachable: {p.address.ip if p.address else '?'} answers ARP and ping through {b.expect.bridge}"
    if failed.name in ("arp", "icmp") and b.status != VifStatus.BOUND:
        return f"{failed.name} fails because the vif is {b.status.value}: {b.detail} ({_FIX_HINT})"
    return DIAGNOSIS[failed.name]


def probe_dict(p: VifProbe) -> dict[str, Any]:
    b, failed = p.binding, p.failed_hop
    return {
        "domain": b.vif.domain,
        "index": b.vif.index,
        "mac": b.vif.mac,
        "target": b.vif.target,
        "type": b.vif.type,
        "bridge": b.expect.bridge,
        "attach": b.expect.attach,
        "binding": {"status": b.status.value, "problems": [x.value for x in b.problems], "detail": b.detail},
        "address": f"{p.address.ip}/{p.address.prefix}" if p.address else None,
        "address_source": p.address.source if p.address else None,
        "probe_address": p.probe_address,
        "hops": [{"hop": h.name, "ok": h.ok, "detail": h.detail} for h in p.hops],
        "failed_hop": failed.name if failed else None,
        "reachable": failed is None,
        "diagnosis": diagnose(p),
        "leftover": list(p.leftover),
    }


def _not_probed(b: VifBinding) -> dict[str, Any]:
    why = (
        "the domain is not running"
        if not b.vif.domain_state.has_taps
        else f"{b.expect.attach} vifs are not probed (only Linux and OVS bridges): {b.detail}"
    )
    return {"index": b.vif.index, "mac": b.vif.mac, "type": b.vif.type, "reason": why}


def _render(doc: dict[str, Any]) -> None:
    from rich.table import Table

    out = make_console()
    for v in doc["vifs"]:
        table = Table(title=f"{v['domain']} #{v['index']} {v['mac']} on {v['bridge']}", header_style="bold")
        for col in ("HOP", "RESULT", "DETAIL"):
            table.add_column(col, overflow="fold")
        for h in v["hops"]:
            mark = {True: "[green]ok[/]", False: "[bold red]FAIL[/]", None: "[dim]-[/]"}[h["ok"]]
            table.add_row(h["hop"], mark, h["detail"])
        out.print(table)
        out.print(f"binding: {v['binding']['status']} ({v['binding']['detail']})", highlight=False, markup=False)
        out.print(f"diagnosis: {v['diagnosis']}", highlight=False, markup=False)
    for n in doc["not_probed"]:
        out.print(f"not probed: #{n['index']} {n['mac']} ({n['type']}): {n['reason']}", highlight=False, markup=False)


def _fail(message: str, hint: str, code: int) -> int:
    err = make_console(stderr=True)
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    err.print(f"  hint: {hint}", highlight=False)
    return code


def _probe_all(chosen: Sequence[VifBinding], snap: HostSnapshot, option: str | None) -> list[VifProbe]:
    names = probe_names(os.getpid())
    # SIGINT stays KeyboardInterrupt; SIGTERM / SIGHUP become ProbeInterrupted: finally blocks run.
    with _signals(_raise, (signal.SIGTERM, signal.SIGHUP)):
        return [probe_vif(b, snap, names, option) for b in chosen]


def run_probe(args: argparse.Namespace, snapshot: HostSnapshot, bindings: Sequence[VifBinding]) -> int:
    """Entry point for ``doctor DOMAIN --probe``. Exit 0 every probed vif answers, 1 one does not,
    2 unknown domain or nothing to probe, 3 a needed source or privilege is missing."""
    name = args.probe_domain
    mine = [b for b in bindings if name in (b.vif.domain, b.vif.domain_uuid)]
    if any(snapshot.failed(s) for s in report.REQUIRED_SOURCES):
        err = next(e for e in snapshot.errors if e.source in report.REQUIRED_SOURCES)
        return _fail(err.error, err.hint or "fix the source first", report.EXIT_SOURCE)
    if not mine:
        return _fail(f"no domain {name} (or it has no interfaces)", "see 'vifscope status'", report.EXIT_USAGE)
    probeable = [b for b in mine if b.vif.domain_state.has_taps and b.expect.attach in ("linux-bridge", "ovs-bridge")]
    if not probeable:
        return _fail(
            f"{name} has no running bridge or network vif to probe", "see 'vifscope status'", report.EXIT_USAGE
        )
    option = getattr(args, "address", None)
    if option and not _valid_option(option):
        return _fail(f"--address {option} is not an IPv4 address", "e.g. --address 192.0.2.10/24", report.EXIT_USAGE)
    if os.geteuid() != 0:
        return _fail("the probe creates a network namespace and a veth", "run it as root", report.EXIT_SOURCE)
    swept = sweep_stale()
    try:
        results = _probe_all(probeable, snapshot, option)
    except (KeyboardInterrupt, ProbeInterrupted) as exc:
        signum = exc.signum if isinstance(exc, ProbeInterrupted) else signal.SIGINT
        make_console(stderr=True).print(f"probe interrupted ({signal.Signals(signum).name}); removed what it made")
        return 128 + int(signum)
    doc = {
        "domain": mine[0].vif.domain,
        "uuid": mine[0].vif.domain_uuid,
        "vifs": [probe_dict(p) for p in results],
        "not_probed": [_not_probed(b) for b in mine if b not in probeable],
        "swept": list(swept),
        "source_errors": report.errors_list(snapshot.errors),
    }
    if args.json:
        json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        _render(doc)
    return report.EXIT_OK if all(p.failed_hop is None for p in results) else report.EXIT_PROBLEMS
