"""The join: each declared vif against the kernel link and OVSDB port it should be.

Pure and deterministic: ``bind(snapshot)`` returns bindings sorted by (domain, index).
Each attach kind (from resolve.py) has one verifier in a table; a verifier lists every
problem it sees, and the verdict is the strongest problem's status.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial

from vifscope.bind.addresses import vif_addresses
from vifscope.bind.backends import BACKEND_VERIFIERS, verify_backend
from vifscope.bind.resolve import UNVERIFIABLE, resolve
from vifscope.model import (
    DeclaredVif,
    Expectation,
    HostSnapshot,
    ObservedLink,
    OvsPort,
    Problem,
    VifBinding,
    VifStatus,
)

_P = Problem
STATUS_OF: dict[Problem, VifStatus] = {
    _P.DOMAIN_INACTIVE: VifStatus.INACTIVE,
    _P.NO_TARGET: VifStatus.MISSING,
    _P.LINK_MISSING: VifStatus.MISSING,
    _P.DETACHED: VifStatus.DETACHED,
    _P.BRIDGE_MISSING: VifStatus.DETACHED,
    _P.NETWORK_MISSING: VifStatus.MISBOUND,
    _P.MISBOUND: VifStatus.MISBOUND,
    _P.LOWER_MISMATCH: VifStatus.MISBOUND,
    _P.MODE_MISMATCH: VifStatus.MISBOUND,
    _P.NOT_MACVTAP: VifStatus.MISBOUND,
    _P.OVS_ATTACHED_MAC_MISMATCH: VifStatus.MISBOUND,
    _P.SOCKET_MISSING: VifStatus.MISSING,
    _P.NOT_A_SOCKET: VifStatus.MISSING,
    _P.VF_MISSING: VifStatus.MISSING,
    _P.SOCKET_UNHELD: VifStatus.DETACHED,
    _P.SOCKET_NOT_QEMU: VifStatus.MISBOUND,
    _P.OVS_VHOST_PATH_MISMATCH: VifStatus.MISBOUND,
    _P.VF_MAC_MISMATCH: VifStatus.MISBOUND,
    _P.VF_VLAN_MISMATCH: VifStatus.MISBOUND,
    _P.SOCKET_NOT_CONNECTED: VifStatus.DOWN,
    _P.VF_LINK_DISABLED: VifStatus.DOWN,
    _P.NETWORK_INACTIVE: VifStatus.DOWN,
    _P.TAP_DOWN: VifStatus.DOWN,
    _P.NO_CARRIER: VifStatus.DOWN,
    _P.BRIDGE_DOWN: VifStatus.DOWN,
    _P.LOWER_DOWN: VifStatus.DOWN,
    _P.LINK_STATE_DOWN: VifStatus.DOWN,
    _P.OVS_ERROR: VifStatus.DOWN,
    _P.UNVERIFIED_TYPE: VifStatus.UNVERIFIED,
    _P.SOURCE_UNAVAILABLE: VifStatus.UNVERIFIED,
}
_RANK = {status: i for i, status in enumerate(VifStatus)}


@dataclass
class Finding:
    """What one verifier saw (mutable scratch, never leaves this module)."""

    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    actual: str | None = None
    ovs: OvsPort | None = None
    uplinks: tuple[str, ...] = ()

    def add(self, problem: Problem, note: str) -> None:
        self.problems.append(problem)
        self.notes.append(note)


Verifier = Callable[[DeclaredVif, Expectation, ObservedLink, HostSnapshot, Finding], None]


def verdict(problems: tuple[Problem, ...]) -> VifStatus:
    """The strongest status any problem implies; no problem means bound."""
    if not problems:
        return VifStatus.BOUND
    return min((STATUS_OF[p] for p in problems), key=_RANK.__getitem__)


def _check_up(link: ObservedLink, out: Finding, what: str = "tap") -> None:
    if not link.admin_up:
        out.add(Problem.TAP_DOWN, f"{what} {link.name} is admin down")
    elif not link.carrier:
        out.add(Problem.NO_CARRIER, f"{what} {link.name} has no carrier (oper {link.oper_state})")


def verify_linux_bridge(
    vif: DeclaredVif, exp: Expectation, link: ObservedLink, snap: HostSnapshot, out: Finding
) -> None:
    """The tap's netlink master must be the declared Linux bridge, both up."""
    want = exp.bridge
    port = snap.ovs_by_name.get(link.name)
    out.actual = f"ovs:{port.bridge}" if port else (link.master if link.master else None)
    bridge = snap.links_by_name.get(want) if want else None
    if want is None or bridge is None:
        out.add(Problem.BRIDGE_MISSING, f"bridge {want or '(none declared)'} does not exist")
    if out.actual is None:
        out.add(Problem.DETACHED, f"{link.name} has no master; expected {want}")
    elif out.actual != want:
        out.add(Problem.MISBOUND, f"{link.name} is on {out.actual}; expected {want}")
    elif bridge is not None:
        if not bridge.admin_up:
            out.add(Problem.BRIDGE_DOWN, f"bridge {want} is admin down")
        out.uplinks = snap.uplinks_by_bridge.get(bridge.name, ())
    _check_up(link, out)


def verify_ovs_bridge(vif: DeclaredVif, exp: Expectation, link: ObservedLink, snap: HostSnapshot, out: Finding) -> None:
    """OVSDB must hold the tap on the declared OVS bridge with the vif's MAC."""
    if not snap.ovs_available:
        out.add(Problem.SOURCE_UNAVAILABLE, "OVSDB unavailable: cannot tell which OVS bridge holds the port")
        return
    port = snap.ovs_by_name.get(link.name)
    out.ovs = port
    out.actual = f"ovs:{port.bridge}" if port else link.master if link.master not in (None, "ovs-system") else None
    if exp.bridge not in snap.ovs_bridges:
        out.add(Problem.BRIDGE_MISSING, f"OVS bridge {exp.bridge} does not exist")
    if port is None:
        if out.actual is None:
            out.add(Problem.DETACHED, f"{link.name} is on no OVS bridge; expected {exp.bridge}")
        else:
            out.add(Problem.MISBOUND, f"{link.name} is on {out.actual}; expected OVS {exp.bridge}")
        _check_up(link, out)
        return
    if port.bridge != exp.bridge:
        out.add(Problem.MISBOUND, f"{link.name} is on OVS {port.bridge}; expected {exp.bridge}")
    if port.attached_mac and vif.mac and port.attached_mac != vif.mac:
        out.add(Problem.OVS_ATTACHED_MAC_MISMATCH, f"OVS attached-mac {port.attached_mac} != XML mac {vif.mac}")
    if port.error:
        out.add(Problem.OVS_ERROR, f"OVS interface error: {port.error}")
    _check_up(link, out)


_KERNEL_MODE = {"passthrough": "passthru"}


def verify_macvtap(vif: DeclaredVif, exp: Expectation, link: ObservedLink, snap: HostSnapshot, out: Finding) -> None:
    """A macvtap on the declared lower device, in the declared mode, everything up."""
    out.actual = link.lower
    if link.kind not in ("macvtap", "macvlan"):
        out.add(Problem.NOT_MACVTAP, f"{link.name} is a {link.kind or 'plain'} link, not a macvtap")
        return
    allowed = (exp.lower,) if exp.lower else exp.lower_pool
    if allowed and link.lower not in allowed:
        out.add(Problem.LOWER_MISMATCH, f"{link.name} sits on {link.lower}; expected {' or '.join(allowed)}")
    want_mode = _KERNEL_MODE.get(exp.mode or "", exp.mode)
    if want_mode and link.macvtap_mode and link.macvtap_mode != want_mode:
        out.add(Problem.MODE_MISMATCH, f"macvtap mode {link.macvtap_mode}; expected {want_mode}")
    _check_up(link, out, "macvtap")
    lower = snap.links_by_name.get(link.lower or "")
    if lower is not None and not (lower.admin_up and lower.carrier):
        out.add(
            Problem.LOWER_DOWN, f"lower device {lower.name} is {'down' if not lower.admin_up else 'without carrier'}"
        )


def verify_standalone(vif: DeclaredVif, exp: Expectation, link: ObservedLink, snap: HostSnapshot, out: Finding) -> None:
    """type='ethernet': present (already known) and up."""
    out.actual = link.master
    _check_up(link, out)


VERIFIERS: dict[str, Verifier] = {
    "linux-bridge": verify_linux_bridge,
    "ovs-bridge": verify_ovs_bridge,
    "macvtap": verify_macvtap,
    "standalone": verify_standalone,
}


def _observe(vif: DeclaredVif, exp: Expectation, snap: HostSnapshot) -> tuple[Finding, ObservedLink | None]:
    out = Finding()
    for problem in exp.problems:
        out.add(problem, f"network {vif.network or vif.source}: {problem.value.replace('_', ' ')}")
    if vif.link_state == "down":
        out.add(Problem.LINK_STATE_DOWN, "libvirt <link state='down'/> is set")
    if not vif.target:
        out.add(Problem.NO_TARGET, "no <target dev=> in the live XML")
        return out, None
    link = snap.links_by_name.get(vif.target)
    if link is None:
        out.add(Problem.LINK_MISSING, f"no kernel link named {vif.target}")
        return out, None
    VERIFIERS[exp.attach](vif, exp, link, snap, out)
    return out, link


def bind_one(vif: DeclaredVif, snap: HostSnapshot, addresses: bool = True) -> VifBinding:
    """The verdict for one vif (``addresses``: with the guest's addresses)."""
    exp = resolve(vif, snap)
    found = partial(vif_addresses, vif, exp, snap=snap) if addresses else tuple
    if not vif.domain_state.has_taps:
        status, detail = VifStatus.INACTIVE, f"domain is {vif.domain_state.value}"
        return VifBinding(vif, exp, status, (Problem.DOMAIN_INACTIVE,), detail, addresses=found())
    if exp.attach == "unverifiable":  # a hostdev vif's lease is still its address
        return VifBinding(vif, exp, VifStatus.UNVERIFIED, (Problem.UNVERIFIED_TYPE,), exp.reason, addresses=found())
    if exp.attach in BACKEND_VERIFIERS:
        return replace(_bind_backend(vif, exp, snap), addresses=found())
    if snap.failed("netlink"):
        detail = "kernel links could not be read"
        return VifBinding(vif, exp, VifStatus.UNVERIFIED, (Problem.SOURCE_UNAVAILABLE,), detail, addresses=found())
    out, link = _observe(vif, exp, snap)
    problems = tuple(dict.fromkeys(out.problems))
    detail = "; ".join(out.notes) if out.notes else _bound_detail(exp, out)
    return VifBinding(
        vif,
        exp,
        verdict(problems),
        problems,
        detail,
        link=link,
        ovs=out.ovs,
        actual_bridge=out.actual,
        uplinks=out.uplinks,
        addresses=vif_addresses(vif, exp, link, out.actual, snap) if addresses else (),
    )


# The source that reads the backend facts (sources/backends.py); its failure makes them unknown.
BACKEND_SOURCE = "backends"


def _bind_backend(vif: DeclaredVif, exp: Expectation, snap: HostSnapshot) -> VifBinding:
    """vhost-user / SR-IOV VF vifs: no kernel link, their own facts (bind/backends.py)."""
    seen = verify_backend(vif, exp, snap)
    if seen is None:
        if snap.failed(BACKEND_SOURCE):
            why = f"{vif.type}: the backend facts could not be read"
            return VifBinding(vif, exp, VifStatus.UNVERIFIED, (Problem.SOURCE_UNAVAILABLE,), why)
        why = UNVERIFIABLE.get(vif.type, f"{exp.attach}: not examined on this host")
        return VifBinding(vif, exp, VifStatus.UNVERIFIED, (Problem.UNVERIFIED_TYPE,), why)
    problems = tuple(dict.fromkeys([*exp.problems, *seen.problems]))
    notes = [f"network {vif.network or vif.source}: {p.value.replace('_', ' ')}" for p in exp.problems]
    if vif.link_state == "down":
        problems, notes = (*problems, Problem.LINK_STATE_DOWN), [*notes, "libvirt <link state='down'/> is set"]
    notes += seen.notes
    detail = "; ".join(notes) if notes else seen.bound
    return VifBinding(
        vif, exp, verdict(problems), problems, detail, ovs=seen.ovs, actual_bridge=seen.actual, socket=seen.socket,
        vf=seen.vf,
    )  # fmt: skip


def _bound_detail(exp: Expectation, out: Finding) -> str:
    if exp.attach == "macvtap":
        return f"macvtap on {out.actual} ({exp.mode})"
    if exp.attach == "standalone":
        return "tap up (type ethernet: not attached by libvirt)"
    where = f"on OVS {exp.bridge}" if exp.attach == "ovs-bridge" else f"on {exp.bridge}"
    uplinks = f", uplinks {','.join(out.uplinks)}" if out.uplinks else ""
    return where + uplinks


def bind(snap: HostSnapshot, *, addresses: bool = True) -> tuple[VifBinding, ...]:
    """Every vif of the snapshot, sorted by domain name then interface index. ``addresses=False``
    leaves out the guest addresses (the exporter's metrics carry none: ~7 us a vif saved)."""
    ordered = sorted(snap.vifs, key=lambda v: (v.domain, v.index))
    return tuple(bind_one(vif, snap, addresses) for vif in ordered)
