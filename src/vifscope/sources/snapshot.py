"""Take a HostSnapshot: run every source, convert, and record what failed.

A failing source never raises out of here: it becomes a SourceError and the snapshot is
partial. OVS missing entirely is not an error (most hosts have no OVS); whether a vif
needed it is decided by bind.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from vifscope.model import HostSnapshot, ObservedLink, SourceError
from vifscope.sources.libvirt_src import LibvirtState, LibvirtUnavailable, read_libvirt
from vifscope.sources.linkdump import parse_dump
from vifscope.sources.netlink import NetlinkError, dump_raw
from vifscope.sources.ovs import OvsError, OvsState, ovs_installed, read_ovs

if TYPE_CHECKING:
    from vifscope.sources.facts import GatheredFacts

NETLINK_HINT = "vifscope reads links over rtnetlink as 'ip link' does: does 'ip link show' work here?"
OVS_HINT = "is ovsdb-server running? start it with 'ovs-ctl start' or 'systemctl start openvswitch-switch'"


def _read_ovs(errors: list[SourceError]) -> OvsState | None:
    if not ovs_installed():
        return None
    try:
        return read_ovs()
    except OvsError as exc:
        errors.append(SourceError("ovs", str(exc), OVS_HINT))
        return None


def _read_kernel(errors: list[SourceError]) -> tuple[list[bytes], OvsState | None]:
    """The raw link dump of this namespace, then OVSDB; failures become SourceErrors."""
    try:
        dump = dump_raw()
    except NetlinkError as exc:
        errors.append(SourceError("netlink", str(exc), NETLINK_HINT))
        dump = []
    return dump, _read_ovs(errors)


def _read_declared(
    uri: str, read_libvirt_fn: Callable[[str], LibvirtState], errors: list[SourceError]
) -> LibvirtState | None:
    try:
        return read_libvirt_fn(uri)
    except LibvirtUnavailable as exc:
        errors.append(SourceError("libvirt", str(exc), exc.hint))
        return None


def _gather(uri: str) -> GatheredFacts:
    from vifscope.sources.facts import gather_host_facts  # doctor's: status never imports it

    return gather_host_facts(uri)


def _without(errors: tuple[SourceError, ...], source: str) -> tuple[SourceError, ...]:
    return tuple(e for e in errors if e.source != source)


def take_snapshot(
    uri: str,
    *,
    read_libvirt_fn: Callable[[str], LibvirtState] | None = None,
    deep: bool = False,
) -> HostSnapshot:
    """One consistent-enough look at the host: libvirt, and meanwhile kernel links and OVSDB.

    ``deep`` adds HostFacts (sysctls, leases, nwfilters, firewall, qdiscs...) for doctor;
    status stays one libvirt read plus one link dump.
    """
    errors: list[SourceError] = []
    kernel_errors: list[SourceError] = []
    taken_at = datetime.now(UTC)
    # The kernel side (one ip dump + OVSDB) and, for doctor, the deep facts are read in other
    # threads while libvirt answers: they mostly wait (libvirt-python releases the GIL), so the
    # snapshot costs the slowest source, not their sum (~0.25 s saved for status and ~0.7 s
    # for doctor at 5,000 vifs).
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="vifscope-src") as pool:
        kernel = pool.submit(_read_kernel, kernel_errors)
        gathering = pool.submit(_gather, uri) if deep else None
        lv = _read_declared(uri, read_libvirt_fn or partial(read_libvirt, deep=deep), errors)
        dump, ovs = kernel.result()
        links = parse_dump(dump, ports=deep)  # here, not in the thread: parsing is CPU, the reads wait
        gathered = gathering.result() if gathering else None
    errors.extend(kernel_errors)
    return assemble(uri, taken_at, lv, links, ovs, gathered, errors)


def assemble(
    uri: str,
    taken_at: datetime,
    lv: LibvirtState | None,
    links: tuple[ObservedLink, ...],
    ovs: OvsState | None,
    gathered: GatheredFacts | None,
    errors: list[SourceError],
) -> HostSnapshot:
    """The HostSnapshot from whatever answered (None: that source failed, its error in ``errors``).

    Shared by take_snapshot and the deadline snapshotter, so both build the same thing.
    """
    errors = [*errors, *(lv.errors if lv else ())]
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
    )
