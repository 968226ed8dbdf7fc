"""Binding checks: one per fault of the vif ↔ tap ↔ bridge join. They read the problems
bind.py already found (never redo the join) and add the evidence and the exact fix."""

from __future__ import annotations

from collections.abc import Iterator

from vifscope.checks.base import Check, CheckContext, Explain
from vifscope.checks.commands import ip_link, ip_link_add, ovs_vsctl, virsh
from vifscope.checks.fixes import attach_commands, attach_fix, link_up_fix, replug_fix, restart_network_fix
from vifscope.model import Command, Finding, Fix, Problem, Severity, VifBinding

_P = Problem


def _with(ctx: CheckContext, *problems: Problem) -> Iterator[VifBinding]:
    wanted = set(problems)
    return (b for b in ctx.running if wanted & set(b.problems))


def _seen(b: VifBinding) -> list[tuple[str, object]]:
    link = b.link
    return [
        ("target", b.vif.target),
        ("expected_attach", b.expect.attach),
        ("expected", b.expect.bridge or b.expect.lower or ", ".join(b.expect.lower_pool) or None),
        ("actual", b.actual_bridge),
        ("admin_up", link.admin_up if link else None),
        ("carrier", link.carrier if link else None),
    ]


def vif_missing(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in _with(ctx, _P.LINK_MISSING, _P.NO_TARGET):
        how = "no <target dev=> in the live XML" if _P.NO_TARGET in b.problems else f"no kernel link {b.vif.target}"
        msg = f"running, but {how}: the guest's NIC is connected to nothing"
        yield c.on_vif(b, msg, _seen(b), replug_fix(b, ctx.snap.uri))


def vif_detached(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in _with(ctx, _P.DETACHED):
        msg = f"{b.vif.target} sits on no bridge; declared {b.expect.bridge}"
        yield c.on_vif(b, msg, _seen(b), attach_fix(b, ctx.snap), subject=b.expect.bridge)


def vif_misbound(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in _with(ctx, _P.MISBOUND, _P.LOWER_MISMATCH, _P.MODE_MISMATCH, _P.NOT_MACVTAP):
        fix = attach_fix(b, ctx.snap)
        yield c.on_vif(b, f"{b.vif.target} is plugged elsewhere: {b.detail}", _seen(b), fix, subject=b.expect.bridge)


def vif_tap_down(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in _with(ctx, _P.TAP_DOWN, _P.NO_CARRIER):
        if _P.TAP_DOWN in b.problems:
            yield c.on_vif(b, f"{b.vif.target} is admin down", _seen(b), link_up_fix(b.vif.target))
        else:
            fix = Fix((virsh(ctx.snap.uri, "resume", b.vif.domain),), "when paused; otherwise re-plug the NIC")
            yield c.on_vif(b, f"{b.vif.target} has no carrier: QEMU does not hold the tap open", _seen(b), fix)


def vif_link_state_down(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in _with(ctx, _P.LINK_STATE_DOWN):
        mac = b.vif.mac
        fix = Fix((virsh(ctx.snap.uri, "domif-setlink", b.vif.domain, mac, "up"),)) if mac else None
        yield c.on_vif(
            b, "libvirt <link state='down'/>: the guest sees its NIC unplugged", [("link_state", "down")], fix
        )


def bridge_missing(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in _with(ctx, _P.BRIDGE_MISSING):
        br = b.expect.bridge
        yield c.on_vif(b, f"declared bridge {br} does not exist", [("bridge", br)], _create_bridge(ctx, b), subject=br)


def _create_bridge(ctx: CheckContext, b: VifBinding) -> Fix | None:
    br, net = b.expect.bridge, b.expect.network
    if net is not None:
        return restart_network_fix(ctx.snap.uri, net.name, "then re-attach its vifs (doctor --fix)")
    if br is None:
        return None
    create: tuple[Command, ...]
    if b.expect.attach == "ovs-bridge":
        create = (ovs_vsctl("add-br", br),)
    else:
        create = (ip_link_add(br, "type", "bridge"), ip_link(br, "up"))
    return Fix((*create, *attach_commands(b, ctx.snap)))


def bridge_down(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in _with(ctx, _P.BRIDGE_DOWN):
        br = b.expect.bridge
        yield c.on_vif(
            b, f"bridge {br} is admin down", [("bridge", br), ("admin_up", False)], link_up_fix(br), subject=br
        )


def direct_lower_down(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in _with(ctx, _P.LOWER_DOWN):
        lower = b.link.lower if b.link else b.expect.lower
        low = ctx.snap.links_by_name.get(lower or "")
        ev = [("lower", lower), ("admin_up", low.admin_up if low else None), ("carrier", low.carrier if low else None)]
        yield c.on_vif(b, f"macvtap lower device {lower} is down", ev, link_up_fix(lower), subject=lower)


def vif_unverified(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in _with(ctx, _P.UNVERIFIED_TYPE):
        yield c.on_vif(b, f"not checked: {b.detail}", [("type", b.vif.type)])


CHECKS: tuple[Check, ...] = (
    Check(
        "vif.missing",
        "binding",
        Severity.ERROR,
        "running vif has no host link",
        vif_missing,
        Explain(
            "The domain runs but the tap/macvtap its live XML names does not exist (or the XML names none).",
            "The guest's NIC is connected to nothing: no traffic in or out.",
            "Re-plug the NIC (virsh detach-interface + attach-device --live) or restart the domain; a deleted tap "
            "cannot be handed back to a running QEMU.",
            "vifscope runs in another network namespace than the taps (use the host namespace).",
        ),
    ),
    Check(
        "vif.detached",
        "binding",
        Severity.ERROR,
        "tap on no bridge",
        vif_detached,
        Explain(
            "The tap exists but is attached to no Linux bridge / OVS bridge.",
            "Classic after a bridge was deleted and re-created, or after 'ip link set vnetX nomaster': the guest "
            "only reaches itself.",
            "ip link set TAP master BRIDGE (Linux) or ovs-vsctl add-port BRIDGE TAP with libvirt's external_ids (OVS); "
            "doctor --fix does it.",
        ),
    ),
    Check(
        "vif.misbound",
        "binding",
        Severity.ERROR,
        "vif plugged somewhere else",
        vif_misbound,
        Explain(
            "The tap is on another bridge than declared, or a macvtap sits on another lower device or mode.",
            "The guest is on the wrong L2 segment: wrong DHCP, wrong VLAN, reaches the wrong neighbours.",
            "Move it: ip link set TAP nomaster; ip link set TAP master DECLARED (macvtap: re-plug the NIC).",
            "A deliberate manual re-plug for debugging.",
        ),
    ),
    Check(
        "vif.tap_down",
        "binding",
        Severity.ERROR,
        "tap down or without carrier",
        vif_tap_down,
        Explain(
            "The host side of the vif is admin down, or up without carrier (QEMU does not hold it).",
            "No frame crosses a down link.",
            "ip link set TAP up; no carrier on a running domain: resume it or re-plug the NIC.",
            "A paused domain's tap keeps carrier; a domain being shut down may briefly lose it.",
        ),
    ),
    Check(
        "vif.link_state_down",
        "binding",
        Severity.ERROR,
        "libvirt link state down",
        vif_link_state_down,
        Explain(
            "The interface has <link state='down'/>: QEMU reports the NIC as unplugged to the guest.",
            "The guest has no link. Often set on purpose (isolation, maintenance) and forgotten.",
            "virsh domif-setlink DOMAIN MAC up (doctor --fix only with --fix-link-down).",
            "Set on purpose to isolate the guest.",
        ),
    ),
    Check(
        "bridge.missing",
        "binding",
        Severity.ERROR,
        "declared bridge does not exist",
        bridge_missing,
        Explain(
            "The bridge (or OVS bridge) a vif is declared on does not exist.",
            "Its vifs are detached; new domains on it fail to start.",
            "Re-create it (ip link add BR type bridge / ovs-vsctl add-br / virsh net-start) and re-attach the taps.",
        ),
    ),
    Check(
        "bridge.down",
        "binding",
        Severity.ERROR,
        "bridge admin down",
        bridge_down,
        Explain(
            "The Linux bridge a vif is on is admin down.",
            "A down bridge forwards nothing between its ports.",
            "ip link set BRIDGE up",
        ),
    ),
    Check(
        "direct.lower_down",
        "binding",
        Severity.ERROR,
        "macvtap lower device down",
        direct_lower_down,
        Explain(
            "The physical (lower) device of a macvtap vif is down or has no carrier.",
            "macvtap frames leave only through the lower device.",
            "ip link set LOWER up; no carrier: check the cable / switch port / peer.",
        ),
    ),
    Check(
        "vif.unverified",
        "binding",
        Severity.INFO,
        "vif type not checkable",
        vif_unverified,
        Explain(
            "hostdev, vhost-user, user-mode and socket backends have no host link vifscope can check.",
            "Nothing to fix; listed so a clean report is not mistaken for a checked one.",
            "None needed.",
        ),
    ),
)
