"""One report layer for every front end: JSON-ready dicts, summaries and exit codes.

The table renderer, ``--json`` and later the HTTP API all call these, so the shapes
(documented in README.md) stay the same everywhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from vifscope.model import (
    HostSnapshot,
    LibvirtNetwork,
    LinkStats,
    Problem,
    SourceError,
    VifAddress,
    VifBinding,
    VifStatus,
)

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_SOURCE = 3
EXIT_INTERNAL = 70  # a bug in vifscope (EX_SOFTWARE), never a verdict

# Sources every answer needs; others (OVS) only matter when a vif uses them.
REQUIRED_SOURCES = ("libvirt", "netlink")
HEALTHY = (VifStatus.BOUND, VifStatus.INACTIVE)
SUMMARY_ORDER = (
    VifStatus.BOUND,
    VifStatus.MISSING,
    VifStatus.DETACHED,
    VifStatus.MISBOUND,
    VifStatus.DOWN,
    VifStatus.UNVERIFIED,
    VifStatus.INACTIVE,
)


def stats_dict(st: LinkStats) -> dict[str, int]:
    # Spelled out: dataclasses.asdict deep-copies and cost ~35 us per vif at 5,000 vifs.
    return {
        "rx_bytes": st.rx_bytes, "rx_packets": st.rx_packets, "rx_errors": st.rx_errors,
        "rx_dropped": st.rx_dropped, "tx_bytes": st.tx_bytes, "tx_packets": st.tx_packets,
        "tx_errors": st.tx_errors, "tx_dropped": st.tx_dropped,
    }  # fmt: skip


def observed_dict(b: VifBinding) -> dict[str, Any]:
    link = b.link
    return {
        "present": link is not None,
        "kind": link.kind if link else None,
        "admin_up": link.admin_up if link else None,
        "oper_state": link.oper_state if link else None,
        "carrier": link.carrier if link else None,
        "master": link.master if link else None,
        "lower": link.lower if link else None,
        "mtu": link.mtu if link else None,
        "ovs_bridge": b.ovs.bridge if b.ovs else None,
        "ovs_iface_id": b.ovs.iface_id if b.ovs else None,
        "ovs_attached_mac": b.ovs.attached_mac if b.ovs else None,
        "actual": b.actual_bridge,
        "uplinks": list(b.uplinks),
        "txqlen": link.txqlen if link else None,
        "stats": stats_dict(link.stats) if link and link.stats else None,
        "socket": _socket_dict(b),
        "vf": _vf_dict(b),
    }


def _socket_dict(b: VifBinding) -> dict[str, Any] | None:
    """vhostuser: the socket as the host shows it (None for other types, or when not read)."""
    s = b.socket
    if s is None:
        return None
    holders = [{"pid": h.pid, "comm": h.comm} for h in s.holders]
    return {"path": s.path, "exists": s.exists, "is_socket": s.is_socket, "listening": s.listening,
            "connections": s.connections, "pending": s.pending, "holders": holders}  # fmt: skip


def _vf_dict(b: VifBinding) -> dict[str, Any] | None:
    """sriov-vf: the VF as its PF reports it (None for other types, or when not found)."""
    v = b.vf
    if v is None:
        return None
    return {"pf": v.pf, "vf": v.index, "mac": v.mac, "vlan": v.vlan, "qos": v.qos, "spoofchk": v.spoofchk,
            "trust": v.trust, "link_state": v.link_state}  # fmt: skip


def address_dict(a: VifAddress) -> dict[str, Any]:
    return {"address": a.address, "prefix": a.prefix, "family": a.family, "source": a.source.value}


def binding_dict(b: VifBinding) -> dict[str, Any]:
    """One vif in the ``status --json`` contract (names are stable; add, never rename)."""
    v, exp = b.vif, b.expect
    return {
        "domain": v.domain,
        "domain_uuid": v.domain_uuid,
        "domain_state": v.domain_state.value,
        "index": v.index,
        "type": v.type,
        "mac": v.mac,
        "model": v.model,
        "source": v.source,
        "network": v.network,
        "bridge": exp.bridge if exp.attach in ("linux-bridge", "ovs-bridge") else None,
        "expected_attach": exp.attach,
        "expected_lower": exp.lower or (list(exp.lower_pool) or None),
        "mode": exp.mode,
        "target": v.target,
        "link_state": v.link_state,
        "virtualport": v.virtualport,
        "status": b.status.value,
        "problems": [p.value for p in b.problems],
        "detail": b.detail,
        "observed": observed_dict(b),
        "addresses": [address_dict(a) for a in b.addresses],
    }


def errors_list(errors: Iterable[SourceError]) -> list[dict[str, str]]:
    return [{"source": e.source, "error": e.error, "hint": e.hint} for e in errors]


def status_report(snap: HostSnapshot, bindings: Sequence[VifBinding]) -> dict[str, Any]:
    """The whole ``vifscope status --json`` document."""
    return {
        "host": snap.host,
        "uri": snap.uri,
        "taken_at": snap.taken_at.isoformat(),
        "summary": dict(counts(bindings)),
        "vifs": [binding_dict(b) for b in bindings],
        "source_errors": errors_list(snap.errors),
        "notes": list(snap.addresses.notes),  # e.g. why the guest agent was not asked
    }


def counts(bindings: Iterable[VifBinding]) -> Counter[str]:
    return Counter(b.status.value for b in bindings)


def summary_line(bindings: Sequence[VifBinding]) -> str:
    """'12 vifs: 10 bound, 1 detached, 1 down' (bound first, then faults, then the rest)."""
    c = counts(bindings)
    parts = [f"{c[s.value]} {s.value}" for s in SUMMARY_ORDER if c[s.value]]
    noun = "vif" if len(bindings) == 1 else "vifs"
    return f"{len(bindings)} {noun}" + (": " + ", ".join(parts) if parts else "")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def is_fault(b: VifBinding) -> bool:
    """A vif ``status`` exits non-zero for: a fault verdict, or unverified for want of a source
    (unverified because of its interface *type* is nothing wrong: there is nothing to check)."""
    if b.status is VifStatus.UNVERIFIED:
        return Problem.SOURCE_UNAVAILABLE in b.problems
    return b.status not in HEALTHY


def _all_well(c: Counter[str], total: int) -> str:
    """``--problems`` with nothing wrong: what is right, in words."""
    bound, unverified = c[VifStatus.BOUND.value], c[VifStatus.UNVERIFIED.value]
    inactive = c[VifStatus.INACTIVE.value]
    if not total:
        return "no problems: no vifs to check"
    if bound + unverified == 0:
        return f"no problems, nothing running: {_n(inactive, 'vif')} inactive (domain not running)"
    unchecked = "unverified (interface type not checked)"
    if not unverified:
        words = f"all {bound} running vifs bound" if bound > 1 else "1 running vif, bound"
    elif bound:
        words = f"{bound} of {_n(bound + unverified, 'running vif')} bound, {unverified} {unchecked}"
    else:
        words = f"{_n(unverified, 'running vif')}, {'all ' if unverified > 1 else ''}{unchecked}"
    if inactive:
        words += f", {inactive} inactive (domain not running)"
    return f"no problems: {words}"


def problems_summary(scope: Sequence[VifBinding]) -> str:
    """The last line of ``status --problems``. ``scope`` is every vif asked about (``--domain``
    applied, the problems filter not): '2 of 12 vifs have problems: 1 detached, 1 down; not
    listed: 9 bound, 1 inactive', or, when nothing is wrong, what is right in words: 'no
    problems: all 7 running vifs bound, 2 inactive (domain not running)'."""
    c = counts(scope)
    faults = counts(b for b in scope if is_fault(b))
    if not faults:
        return _all_well(c, len(scope))
    n = faults.total()
    head = f"{n} of {_n(len(scope), 'vif')} {'has a problem' if n == 1 else 'have problems'}: "
    head += ", ".join(f"{faults[s.value]} {s.value}" for s in SUMMARY_ORDER if faults[s.value])
    rest = c - faults
    listed = rest[VifStatus.UNVERIFIED.value]  # by type: listed by --problems, not a fault
    if listed:
        head += f"; also listed: {listed} unverified (interface type not checked)"
    hidden = [f"{rest[s.value]} {s.value}" for s in (VifStatus.BOUND, VifStatus.INACTIVE) if rest[s.value]]
    return head + (f"; not listed: {', '.join(hidden)}" if hidden else "")


def status_summary(scope: Sequence[VifBinding], problems_only: bool) -> str:
    """The last line of ``status``: the counts, or with ``--problems`` ``problems_summary``."""
    return problems_summary(scope) if problems_only else summary_line(scope)


def select(
    bindings: Sequence[VifBinding], domains: Sequence[str] = (), problems_only: bool = False
) -> tuple[VifBinding, ...]:
    """``--domain`` (by name or UUID) and ``--problems`` filters."""
    wanted = set(domains)
    out = [b for b in bindings if not wanted or b.vif.domain in wanted or b.vif.domain_uuid in wanted]
    if problems_only:
        out = [b for b in out if b.status not in HEALTHY]
    return tuple(out)


def exit_code(snap: HostSnapshot, bindings: Sequence[VifBinding]) -> int:
    """3 when a source the answer needs failed, 1 when a vif is not healthy, else 0.

    ``unverified`` because of the interface *type* is not a problem (nothing to check);
    unverified because a needed source (OVSDB) was down is exit 3.
    """
    if any(snap.failed(s) for s in REQUIRED_SOURCES):
        return EXIT_SOURCE
    if any(Problem.SOURCE_UNAVAILABLE in b.problems for b in bindings):
        return EXIT_SOURCE
    if any(b.status not in (*HEALTHY, VifStatus.UNVERIFIED) for b in bindings):
        return EXIT_PROBLEMS
    return EXIT_OK


def bridge_state(net: LibvirtNetwork, snap: HostSnapshot) -> tuple[bool, bool]:
    """(exists, up) of a network's bridge; OVS bridges count as up when OVSDB has them."""
    if not net.bridge:
        return False, False
    if net.virtualport == "openvswitch" or net.bridge in snap.ovs_bridges:
        exists = net.bridge in snap.ovs_bridges
        return exists, exists
    link = snap.links_by_name.get(net.bridge)
    return link is not None, bool(link and link.admin_up)


def network_dict(net: LibvirtNetwork, snap: HostSnapshot) -> dict[str, Any]:
    """One network in the ``networks --json`` contract."""
    exists, up = bridge_state(net, snap)
    return {
        "name": net.name,
        "uuid": net.uuid,
        "mode": "ovs" if net.virtualport == "openvswitch" else net.mode,
        "forward_mode": net.mode,
        "kind": net.kind,
        "bridge": net.bridge,
        "forward_devs": list(net.forward_devs),
        "active": net.active,
        "autostart": net.autostart,
        "addresses": list(net.addresses),
        "dhcp_ranges": [{"start": r.start, "end": r.end} for r in net.dhcp_ranges],
        "leases": net.leases,
        "bridge_exists": exists if net.bridge else None,
        "bridge_up": up if net.bridge else None,
        "mtu": net.mtu,
    }


def networks_report(snap: HostSnapshot) -> dict[str, Any]:
    return {
        "host": snap.host,
        "uri": snap.uri,
        "taken_at": snap.taken_at.isoformat(),
        "networks": [network_dict(n, snap) for n in snap.networks],
        "source_errors": errors_list(snap.errors),
    }


def networks_exit_code(snap: HostSnapshot) -> int:
    """Networks: 3 if libvirt failed, 1 if an active network's bridge is missing or down."""
    if snap.failed("libvirt") or snap.failed("libvirt-network"):
        return EXIT_SOURCE
    for net in snap.networks:
        exists, up = bridge_state(net, snap)
        if net.active and net.bridge and not (exists and up):
            return EXIT_PROBLEMS
    return EXIT_OK
