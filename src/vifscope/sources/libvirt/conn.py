"""Declared state from libvirt: every domain's live XML and every virtual network.

The only module that touches libvirt-python. virDomain / virNetwork objects are turned
into model types here and never leave. The connection is read-only: vifscope never needs
write access to look.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from vifscope.model import DeclaredVif, DhcpLease, DomainState, InterfaceExtras, LibvirtNetwork, SourceError
from vifscope.sources.libvirt.domxml import DomainXmlError, ParsedDomain, parse_domain, parse_domain_xml
from vifscope.sources.libvirt.guestip import parse_lease
from vifscope.sources.libvirt.netxml import NetworkXmlError, parse_network_xml

DEFAULT_URI = "qemu:///system"

# virDomainState numbers (libvirt.VIR_DOMAIN_*), stable ABI.
_STATES: dict[int, DomainState] = {
    0: DomainState.NOSTATE,
    1: DomainState.RUNNING,
    2: DomainState.BLOCKED,
    3: DomainState.PAUSED,
    4: DomainState.SHUTDOWN,
    5: DomainState.SHUTOFF,
    6: DomainState.CRASHED,
    7: DomainState.PMSUSPENDED,
}


class LibvirtUnavailable(RuntimeError):
    """Could not connect to libvirt at all; ``hint`` says how to fix it."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class DomainInfo:
    """What doctor's runtime facts need about one domain (``<domain type=>``, active or not)."""

    name: str
    uuid: str
    virt_type: str
    active: bool


# Domain states with a QEMU process whose pid file the runtime facts may read.
def domain_state(code: int) -> DomainState:
    """libvirt's virDomainState number as a DomainState (NOSTATE for one this version lacks)."""
    return _STATES.get(code, DomainState.NOSTATE)


ACTIVE_STATES = frozenset({
    DomainState.RUNNING, DomainState.BLOCKED, DomainState.PAUSED, DomainState.SHUTDOWN, DomainState.PMSUSPENDED,
})  # fmt: skip


@dataclass(frozen=True)
class LibvirtState:
    """What libvirt declares, plus per-object errors that did not stop the read.

    ``domains`` and ``extras`` come from the same parse of each domain's XML as ``vifs``;
    only doctor's deep facts use them.
    """

    hostname: str
    vifs: tuple[DeclaredVif, ...]
    networks: tuple[LibvirtNetwork, ...]
    errors: tuple[SourceError, ...]
    domains: tuple[DomainInfo, ...] = ()
    extras: tuple[InterfaceExtras, ...] = ()
    leases: tuple[DhcpLease, ...] = ()  # every active network's DHCP leases


@dataclass(frozen=True)
class DomainRead:
    """One domain as the declared side keeps it."""

    info: DomainInfo
    parsed: ParsedDomain


def state_of(
    reads: list[DomainRead],
    hostname: str,
    nets: tuple[LibvirtNetwork, ...],
    errors: list[SourceError],
    leases: tuple[DhcpLease, ...] = (),
) -> LibvirtState:
    """The LibvirtState of domains read in name order."""
    return LibvirtState(
        hostname,
        tuple(v for r in reads for v in r.parsed.vifs),
        nets,
        tuple(errors),
        tuple(r.info for r in reads),
        tuple(e for r in reads for e in r.parsed.extras),
        leases,
    )


def resolve_uri(uri: str | None) -> str:
    """``-c`` wins, then ``LIBVIRT_DEFAULT_URI`` (as virsh does), then qemu:///system."""
    return uri or os.environ.get("LIBVIRT_DEFAULT_URI") or DEFAULT_URI


_DAEMON_GONE = (
    "no such file",
    "connection refused",
    "end of file",
    "connection reset",
    "connection closed",
    "keepalive timeout",
    "cannot recv data",
    "cannot write data",
    "broken pipe",
    "client socket is closed",
    "not connected",
)


def hint_for(uri: str, message: str) -> str:
    if "no answer within" in message:  # our own deadline: the socket accepted, nothing answered
        return f"is libvirtd hung or overloaded? 'virsh -c {uri} list' should answer within a second"
    # Socket missing / refused (daemon not running), or the connection dropped (daemon
    # stopped or restarted under us: libvirt reports EOF / reset on the open connection).
    if any(sign in message.lower() for sign in _DAEMON_GONE):
        return (
            "is libvirtd running? start it with 'libvirtd -d' (no systemd) or "
            "'systemctl start libvirtd', or pick another URI with -c"
        )
    if "ermission denied" in message:
        return "run as root or as a member of the 'libvirt' group"
    return f"check that '{uri}' is a valid libvirt URI (virsh -c '{uri}' list should work)"


def connect_read_only(uri: str) -> Any:
    """A read-only libvirt connection (the caller closes it). Raises LibvirtUnavailable."""
    try:
        import libvirt
    except ImportError as exc:
        raise LibvirtUnavailable(
            "libvirt-python is not installed", "install vifscope's dependencies (make setup)"
        ) from exc
    # libvirt prints every error to stderr by default; we report errors ourselves.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    try:
        return libvirt.openReadOnly(uri)
    except libvirt.libvirtError as exc:
        msg = str(exc).strip()
        raise LibvirtUnavailable(f"cannot connect to libvirt at {uri}: {msg}", hint_for(uri, msg)) from exc


@contextmanager
def connect(uri: str) -> Iterator[Any]:
    """A read-only libvirt connection, closed on exit. Raises LibvirtUnavailable."""
    conn = connect_read_only(uri)
    try:
        yield conn
    finally:
        conn.close()


def domain_vifs(dom: Any) -> tuple[DeclaredVif, ...]:
    state_code = dom.state()[0]
    state = _STATES.get(state_code, DomainState.NOSTATE)
    # XMLDesc(0) of a running domain is its live XML (targets, resolved network bridges).
    return parse_domain_xml(dom.XMLDesc(0), state, name=dom.name(), uuid=dom.UUIDString())


def domains_with_state(conn: Any) -> list[tuple[Any, DomainState]]:
    """Every domain and its state, sorted by name.

    One getAllDomainStats(STATE) call instead of listAllDomains + one virDomainGetState per
    domain: over libvirtd's socket each call is a round trip (0.14 s of 1,250 at 5,000 vifs).
    Drivers without the stats API fall back to the per-domain calls.
    """
    import libvirt

    try:
        stats = conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE)
        found = [(dom, _STATES.get(int(st.get("state.state", 0)), DomainState.NOSTATE)) for dom, st in stats]
    except libvirt.libvirtError as exc:
        if exc.get_error_code() not in (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_INVALID_ARG):
            raise
        found = [(dom, _STATES.get(dom.state()[0], DomainState.NOSTATE)) for dom in conn.listAllDomains(0)]
    return sorted(found, key=lambda pair: str(pair[0].name()))


def _fetch_xml(dom: Any) -> str | Exception:
    import libvirt

    try:
        return str(dom.XMLDesc(0))
    except libvirt.libvirtError as exc:  # handed back: recorded as that domain's error
        failed: Exception = exc
        return failed


# XMLDesc calls in flight at once: the round trips overlap (libvirtd serves up to
# max_client_requests=5 per client at a time and queues the rest, so more gains little).
XML_FETCHERS = 8


def fetch_xmls(doms: list[Any]) -> list[str | Exception]:
    """Each domain's live XML (or why not), in order; a few threads overlap the round trips."""
    if len(doms) < 2:
        return [_fetch_xml(dom) for dom in doms]
    with ThreadPoolExecutor(max_workers=XML_FETCHERS, thread_name_prefix="vifscope-xml") as pool:
        return list(pool.map(_fetch_xml, doms))


def parse_read(
    name: str, uuid: str, state: DomainState, xml: str | Exception, errors: list[SourceError], deep: bool = False
) -> DomainRead | None:
    """One domain from its fetched XML (``deep``: with doctor's interface extras); None (and
    an error entry) when unreadable."""
    if isinstance(xml, Exception):
        errors.append(SourceError("libvirt-domain", f"domain {name}: {str(xml).strip()}"))
        return None
    parse = partial(parse_domain, xml, state, name=name, uuid=uuid, extras=deep)
    parsed: ParsedDomain | None = _guarded("libvirt-domain", f"domain {name}", parse, errors)
    if parsed is None:
        return None
    return DomainRead(DomainInfo(name, uuid, parsed.virt_type, state in ACTIVE_STATES), parsed)


def _read_domains(conn: Any, errors: list[SourceError], deep: bool) -> list[DomainRead]:
    """Every domain, in name order.

    All XML is fetched first, then parsed here: parsing while the fetchers run makes every
    thread fight over the GIL and costs more than it overlaps.
    """
    rows = [(dom.name(), dom.UUIDString(), state, dom) for dom, state in domains_with_state(conn)]
    xmls = fetch_xmls([dom for *_, dom in rows])
    pairs = zip(rows, xmls, strict=True)
    reads = (parse_read(name, uuid, state, xml, errors, deep) for (name, uuid, state, _), xml in pairs)
    return [r for r in reads if r is not None]


def _guarded(source: str, what: str, fn: Callable[[], Any], errors: list[SourceError]) -> Any:
    """Run one per-object read; a vanished or odd object is an error entry, not a crash.

    Recorded under its own source name ("libvirt-domain" / "libvirt-network"), not "libvirt":
    one domain vanishing mid-read must not turn the whole answer into exit 3.
    """
    import libvirt

    try:
        return fn()
    except (libvirt.libvirtError, DomainXmlError, NetworkXmlError) as exc:
        errors.append(SourceError(source, f"{what}: {str(exc).strip()}"))
        return None


def read_network(net: Any) -> LibvirtNetwork:
    return read_network_leases(net)[0]


def read_network_leases(net: Any) -> tuple[LibvirtNetwork, tuple[DhcpLease, ...]]:
    """The network and its DHCP leases: one virNetworkGetDHCPLeases call, which status needs
    anyway for the lease count and which gives every vif's lease address at no extra cost."""
    import libvirt

    active = bool(net.isActive())
    leases: tuple[DhcpLease, ...] | None = None
    if active:
        try:
            leases = tuple(parse_lease(net.name(), raw) for raw in net.DHCPLeases())
        except libvirt.libvirtError:
            leases = None  # no dnsmasq lease file (no DHCP): unknown, not an error
    count = len(leases) if leases is not None else None
    parsed = parse_network_xml(net.XMLDesc(0), active=active, autostart=bool(net.autostart()), leases=count)
    return parsed, leases or ()


def read_libvirt(uri: str, *, deep: bool = False) -> LibvirtState:
    """Every domain's interfaces and every network (``deep``: also what doctor's facts need
    of each domain, from the same parse). Raises LibvirtUnavailable."""
    with connect(uri) as conn:
        return read_state(conn, uri, deep=deep)


def read_state(conn: Any, uri: str, *, deep: bool = False) -> LibvirtState:
    """``read_libvirt`` on an open connection (a caller with more to read on it)."""
    import libvirt

    errors: list[SourceError] = []
    try:
        hostname = str(conn.getHostname())
        reads = _read_domains(conn, errors, deep)
    except libvirt.libvirtError as exc:
        raise LibvirtUnavailable(f"libvirt at {uri}: {exc}", hint_for(uri, str(exc))) from exc
    nets, leases = read_networks(conn, errors)
    return state_of(reads, hostname, nets, errors, leases)


def read_networks(conn: Any, errors: list[SourceError]) -> tuple[tuple[LibvirtNetwork, ...], tuple[DhcpLease, ...]]:
    """Every network, by name, and their leases; per-network failures become entries in ``errors``."""
    import libvirt

    try:
        all_nets = conn.listAllNetworks(0)
    except libvirt.libvirtError as exc:
        # Drivers without networks (some remote/test setups): say so, keep the domains.
        errors.append(SourceError("libvirt-network", str(exc).strip()))
        return (), ()
    nets: list[LibvirtNetwork] = []
    leases: list[DhcpLease] = []
    for net in sorted(all_nets, key=lambda n: n.name()):
        read = _guarded("libvirt-network", f"network {net.name()}", partial(read_network_leases, net), errors)
        if read is not None:
            nets.append(read[0])
            leases.extend(read[1])
    return tuple(nets), tuple(leases)
