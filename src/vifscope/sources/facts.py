"""Read every deep fact for ``doctor``: each reader guarded, a failing one becomes a SourceError
and leaves its part of HostFacts as None (its checks are then skipped, with the reason)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar
from urllib.parse import urlsplit

from vifscope.model import HostFacts, NeighEntry, SourceError
from vifscope.model.qos import OvsQos
from vifscope.model.qosdscp import DscpMark
from vifscope.sources.cmd import CommandError
from vifscope.sources.flows.support import read_flow_support
from vifscope.sources.kernel.addrdump import read_addresses
from vifscope.sources.kernel.firewall import read_firewall
from vifscope.sources.kernel.kconfig import read_shaping
from vifscope.sources.kernel.nftdscp import NftUnavailable, read_dscp_marks
from vifscope.sources.kernel.procfs import read_device_nodes, read_sysctls
from vifscope.sources.kernel.tcdump import read_neighbors
from vifscope.sources.kernel.tcshaping import read_tc
from vifscope.sources.libvirt.conn import LibvirtState, LibvirtUnavailable
from vifscope.sources.libvirt.facts import LibvirtFacts, read_libvirt_facts
from vifscope.sources.libvirt.guestip import merge_guest_addresses
from vifscope.sources.libvirt.runtime import NETWORK_RUN, QEMU_RUN, domain_runtime, network_runtime
from vifscope.sources.ovs import OvsError
from vifscope.sources.ovsqos import read_ovs_qos

T = TypeVar("T")

IPROUTE_HINT = "vifscope reads qdiscs and neighbours over rtnetlink as tc and ip do: do they work here?"
ADDR_HINT = "vifscope reads addresses over rtnetlink as 'ip addr' does: does 'ip addr show' work here?"
NFT_HINT = "install nftables ('nft -j list ruleset' shows every nf_tables rule, iptables-nft's too)"


def is_local_qemu(uri: str) -> bool:
    """qemu:///system or qemu+unix:///system: libvirt's pid files on this machine are that host's."""
    parts = urlsplit(uri)
    driver, _, transport = parts.scheme.partition("+")
    return driver == "qemu" and transport in ("", "unix") and not parts.hostname


def _guarded(source: str, hint: str, fn: Callable[[], T], errors: list[SourceError]) -> T | None:
    try:
        return fn()
    except CommandError as exc:
        errors.append(SourceError(source, str(exc), hint))
        return None


def _dscp_marks(errors: list[SourceError]) -> tuple[DscpMark, ...] | None:
    try:
        return tuple(read_dscp_marks().values())
    except NftUnavailable as exc:
        errors.append(SourceError("nft-dscp", str(exc), NFT_HINT))
        return None


def _ovs_qos() -> tuple[OvsQos, ...] | None:
    """OVSDB's QoS rows; None without a word when OVSDB does not answer: the snapshot's own
    OVS read reports that (one outage, one source error)."""
    if shutil.which("ovs-vsctl") is None:
        return None
    try:
        return read_ovs_qos()
    except OvsError:
        return None


def _libvirt_part(uri: str, errors: list[SourceError]) -> LibvirtFacts | None:
    try:
        lf = read_libvirt_facts(uri)
    except LibvirtUnavailable as exc:
        errors.append(SourceError("libvirt-facts", str(exc), exc.hint))
        return None
    errors.extend(lf.errors)
    return lf


def _libvirt_facts(lf: LibvirtFacts, uri: str, lv: LibvirtState, neighbors: tuple[NeighEntry, ...] | None) -> HostFacts:
    """The libvirt-derived parts (filters, leases, runtime, extras, guest addresses)."""
    local, vifs, networks = is_local_qemu(uri), lv.vifs, lv.networks
    return HostFacts(
        leases=tuple(lf.leases),
        guest_addresses=merge_guest_addresses([v.mac for v in vifs if v.mac], lf.agent, lf.leases, neighbors or ()),
        nwfilter_bindings=tuple(lf.bindings) if lf.bindings is not None else None,
        nwfilters=tuple(lf.filters) if lf.filters is not None else None,
        network_runtime=network_runtime(
            [n.name for n in networks], lf.active_networks, lf.isolated_networks, NETWORK_RUN if local else None
        ),
        domain_runtime=domain_runtime(lv.domains, QEMU_RUN if local else None),
        interface_extras=lv.extras,
        notes=tuple(dict.fromkeys(lf.notes)),
    )


@dataclass(frozen=True)
class GatheredFacts:
    """Every deep read that does not depend on the declared side, so it can run while libvirt's
    domain read runs (doctor's snapshot then costs the slower of the two, not their sum)."""

    libvirt: LibvirtFacts | None
    neighbors: tuple[NeighEntry, ...] | None
    facts: HostFacts  # sysctls, devices, qdiscs, neighbors, addresses, firewall
    errors: tuple[SourceError, ...]


def gather_host_facts(uri: str, *, libvirt_ok: bool = True) -> GatheredFacts:
    """Run every fact reader; ``libvirt_ok=False`` skips libvirt (already known down)."""
    kernel = gather_kernel_facts()
    return with_libvirt_facts(kernel, libvirt_facts_part(uri)) if libvirt_ok else kernel


LibvirtPart = tuple[LibvirtFacts | None, tuple[SourceError, ...]]


def libvirt_facts_part(uri: str) -> LibvirtPart:
    """libvirt's facts (filters, leases, agent addresses) and what failed reading them."""
    errors: list[SourceError] = []
    lf = _libvirt_part(uri, errors)
    return lf, tuple(errors)


def with_libvirt_facts(kernel: GatheredFacts, part: LibvirtPart) -> GatheredFacts:
    """The kernel-side facts joined with libvirt's."""
    lf, errors = part
    return replace(kernel, libvirt=lf, errors=(*kernel.errors, *errors))


def gather_kernel_facts() -> GatheredFacts:
    """Every fact that does not come from libvirt (no connection: a forked child can read them)."""
    errors: list[SourceError] = []
    neighbors = _guarded("neigh", IPROUTE_HINT, read_neighbors, errors)
    tc = _guarded("tc", IPROUTE_HINT, read_tc, errors)  # qdiscs, and htb classes / police for qos.*
    facts = HostFacts(
        sysctls=read_sysctls(),
        devices=read_device_nodes(),
        qdiscs=tc[0] if tc else None,
        tc_shaping=tc[1] if tc else None,
        kernel_shaping=read_shaping(),
        flows=read_flow_support(),
        neighbors=neighbors,
        addresses=_guarded("addr", ADDR_HINT, read_addresses, errors),
        firewall=_guarded("firewall", NFT_HINT, read_firewall, errors),
        ovs_qos=_ovs_qos(),
        dscp_marks=_dscp_marks(errors),
    )
    return GatheredFacts(None, neighbors, facts, tuple(errors))


def finish_host_facts(got: GatheredFacts, uri: str, lv: LibvirtState | None) -> HostFacts:
    """Join the gathered facts with the declared side (guest addresses, runtime, extras)."""
    if got.libvirt is None or lv is None:
        return got.facts
    base = _libvirt_facts(got.libvirt, uri, lv, got.neighbors)
    f = got.facts
    return replace(
        base, sysctls=f.sysctls, devices=f.devices, qdiscs=f.qdiscs, neighbors=f.neighbors,
        addresses=f.addresses, firewall=f.firewall, tc_shaping=f.tc_shaping, kernel_shaping=f.kernel_shaping,
        ovs_qos=f.ovs_qos, dscp_marks=f.dscp_marks,
        flows=f.flows,
    )  # fmt: skip
