"""Checks on the Linux bridges running vifs are declared on: uplinks, STP, MTU."""

from __future__ import annotations

from collections.abc import Iterator

from vifscope.checks.base import Check, CheckContext, Explain, names
from vifscope.checks.commands import ip_link, link_info, virsh
from vifscope.model import Finding, Fix, ObservedLink, Severity, VifBinding


def _network_bridges(ctx: CheckContext) -> set[str]:
    """Bridges libvirt networks own: their way out is the host's routing, not an uplink port."""
    return {n.bridge for n in ctx.snap.networks if n.bridge}


def no_uplink(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    owned = _network_bridges(ctx)
    for br, vifs in ctx.linux_bridges.items():
        addresses = ctx.host_addresses(br)
        if br in owned or ctx.uplinks(br) or addresses:
            continue
        ev = [("bridge", br), ("vifs", names(vifs)), ("uplinks", ""), ("host_addresses", "")]
        fix = Fix((ip_link("NIC", "master", br),), "NIC: the physical port, bond or veth that leads out")
        yield c.on_host(br, f"bridge {br} has no uplink and no host address: its guests reach only each other", ev, fix)


def uplink_down(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for br in ctx.linux_bridges:
        uplinks = ctx.uplinks(br)
        down = [u for u in uplinks if not (u.admin_up and u.carrier)]
        if not down:
            continue
        every = len(down) == len(uplinks)
        ev = [("bridge", br)] + [(u.name, "admin down" if not u.admin_up else "no carrier") for u in down]
        fix = _uplink_fix(down)
        what = "every uplink" if every else "an uplink"
        sev = Severity.ERROR if every else Severity.WARNING
        yield c.on_host(br, f"{what} of {br} is down: {', '.join(u.name for u in down)}", ev, fix, severity=sev)


def _uplink_fix(down: list[ObservedLink]) -> Fix:
    """Set the admin-down ones up; when every one is up but without carrier, look at the first."""
    ups = tuple(ip_link(u.name, "up") for u in down if not u.admin_up)
    return Fix(ups) if ups else Fix((link_info(down[0].name),), "no carrier: check the cable, switch port or veth peer")


def stp_forward_delay(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for br in ctx.linux_bridges:
        link = ctx.snap.links_by_name[br]
        if not link.stp_state or not link.forward_delay:
            continue
        delay_s = link.forward_delay / 100
        ev = [("bridge", br), ("stp_state", link.stp_state), ("forward_delay_s", delay_s)]
        net = next((n.name for n in ctx.snap.networks if n.bridge == br), None)
        fix = (
            Fix((virsh(ctx.snap.uri, "net-edit", net),), "<bridge stp='off' delay='0'/>, then restart the network")
            if net
            # Two commands: the kernel applies forward_delay first and refuses 0 while STP is on.
            else Fix(
                (ip_link(br, "type", "bridge", "stp_state", "0"), ip_link(br, "type", "bridge", "forward_delay", "0"))
            )
        )
        msg = f"STP on {br} with a {delay_s:g} s forward delay: a new vif forwards nothing for {2 * delay_s:g} s"
        yield c.on_host(br, msg, ev, fix)


def stp_off_multi_uplink(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for br in ctx.linux_bridges:
        link = ctx.snap.links_by_name[br]
        uplinks = ctx.uplinks(br)
        if link.stp_state or len(uplinks) < 2:
            continue
        ev = [("bridge", br), ("stp_state", link.stp_state), ("uplinks", ", ".join(u.name for u in uplinks))]
        fix = Fix((ip_link(br, "type", "bridge", "stp_state", "1"),), "or bond the uplinks into one port")
        yield c.on_host(br, f"{br} has {len(uplinks)} uplinks and STP off: one loop floods the segment", ev, fix)


def _declared_mtu(b: VifBinding) -> tuple[int | None, str]:
    """The MTU the XML asks for: the interface's <mtu>, else its libvirt network's."""
    if b.vif.mtu:
        return b.vif.mtu, "interface <mtu>"
    if b.expect.network is not None and b.expect.network.mtu:
        return b.expect.network.mtu, f"network {b.expect.network.name} <mtu>"
    return None, ""


def mtu_mismatch(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in ctx.running:
        if b.link is None or b.link.mtu is None or b.expect.attach != "linux-bridge":
            continue
        tap = b.link.mtu
        declared, why = _declared_mtu(b)
        bridge = ctx.snap.links_by_name.get(b.actual_bridge or "")
        bridge_mtu = bridge.mtu if bridge is not None else None
        off = [(w, m) for w, m in ((why, declared), (f"bridge {b.actual_bridge}", bridge_mtu)) if m and m != tap]
        if not off:
            continue
        want = declared or bridge_mtu
        ev = [("tap_mtu", tap), ("bridge_mtu", bridge_mtu), ("declared_mtu", declared)]
        keep = f"keep it: <mtu size='{want}'/> in the interface XML"
        fix = Fix((ip_link(b.link.name, "mtu", str(want)),), keep)
        msg = f"{b.vif.target} MTU {tap} differs from " + ", ".join(f"{w} ({m})" for w, m in off)
        yield c.on_vif(b, msg + ": larger frames are dropped", ev, fix, subject=b.actual_bridge)


CHECKS: tuple[Check, ...] = (
    Check(
        "bridge.no_uplink",
        "binding",
        Severity.WARNING,
        "bridge without uplink",
        no_uplink,
        Explain(
            "A Linux bridge with running vifs has no port besides guest ports (taps, running domains' targets), "
            "and the host has no address on it.",
            "Its guests can talk to each other only: no way to the LAN, the host or the internet.",
            "Attach the physical NIC or a veth to the bridge (ip link set NIC master BR), or give the host an address "
            "on it and route.",
            "A deliberately private guest-only segment.",
        ),
    ),
    Check(
        "bridge.uplink_down",
        "binding",
        Severity.ERROR,
        "bridge uplink down",
        uplink_down,
        Explain(
            "A port of the bridge that is not a guest port (the NIC, bond or veth leading out; a running domain's "
            "target, an LXC guest's veth included, never counts) is down or has no carrier.",
            "Every uplink down: guests are cut off from the outside. Some down: redundancy is gone.",
            "ip link set UPLINK up; no carrier means the cable, switch port or veth peer.",
        ),
    ),
    Check(
        "bridge.stp_forward_delay",
        "binding",
        Severity.WARNING,
        "STP forward delay",
        stp_forward_delay,
        Explain(
            "STP is on and the forward delay is above zero (the kernel forces at least 2 s while STP is on).",
            "A newly plugged vif goes listening → learning → forwarding: it forwards nothing for twice the delay "
            "(30 s with the 15 s default), long enough for the guest's DHCP client to give up — the classic "
            "'no DHCP after boot'.",
            "Turn STP off when the bridge has a single uplink (ip link set BR type bridge stp_state 0, then "
            "forward_delay 0; "
            "libvirt networks: <bridge stp='off' delay='0'/>).",
            "Bridges with several uplinks need STP (see sec.stp_off_multi_uplink); then accept the delay.",
        ),
    ),
    Check(
        "sec.stp_off_multi_uplink",
        "security",
        Severity.WARNING,
        "loop risk",
        stp_off_multi_uplink,
        Explain(
            "A bridge with two or more uplinks has STP off.",
            "If two uplinks reach the same L2 segment, one loop floods and melts the segment (broadcast storm).",
            "Enable STP (ip link set BR type bridge stp_state 1), or bond the uplinks into one port.",
            "Uplinks into separate segments that are never joined.",
        ),
    ),
    Check(
        "vif.mtu_mismatch",
        "binding",
        Severity.WARNING,
        "MTU mismatch",
        mtu_mismatch,
        Explain(
            "The tap's MTU differs from the bridge it is on, or from the MTU declared in the XML (<mtu size=>) or by "
            "its libvirt network.",
            "Frames larger than the smallest MTU on the path are dropped silently: small pings work, TCP stalls.",
            "ip link set TAP mtu N, and declare <mtu size='N'/> so a restart keeps it.",
        ),
    ),
)
