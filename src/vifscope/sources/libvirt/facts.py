"""Deep facts from libvirt (read-only connection): nwfilter bindings and definitions, DHCP
leases per network, each domain's type and interface extras, guest-agent addresses.

Separate from libvirt_src.py on purpose: ``status`` must stay one fast read; only ``doctor``
asks for these. Every per-object failure is an error entry, never a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from vifscope.model import (
    DhcpLease,
    DomainState,
    GuestAddress,
    NwfilterBinding,
    NwfilterDef,
    SourceError,
)
from vifscope.sources.libvirt.conn import ACTIVE_STATES, connect, domains_with_state
from vifscope.sources.libvirt.factxml import (
    FactXmlError,
    parse_binding_xml,
    parse_network_port_isolated,
    parse_nwfilter_xml,
)
from vifscope.sources.libvirt.guestip import parse_agent_interfaces, parse_lease

T = TypeVar("T")
AGENT_SOURCE = 1  # VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT


@dataclass
class LibvirtFacts:
    """Scratch result of one read (mutable while filled, then handed to facts.py)."""

    bindings: list[NwfilterBinding] | None = None
    filters: list[NwfilterDef] | None = None
    leases: list[DhcpLease] = field(default_factory=list)
    isolated_networks: dict[str, bool] = field(default_factory=dict)
    active_networks: list[str] = field(default_factory=list)
    agent: list[GuestAddress] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    agent_denied: bool = False
    errors: list[SourceError] = field(default_factory=list)


def _guard(out: LibvirtFacts, what: str, fn: Callable[[], T]) -> T | None:
    import libvirt

    try:
        return fn()
    except (libvirt.libvirtError, FactXmlError) as exc:
        out.errors.append(SourceError("libvirt-facts", f"{what}: {str(exc).strip()}"))
        return None


def _binding(obj: Any) -> NwfilterBinding:
    return parse_binding_xml(obj.XMLDesc(0))


def _filter(obj: Any) -> NwfilterDef:
    return parse_nwfilter_xml(obj.XMLDesc(0))


def _nwfilters(conn: Any, out: LibvirtFacts) -> None:
    bindings: list[Any] | None = _guard(out, "nwfilter bindings", conn.listAllNWFilterBindings)
    if bindings is not None:
        parsed = (_guard(out, "nwfilter binding", partial(_binding, b)) for b in bindings)
        out.bindings = [b for b in parsed if b is not None]
    filters: list[Any] | None = _guard(out, "nwfilters", conn.listAllNWFilters)
    if filters is not None:
        defs = (_guard(out, "nwfilter", partial(_filter, f)) for f in filters)
        out.filters = [f for f in defs if f is not None]


def _network(net: Any, out: LibvirtFacts) -> None:
    import libvirt

    name = net.name()
    out.isolated_networks[name] = parse_network_port_isolated(net.XMLDesc(0))
    if not net.isActive():
        return
    out.active_networks.append(name)
    try:
        out.leases.extend(parse_lease(name, raw) for raw in net.DHCPLeases())
    except libvirt.libvirtError:
        return  # no DHCP on this network (no lease file): nothing to lease, not an error


def _agent_addresses(dom: Any, out: LibvirtFacts) -> None:
    """Guest-agent addresses; a read-only connection is refused once, then we stop asking."""
    import libvirt

    try:
        ifaces = dom.interfaceAddresses(AGENT_SOURCE)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_OPERATION_DENIED:
            out.agent_denied = True
            out.notes.append("guest agent addresses need a read-write libvirt connection; used leases and ARP")
        return  # no agent in this guest: the lease / ARP sources answer instead
    out.agent.extend(parse_agent_interfaces(dom.name(), ifaces))


def _agents(conn: Any, out: LibvirtFacts) -> None:
    """Guest-agent addresses of the active domains (domain types and interface extras come
    from the declared read's own parse of the XML). A read-only connection is refused at the
    first domain, and then nothing more is asked."""
    listed: list[tuple[Any, DomainState]] = _guard(out, "domains", partial(domains_with_state, conn)) or []
    for dom, state in listed:
        if out.agent_denied:
            return
        if state in ACTIVE_STATES:
            _guard(out, f"domain {dom.name()}", partial(_agent_addresses, dom, out))


def _sorted(out: LibvirtFacts, what: str, fn: Callable[[], list[Any]]) -> list[Any]:
    found: list[Any] = _guard(out, what, fn) or []
    return sorted(found, key=lambda obj: str(obj.name()))


def read_libvirt_facts(uri: str) -> LibvirtFacts:
    """One read-only pass; raises LibvirtUnavailable only when libvirt cannot be reached."""
    out = LibvirtFacts()
    with connect(uri) as conn:
        _nwfilters(conn, out)
        for net in _sorted(out, "networks", partial(conn.listAllNetworks, 0)):
            _guard(out, f"network {net.name()}", partial(_network, net, out))
        _agents(conn, out)
    return out
