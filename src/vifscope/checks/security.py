"""Security checks on each running vif: anti-spoofing filters, bridge port isolation,
promiscuous listeners, guests trusted to change the host's RX filters."""

from __future__ import annotations

from collections.abc import Iterator

from vifscope.checks.base import Check, CheckContext, Explain, needs, short
from vifscope.checks.commands import bridge_link, ip_link
from vifscope.checks.fixes import edit_fix
from vifscope.model import Command, Finding, Fix, ObservedLink, Severity, VifBinding

ANTI_SPOOF = ("no-mac-spoofing", "no-ip-spoofing", "no-arp-spoofing")


def protections(ctx: CheckContext, b: VifBinding) -> tuple[str | None, tuple[str, ...]]:
    """(filter bound to the vif's port, the anti-spoof filters it includes)."""
    binding = ctx.facts.bindings_by_port.get(b.vif.target or "")
    if binding is None:
        return None, ()
    closure = ctx.filter_closure(binding.filter)
    return binding.filter, tuple(p for p in ANTI_SPOOF if p in closure)


def shared(ctx: CheckContext, bridge: str) -> bool:
    """A bridge is shared when it leads out (uplink) or holds more than one guest."""
    return bool(ctx.uplinks(bridge)) or len(ctx.guest_ports(bridge)) > 1


def no_spoof_filter(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for br, vifs in ctx.linux_bridges.items():
        if not shared(ctx, br):
            continue
        for b in vifs:
            name, found = protections(ctx, b)
            if "no-mac-spoofing" in found:
                continue
            ev = [
                ("bridge", br),
                ("nwfilter", name),
                ("declared_filterref", b.vif.filterref),
                ("protects", ", ".join(found)),
            ]
            how = "no nwfilter bound" if name is None else f"nwfilter {name} has no no-mac-spoofing"
            if b.vif.filterref and name is None:
                how = f"<filterref filter='{b.vif.filterref}'/> is declared but not bound to {b.vif.target}"
            change = "add <filterref filter='clean-traffic'/> to the interface, then re-plug it"
            fix = edit_fix(ctx.snap.uri, b.vif.domain, change)
            yield c.on_vif(b, f"{how}: the guest can spoof MAC/IP on shared bridge {br}", ev, fix, subject=br)


def declared_isolated(ctx: CheckContext, b: VifBinding) -> bool:
    extras = ctx.facts.extras_by_vif.get((b.vif.domain, b.vif.index))
    net = ctx.facts.runtime_by_network.get(b.expect.network.name) if b.expect.network else None
    if extras is not None and extras.port_isolated is not None:
        return extras.port_isolated
    return bool(net and net.port_isolated)


def port_not_isolated(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    # Per vif only when the XML asks for isolation (a fault of that vif). Guests that merely
    # share a bridge are one fact about the bridge, reported once for it: per vif it is the
    # isolation summary's "virtual" layer, and 5,000 copies of it on a big node are noise.
    for br, vifs in ctx.linux_bridges.items():
        shared = False  # a libvirt vif on it is open and nothing asks for isolation
        for b in vifs:
            if b.link is None or b.link.master != br or b.link.isolated:
                continue
            if not declared_isolated(ctx, b):
                shared = True
                continue
            _count, others = ctx.peers(br, b.link.name)
            ev = [("bridge", br), ("isolated", b.link.isolated), ("other_guest_ports", others)]
            fix = Fix((bridge_link(b.link.name, "isolated", "on"),), "keep it: <port isolated='yes'/> in the XML")
            msg = f"<port isolated='yes'/> is declared but {b.vif.target} is not isolated on {br}"
            yield c.on_vif(b, msg, ev, fix, subject=br)
        if shared:
            yield from _shared_bridge(c, br, ctx.guest_ports(br))


# $1 the bridge; then the guest ports that are not taps (an LXC guest's veth), named one by one.
ISOLATE_GUESTS = (
    'br=$1; shift; rc=0; for p in "/sys/class/net/$br/brif"/*; do p=${p##*/}; '
    '[ -e "/sys/class/net/$p/tun_flags" ] || continue; bridge link set dev "$p" isolated on || rc=1; done; '
    'for p in "$@"; do bridge link set dev "$p" isolated on || rc=1; done; [ $rc = 0 ]'
)


def _shared_bridge(c: Check, br: str, guests: tuple[ObservedLink, ...]) -> Iterator[Finding]:
    """One info finding for a bridge whose guest ports (every tap on it, libvirt's or not)
    are not all isolated, when more than one guest shares it."""
    open_ports = [p.name for p in guests if not p.isolated]
    if len(guests) < 2 or not open_ports:
        return
    ev = [("bridge", br), ("guest_ports", len(guests)), ("not_isolated", len(open_ports)), ("ports", short(open_ports))]
    # Every tap on the bridge by sysfs, not a list: a big bridge has thousands of ports, and the
    # uplinks (not taps) stay open so the guests keep their way out. Guest ports that are not taps
    # (a declared veth) are few and named. Any failure fails the loop. A loop is not an argv:
    # ``sh -c`` runs it with the names as arguments, so no name is ever script.
    veths = tuple(p.name for p in guests if not p.isolated and p.kind != "tun")
    fix = Fix((Command(("sh", "-c", ISOLATE_GUESTS, "sh", br, *veths)),), "and <port isolated='yes'/> in each XML")
    msg = f"{len(open_ports)} of the {len(guests)} guest ports on {br} are not isolated: they reach each other at L2"
    yield c.on_host(br, msg, ev, fix, severity=Severity.INFO)


def baseline_promiscuity(ctx: CheckContext, b: VifBinding) -> int:
    """Promiscuity the plumbing itself sets: one for a bridge port or an OVS port. With OVSDB
    unreadable, a vif declared on OVS is taken to be its port: OVS's netdev datapath gives the
    tap no netlink master, so nothing else could tell, and "turn promisc off" would break it."""
    link = b.link
    if link is None:
        return 0
    ovs_port = link.name in ctx.snap.ovs_by_name or (ctx.snap.failed("ovs") and b.expect.attach == "ovs-bridge")
    return int(link.slave_kind == "bridge" or ovs_port)


def promisc(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in ctx.running:
        if b.link is None or b.link.promiscuity is None:
            continue
        base = baseline_promiscuity(ctx, b)
        if b.link.promiscuity <= base:
            continue
        ev = [("promiscuity", b.link.promiscuity), ("expected", base), ("kind", b.link.kind)]
        fix = Fix((ip_link(b.link.name, "promisc", "off"),), "a manual setting; a capture holds it until it ends")
        msg = (
            f"{b.vif.target} is promiscuous beyond its plumbing ({b.link.promiscuity} > {base}): something captures it"
        )
        yield c.on_vif(b, msg, ev, fix)


def trust_rx_filters(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in ctx.bindings:
        extras = ctx.facts.extras_by_vif.get((b.vif.domain, b.vif.index))
        if extras is None or not extras.trust_guest_rx_filters:
            continue
        ev = [("type", b.vif.type), ("trustGuestRxFilters", True)]
        fix = edit_fix(ctx.snap.uri, b.vif.domain, "drop trustGuestRxFilters='yes' from the interface")
        msg = "trustGuestRxFilters='yes': the guest changes the host macvtap's MAC, multicast and promiscuous mode"
        yield c.on_vif(b, msg, ev, fix)


_NWF = (needs("nwfilter_bindings", "nwfilter bindings"), needs("nwfilters", "nwfilter definitions"))
_EXTRAS = needs("interface_extras", "interface attributes")
CHECKS: tuple[Check, ...] = (
    Check(
        "sec.no_spoof_filter",
        "security",
        Severity.WARNING,
        "no anti-spoofing filter",
        no_spoof_filter,
        Explain(
            "A vif on a shared Linux bridge (one with an uplink or other guests) has no libvirt nwfilter binding "
            "that includes no-mac-spoofing (clean-traffic does).",
            "The guest can send with any MAC or IP: impersonate the gateway, poison ARP caches, hijack neighbours.",
            "<filterref filter='clean-traffic'/> in the interface XML (needs ebtables); re-plug or restart to apply.",
            "Guests that must send as other MACs (routers, bridges, VRRP) — use a custom filter.",
        ),
        _NWF,
    ),
    Check(
        "sec.port_not_isolated",
        "security",
        Severity.ERROR,
        "bridge port not isolated",
        port_not_isolated,
        Explain(
            "A vif's bridge port does not have the kernel's isolated flag although the XML declares "
            "<port isolated='yes'/> (on the interface or its network): error, per vif — a hand re-plug loses the "
            "flag. Info, once per bridge, when nothing asks for isolation but guests share the bridge (which vifs "
            "share what: the isolation summary's virtual layer).",
            "Non-isolated ports reach every other guest port directly at L2, bypassing any router or firewall.",
            "bridge link set dev TAP isolated on; declare <port isolated='yes'/> so libvirt keeps it.",
            "Guests that are meant to talk to each other (the info level says so).",
        ),
        (_EXTRAS,),
    ),
    Check(
        "sec.promisc",
        "security",
        Severity.WARNING,
        "promiscuous vif",
        promisc,
        Explain(
            "The vif's host link is promiscuous more times than the plumbing explains (a bridge or OVS port counts "
            "one).",
            "Someone (tcpdump, an IDS) or the guest itself (macvtap with trustGuestRxFilters) receives frames not "
            "meant for it.",
            "Find and stop the listener; ip link set TAP promisc off when set by hand.",
            "A deliberate monitoring session.",
        ),
    ),
    Check(
        "sec.trust_guest_rx_filters",
        "security",
        Severity.WARNING,
        "guest trusted with RX filters",
        trust_rx_filters,
        Explain(
            "The interface has trustGuestRxFilters='yes'.",
            "libvirt applies the guest's MAC, multicast and promiscuous changes to the host macvtap: a guest can "
            "change its MAC or sniff the lower device's traffic.",
            "Remove the attribute unless the guest must change its MAC (bonding, CARP).",
        ),
        (_EXTRAS,),
    ),
)
