"""Take a HostSnapshot: run every source, convert, and record what failed.

A failing source never raises out of here: it becomes a SourceError and the snapshot is
partial. OVS missing entirely is not an error (most hosts have no OVS); whether a vif
needed it is decided by bind.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from vifscope.model import AddressFacts, HostSnapshot, NeighEntry, ObservedLink, SourceError
from vifscope.sources.backends import read_backends
from vifscope.sources.cmd import CommandError
from vifscope.sources.forked import ChildFailed, Forked
from vifscope.sources.kernel.links import NetlinkError, read_links
from vifscope.sources.kernel.tcdump import read_neighbors
from vifscope.sources.libvirt.agent import NOT_ASKED, AgentRead, read_agent_addresses
from vifscope.sources.libvirt.conn import LibvirtState, LibvirtUnavailable, read_libvirt
from vifscope.sources.ovs import OvsError, OvsState, ovs_installed, read_ovs

if TYPE_CHECKING:
    from vifscope.sources.facts import GatheredFacts, LibvirtPart

NETLINK_HINT = "vifscope reads links over rtnetlink as 'ip link' does: does 'ip link show' work here?"
OVS_HINT = "is ovsdb-server running? start it with 'ovs-ctl start' or 'systemctl start openvswitch-switch'"
NEIGH_HINT = "vifscope reads the neighbour table over rtnetlink as 'ip neigh' does: does 'ip neigh show' work here?"


def _read_ovs(errors: list[SourceError]) -> OvsState | None:
    if not ovs_installed():
        return None
    try:
        return read_ovs()
    except OvsError as exc:
        errors.append(SourceError("ovs", str(exc), OVS_HINT))
        return None


@dataclass(frozen=True)
class KernelSide:
    """What the kernel side read: links, OVSDB, the neighbour table (guest addresses by ARP;
    doctor's facts carry their own), (doctor) the non-libvirt facts, and errors."""

    links: tuple[ObservedLink, ...]
    ovs: OvsState | None
    facts: GatheredFacts | None
    errors: tuple[SourceError, ...]
    neighbors: tuple[NeighEntry, ...] | None = None


def read_kernel_side(deep: bool, links: bool = True) -> KernelSide:
    """Links of this namespace (unless not ``links``), OVSDB, the neighbours and, for doctor,
    the kernel facts; failures as errors. Returns data and never raises for a failing source:
    it may run in a forked child."""
    errors: list[SourceError] = []
    found = _read_links(deep, errors) if links else ()
    ovs = _read_ovs(errors)
    facts = _kernel_facts() if deep else None
    neighbors = facts.neighbors if facts is not None else read_neighbors_guarded(errors)
    return KernelSide(found, ovs, facts, tuple(errors), neighbors)


def read_neighbors_guarded(errors: list[SourceError]) -> tuple[NeighEntry, ...] | None:
    """One neighbour dump (a guest's ARP / NDP entries); a failure is a "neigh" error."""
    try:
        return read_neighbors()
    except CommandError as exc:
        errors.append(SourceError("neigh", str(exc), NEIGH_HINT))
        return None


def read_port_links() -> KernelSide:
    """Only the links, with bridge-port details (doctor's second child)."""
    errors: list[SourceError] = []
    return KernelSide(_read_links(True, errors), None, None, tuple(errors))


def _read_links(ports: bool, errors: list[SourceError]) -> tuple[ObservedLink, ...]:
    try:
        return read_links(ports=ports)
    except NetlinkError as exc:
        errors.append(SourceError("netlink", str(exc), NETLINK_HINT))
        return ()


def _kernel_facts() -> GatheredFacts:
    from vifscope.sources.facts import gather_kernel_facts  # doctor's: status never imports it

    return gather_kernel_facts()


def _kernel_result(kernel: Forked[KernelSide], deep: bool) -> KernelSide:
    try:
        return kernel.result()
    except ChildFailed:  # the child was killed (OOM) or hit a bug: read it here instead
        return read_kernel_side(deep, links=not deep)


def _link_result(link_side: Forked[KernelSide], errors: list[SourceError]) -> tuple[ObservedLink, ...]:
    try:
        side = link_side.result()
    except ChildFailed:
        return _read_links(True, errors)  # the child died: read them here
    errors.extend(side.errors)
    return side.links


def _libvirt_facts(uri: str) -> LibvirtPart:
    from vifscope.sources.facts import libvirt_facts_part

    return libvirt_facts_part(uri)


def _join(kernel: GatheredFacts | None, part: LibvirtPart) -> GatheredFacts | None:
    from vifscope.sources.facts import with_libvirt_facts

    return with_libvirt_facts(kernel, part) if kernel is not None else None


def _read_declared(
    uri: str, read_libvirt_fn: Callable[[str], LibvirtState], errors: list[SourceError]
) -> LibvirtState | None:
    try:
        return read_libvirt_fn(uri)
    except LibvirtUnavailable as exc:
        errors.append(SourceError("libvirt", str(exc), exc.hint))
        return None


def _without(errors: tuple[SourceError, ...], source: str) -> tuple[SourceError, ...]:
    return tuple(e for e in errors if e.source != source)


def take_snapshot(
    uri: str,
    *,
    read_libvirt_fn: Callable[[str], LibvirtState] | None = None,
    deep: bool = False,
    agent: bool = False,
) -> HostSnapshot:
    """One consistent-enough look at the host: libvirt, and meanwhile kernel links, the
    neighbour table and OVSDB.

    ``deep`` adds HostFacts (sysctls, leases, nwfilters, firewall, qdiscs...) for doctor;
    status stays one libvirt read plus one link and one neighbour dump. ``agent`` also asks
    every running guest's agent for its addresses (over a read-write connection).
    """
    errors: list[SourceError] = []
    taken_at = datetime.now(UTC)
    # The kernel side (link dump, OVSDB, doctor's kernel facts) is read and parsed in a forked
    # child while this process reads libvirt: parsing is CPU, and one process has one GIL
    # (``Forked``; on a thread where forking is unsafe). doctor's libvirt facts are read on a
    # thread meanwhile; they mostly wait for libvirtd.
    # doctor forks two children, one for the kernel facts (sysctls, qdiscs, neighbours,
    # addresses, the packet filter) and one for the link dump: parsing the links here after
    # libvirt's read made them the critical path at 5,000 vifs (bench/scale.py).
    kernel = Forked(partial(read_kernel_side, deep, links=not deep))
    link_side = Forked(read_port_links) if deep else None
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="vifscope-src") as pool:
        gathering = pool.submit(_libvirt_facts, uri) if deep else None
        asking = pool.submit(read_agent_addresses, uri) if agent else None
        lv = _read_declared(uri, read_libvirt_fn or partial(read_libvirt, deep=deep), errors)
        side = _kernel_result(kernel, deep)
        links = _link_result(link_side, errors) if link_side else None
        gathered = _join(side.facts, gathering.result()) if gathering else None
        agents = asking.result() if asking else None
    errors.extend(side.errors)
    found = side.links if links is None else links
    return assemble(uri, taken_at, lv, found, side.ovs, gathered, errors, side.neighbors, agents)


def assemble(
    uri: str,
    taken_at: datetime,
    lv: LibvirtState | None,
    links: tuple[ObservedLink, ...],
    ovs: OvsState | None,
    gathered: GatheredFacts | None,
    errors: list[SourceError],
    neighbors: tuple[NeighEntry, ...] | None = None,
    agent: AgentRead | None = None,
) -> HostSnapshot:
    """The HostSnapshot from whatever answered (None: that source failed, its error in ``errors``).

    Shared by take_snapshot and the deadline snapshotter, so both build the same thing.
    """
    errors = [*errors, *(lv.errors if lv else ()), *(agent.errors if agent else ())]
    # vhost-user sockets and SR-IOV VFs: read here, once the declared side says which (only
    # when such vifs exist: /proc/net/unix, sysfs and one 'ip' per PF, milliseconds).
    backends, backend_errors = read_backends(lv.vifs, lv.networks, uri) if lv else (None, ())
    errors.extend(backend_errors)
    facts = None
    if gathered is not None:
        from vifscope.sources.facts import finish_host_facts

        if lv is None:  # libvirt is down: its error is reported once, as "libvirt"
            gathered = replace(gathered, libvirt=None, errors=_without(gathered.errors, "libvirt-facts"))
        facts = finish_host_facts(gathered, uri, lv)
        errors.extend(gathered.errors)
    return HostSnapshot(
        host=lv.hostname if lv else socket.gethostname(),
        uri=uri,
        taken_at=taken_at,
        vifs=lv.vifs if lv else (),
        links=links,
        ovs_ports=ovs.ports if ovs else (),
        ovs_bridges=ovs.bridges if ovs else (),
        ovs_available=ovs is not None,
        networks=lv.networks if lv else (),
        errors=tuple(errors),
        facts=facts,
        backends=backends,
        addresses=_address_facts(lv, neighbors if neighbors is not None else gathered_neighbors(gathered), agent),
    )


def gathered_neighbors(gathered: GatheredFacts | None) -> tuple[NeighEntry, ...] | None:
    return gathered.neighbors if gathered is not None else None


def _address_facts(
    lv: LibvirtState | None, neighbors: tuple[NeighEntry, ...] | None, agent: AgentRead | None
) -> AddressFacts:
    """What each vif's guest addresses are joined from (bind.addresses)."""
    notes = agent.notes if agent is not None else (NOT_ASKED,)
    return AddressFacts(
        leases=lv.leases if lv else None,
        neighbors=neighbors,
        agent=agent.addresses if agent is not None else None,
        notes=notes,
    )
