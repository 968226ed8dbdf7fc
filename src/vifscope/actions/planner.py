"""The fix planner: bindings (and host findings) in, a Plan of safe, undoable actions out.

Pure and deterministic. Two tables decide everything for vifs: ``VIF_FIXES`` maps a binding
Problem to the builder of its action, ``LEFT_ALONE`` says why every other problem gets no
action (so nothing is silently ignored). Host sysctls are mapped by check id in host.py.

Rules: only running domains; a vif whose libvirt ``<link state='down'/>`` is set is left
alone entirely unless ``link_down`` is asked for (someone may have set it on purpose);
vifscope never creates bridges, only starts a libvirt network that would create its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from vifscope.actions.hostfix import host_items
from vifscope.actions.model import (
    Action,
    ActionKind,
    LinkMaster,
    LinkUp,
    NetworkActive,
    OvsPortOn,
    Plan,
    Promise,
    Skip,
    Step,
    VifLinkState,
)
from vifscope.checks.commands import SYSCTL_DIR, ip_link, ovs_set_ids, ovs_vsctl, virsh
from vifscope.checks.plugs import current_plug, declared_plug, move
from vifscope.model import Finding, HostSnapshot, Problem, VifBinding, VifStatus

Item = Action | Skip


@dataclass(frozen=True)
class _Ctx:
    snap: HostSnapshot
    starting: frozenset[str]  # libvirt networks this plan starts: their bridges will exist


Builder = Callable[[VifBinding, _Ctx], tuple[Item, ...]]


def _label(b: VifBinding) -> str:
    return b.vif.target or f"{b.vif.domain} {b.vif.mac or '#' + str(b.vif.index)}"


def _skip(b: VifBinding, problem: Problem, why: str) -> Skip:
    return Skip(problem.value, _label(b), why, b.vif.domain, b.vif.mac)


def _vif_action(
    b: VifBinding,
    problem: Problem,
    kind: ActionKind,
    target: str,
    description: str,
    steps: tuple[Step, ...],
    undo: tuple[Step, ...],
    promises: tuple[Promise, ...],
) -> Action:
    """An action for one vif's problem (the vif's domain and MAC go into the audit log)."""
    return Action(kind, target, description, steps, undo, promises, problem.value, b.vif.domain, b.vif.mac)


def _bridge_ready(b: VifBinding, ctx: _Ctx) -> bool:
    """The declared bridge exists now, or a network this plan starts creates it."""
    want, net = b.expect.bridge, b.expect.network
    if net is not None and net.name in ctx.starting and net.bridge == want:
        return True
    if b.expect.attach == "ovs-bridge":
        return want in ctx.snap.ovs_bridges
    link = ctx.snap.links_by_name.get(want or "")
    return link is not None and link.kind == "bridge"


def _bridge_missing_why(b: VifBinding) -> str:
    net = b.expect.network
    restart = f"; or restart network {net.name} (virsh net-destroy/net-start)" if net else ""
    return (
        f"bridge {b.expect.bridge or '(none)'} does not exist: vifscope does not create bridges "
        f"(their uplinks, STP and addresses are not in the domain XML){restart}"
    )


def attach(b: VifBinding, ctx: _Ctx) -> tuple[Item, ...]:
    """detached / misbound: plug the tap into its declared Linux or OVS bridge (moving it if needed)."""
    problem = Problem.MISBOUND if Problem.MISBOUND in b.problems else Problem.DETACHED
    tap, want = b.vif.target, declared_plug(b)
    if tap is None or want is None:
        why = "a macvtap is created by libvirt on its lower device: re-plug the interface (virsh detach/attach-device)"
        return (_skip(b, problem, why),)
    if not _bridge_ready(b, ctx):
        return (_skip(b, Problem.BRIDGE_MISSING, _bridge_missing_why(b)),)
    have = current_plug(tap, ctx.snap)
    promise: Promise = (
        OvsPortOn(tap, str(want.bridge), b.vif.mac, b.vif.interface_id)
        if want.kind == "ovs"
        else LinkMaster(tap, str(want.bridge))
    )
    where = f"OVS bridge {want.bridge}" if want.kind == "ovs" else f"bridge {want.bridge}"
    now = f" (now on {have.bridge})" if have.bridge else ""
    return (
        _vif_action(
            b,
            problem,
            ActionKind.ATTACH,
            tap,
            f"plug {tap} of {b.vif.domain} into {where}{now}",
            move(tap, have, want),
            move(tap, want, have),
            (promise,),
        ),
    )


def bridge_missing(b: VifBinding, ctx: _Ctx) -> tuple[Item, ...]:
    """Fine when this plan starts the network that creates the bridge; otherwise left alone."""
    return () if _bridge_ready(b, ctx) else (_skip(b, Problem.BRIDGE_MISSING, _bridge_missing_why(b)),)


def ovs_attached_mac(b: VifBinding, ctx: _Ctx) -> tuple[Item, ...]:
    """Right OVS bridge, wrong attached-mac: rewrite it (a misbound port is re-added by attach instead)."""
    tap, port = b.vif.target, b.ovs
    if Problem.MISBOUND in b.problems or tap is None or port is None or not b.vif.mac:
        return ()
    old = (("attached-mac", port.attached_mac),) if port.attached_mac else ()
    return (
        _vif_action(
            b,
            Problem.OVS_ATTACHED_MAC_MISMATCH,
            ActionKind.OVS_EXTERNAL_IDS,
            tap,
            f"set OVS external_ids:attached-mac of {tap} to the XML MAC {b.vif.mac}",
            (ovs_vsctl(*ovs_set_ids(tap, (("attached-mac", b.vif.mac),))),),
            (ovs_vsctl(*ovs_set_ids(tap, old)),) if old else (),
            (OvsPortOn(tap, port.bridge, b.vif.mac),),
        ),
    )


def _up(b: VifBinding, problem: Problem, kind: ActionKind, link: str, what: str) -> Action:
    return _vif_action(
        b,
        problem,
        kind,
        link,
        f"bring {what} {link} up",
        (ip_link(link, "up"),),
        (ip_link(link, "down"),),
        (LinkUp(link),),
    )


def tap_up(b: VifBinding, ctx: _Ctx) -> tuple[Item, ...]:
    return (_up(b, Problem.TAP_DOWN, ActionKind.TAP_UP, b.vif.target, "tap"),) if b.vif.target else ()


def bridge_up(b: VifBinding, ctx: _Ctx) -> tuple[Item, ...]:
    return (_up(b, Problem.BRIDGE_DOWN, ActionKind.BRIDGE_UP, b.expect.bridge, "bridge"),) if b.expect.bridge else ()


def network_start(b: VifBinding, ctx: _Ctx) -> tuple[Item, ...]:
    """An inactive libvirt network: start it (libvirt recreates its bridge; attach re-plugs the taps)."""
    net = b.expect.network
    if net is None:
        return ()
    uri = ctx.snap.uri
    return (
        _vif_action(
            b,
            Problem.NETWORK_INACTIVE,
            ActionKind.NETWORK_START,
            net.name,
            f"start libvirt network {net.name}",
            (virsh(uri, "net-start", net.name),),
            (virsh(uri, "net-destroy", net.name),),
            (NetworkActive(net.name),),
        ),
    )


def link_state_up(b: VifBinding, ctx: _Ctx) -> tuple[Item, ...]:
    """libvirt ``<link state='down'/>``: only planned when link_down was asked for (see plan_fixes)."""
    if not b.vif.mac:
        return (_skip(b, Problem.LINK_STATE_DOWN, "the interface has no MAC to name it by"),)
    uri, dom, mac = ctx.snap.uri, b.vif.domain, b.vif.mac
    return (
        _vif_action(
            b,
            Problem.LINK_STATE_DOWN,
            ActionKind.LINK_STATE_UP,
            f"{b.vif.domain}/{b.vif.mac}",
            f"set libvirt link state of {b.vif.domain} {b.vif.mac} up",
            (virsh(uri, "domif-setlink", dom, mac, "up"),),
            (virsh(uri, "domif-setlink", dom, mac, "down"),),
            (VifLinkState(b.vif.domain, b.vif.mac, "up"),),
        ),
    )


VIF_FIXES: dict[Problem, Builder] = {
    Problem.NETWORK_INACTIVE: network_start,
    Problem.BRIDGE_MISSING: bridge_missing,
    Problem.DETACHED: attach,
    Problem.MISBOUND: attach,
    Problem.OVS_ATTACHED_MAC_MISMATCH: ovs_attached_mac,
    Problem.BRIDGE_DOWN: bridge_up,
    Problem.TAP_DOWN: tap_up,
    Problem.LINK_STATE_DOWN: link_state_up,
}

_REPLUG = "re-plug the interface so libvirt recreates it (virsh detach-device / attach-device) or restart the domain"
LEFT_ALONE: dict[Problem, str] = {
    Problem.NO_TARGET: f"no <target dev=> in the live XML: libvirt made no host link; {_REPLUG}",
    Problem.LINK_MISSING: f"the host link is gone and only QEMU can recreate it; {_REPLUG}",
    Problem.NETWORK_MISSING: "the libvirt network is not defined: define it (virsh net-define) or fix the domain XML",
    Problem.LOWER_MISMATCH: f"a macvtap's lower device is fixed when libvirt creates it; {_REPLUG}",
    Problem.MODE_MISMATCH: f"a macvtap's mode is fixed when libvirt creates it; {_REPLUG}",
    Problem.NOT_MACVTAP: f"the target is not a macvtap; {_REPLUG}",
    Problem.LOWER_DOWN: "the macvtap lower is a host NIC: vifscope does not change host NICs (check, then set it up)",
    Problem.NO_CARRIER: "the tap is up without carrier: no QEMU process holds it (check the domain's QEMU process)",
    Problem.OVS_ERROR: "OVS reports an interface error: see 'ovs-vsctl get Interface TAP error'",
    Problem.SOURCE_UNAVAILABLE: "a source needed to judge this vif was unavailable: nothing is changed blind",
    **dict.fromkeys(
        (
            Problem.SOCKET_MISSING,
            Problem.NOT_A_SOCKET,
            Problem.SOCKET_UNHELD,
            Problem.SOCKET_NOT_QEMU,
            Problem.SOCKET_NOT_CONNECTED,
        ),
        "the vhost-user socket belongs to QEMU and the switch: restart the side that should hold it "
        "(mode='server': the domain; mode='client': the switch)",
    ),
    **dict.fromkeys(
        (Problem.OVS_VHOST_PATH_MISMATCH,),
        "the OVS vhost-user port needs a DPDK datapath vifscope does not manage: fix the port's type / "
        "options:vhost-server-path with ovs-vsctl",
    ),
    **dict.fromkeys(
        (Problem.VF_MISSING, Problem.VF_MAC_MISMATCH, Problem.VF_VLAN_MISMATCH, Problem.VF_LINK_DISABLED),
        "libvirt programs the VF when it hands it to the guest: re-plug the interface or restart the domain "
        "(or 'ip link set PF vf N mac M vlan V')",
    ),
}
# Not faults of the binding: nothing to fix, nothing to report.
NOT_FAULTS = frozenset({Problem.DOMAIN_INACTIVE, Problem.UNVERIFIED_TYPE})
LINK_DOWN_WHY = (
    "libvirt <link state='down'/> is set, maybe on purpose: vifscope leaves this vif alone "
    "(--fix-link-down sets it up and fixes the rest)"
)


def _vif_items(b: VifBinding, ctx: _Ctx) -> Iterable[Item]:
    for problem in b.problems:
        builder = VIF_FIXES.get(problem)
        if builder is not None:
            yield from builder(b, ctx)
        elif problem not in NOT_FAULTS:
            yield _skip(b, problem, LEFT_ALONE.get(problem, "no safe automatic fix is known for this problem"))


def _needs_fixing(b: VifBinding) -> bool:
    """Running and not bound. Unverified vifs pass too: a needed source being down is reported as a skip."""
    return b.vif.domain_state.has_taps and b.status not in (VifStatus.BOUND, VifStatus.INACTIVE)


def _assemble(uri: str, items: Iterable[Item]) -> Plan:
    """One action per (kind, target), in ActionKind order; one skip per (reason, target)."""
    actions: dict[tuple[str, str], Action] = {}
    skips: dict[tuple[str, str], Skip] = {}
    for item in items:
        if isinstance(item, Action):
            actions.setdefault(item.key, item)
        else:
            skips.setdefault((item.reason, item.target), item)
    phase = {kind: i for i, kind in enumerate(ActionKind)}
    ordered = sorted(actions.values(), key=lambda a: (phase[a.kind], a.target))
    return Plan(uri=uri, actions=tuple(ordered), skipped=tuple(sorted(skips.values(), key=lambda s: s.target)))


def plan_fixes(
    snapshot: HostSnapshot,
    bindings: Sequence[VifBinding],
    findings: Sequence[Finding] = (),
    *,
    host: bool = False,
    link_down: bool = False,
    sysctl_dir: str = SYSCTL_DIR,
) -> Plan:
    """The safe fixes for these bindings (and, with ``host``, the host findings' sysctls)."""
    faulty = [b for b in bindings if _needs_fixing(b)]
    items: list[Item] = []
    eligible: list[VifBinding] = []
    for b in faulty:
        if Problem.LINK_STATE_DOWN in b.problems and not link_down:
            items.append(_skip(b, Problem.LINK_STATE_DOWN, LINK_DOWN_WHY))
        else:
            eligible.append(b)
    starting = frozenset(
        b.expect.network.name for b in eligible if Problem.NETWORK_INACTIVE in b.problems and b.expect.network
    )
    ctx = _Ctx(snapshot, starting)
    for b in eligible:
        items.extend(_vif_items(b, ctx))
    items.extend(host_items(findings, host=host, sysctl_dir=sysctl_dir))
    return _assemble(snapshot.uri, items)
