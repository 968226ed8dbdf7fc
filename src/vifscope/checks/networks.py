"""libvirt networks and the host's forwarding path: networks inactive / undefined / without
bridge / without dnsmasq / without NAT rules, IP forwarding, br_netfilter vs a DROP policy,
and macvtap's host ↔ guest blind spot."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Iterator

from vifscope.checks.base import Check, CheckContext, Explain, names, needs
from vifscope.checks.commands import ip_link, ip_link_add, virsh
from vifscope.checks.fixes import restart_network_fix, sysctl_fix
from vifscope.model import Finding, Fix, LibvirtNetwork, Problem, Severity, VifBinding

RESTART_NOTE = "then re-attach its running vifs"


def _users(ctx: CheckContext) -> dict[str, list[VifBinding]]:
    users: dict[str, list[VifBinding]] = defaultdict(list)
    for b in ctx.running:
        if b.expect.network is not None:
            users[b.expect.network.name].append(b)
    return users


def network_inactive(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    users = _users(ctx)
    for net in ctx.snap.networks:
        vifs = [b for b in users.get(net.name, []) if Problem.NETWORK_INACTIVE in b.problems]
        if net.active or not vifs:
            continue
        ev = [("network", net.name), ("autostart", net.autostart), ("vifs", names(vifs))]
        fix = Fix(
            (virsh(ctx.snap.uri, "net-start", net.name),), f"{RESTART_NOTE}: libvirt does not (doctor --fix does)"
        )
        yield c.on_host(net.name, f"network {net.name} is inactive but {len(vifs)} running vif(s) use it", ev, fix)


def network_undefined(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in ctx.running:
        if Problem.NETWORK_MISSING in b.problems:
            name = b.vif.network or b.vif.source
            fix = (
                Fix(
                    (virsh(ctx.snap.uri, "net-define", f"{name}.xml"), virsh(ctx.snap.uri, "net-start", name)),
                    "or point the interface at another network",
                )
                if name
                else None
            )
            yield c.on_vif(b, f"declared network {name} is not defined", [("network", name)], fix, subject=name)


def _bridge_exists(net: LibvirtNetwork, ctx: CheckContext) -> bool:
    if net.virtualport == "openvswitch":
        return net.bridge in ctx.snap.ovs_bridges
    return net.bridge in ctx.snap.links_by_name


def network_bridge_missing(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for net in ctx.snap.networks:
        if not net.active or not net.bridge or net.kind not in ("linux-bridge", "ovs-bridge"):
            continue
        if net.virtualport == "openvswitch" and not ctx.snap.ovs_available:
            continue  # OVSDB down: ovs.not_running says so
        if _bridge_exists(net, ctx):
            continue
        fix = restart_network_fix(ctx.snap.uri, net.name, RESTART_NOTE)
        ev = [("network", net.name), ("bridge", net.bridge), ("mode", net.mode)]
        yield c.on_host(net.name, f"network {net.name} is active but its bridge {net.bridge} does not exist", ev, fix)


def dhcp_not_running(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for net in ctx.snap.networks:
        rt = ctx.facts.runtime_by_network.get(net.name)
        if not net.active or not net.dhcp_ranges or rt is None or rt.dnsmasq_running is not False:
            continue
        ev = [("network", net.name), ("dnsmasq_pid", rt.dnsmasq_pid), ("leases", net.leases)]
        fix = restart_network_fix(ctx.snap.uri, net.name, RESTART_NOTE)
        yield c.on_host(net.name, f"network {net.name} has DHCP ranges but no dnsmasq is running for it", ev, fix)


def _ipv4_networks(prefixes: Iterable[str]) -> list[ipaddress.IPv4Network]:
    """The IPv4 prefixes among ``prefixes``; what does not parse is skipped (the parsers keep
    out what libvirt would refuse, but a check must not crash on what some source let through)."""
    out = []
    for prefix in prefixes:
        try:
            net = ipaddress.ip_network(prefix, strict=False)
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network):
            out.append(net)
    return out


def _nat_sources(ctx: CheckContext) -> list[ipaddress.IPv4Network]:
    """IPv4 source prefixes some MASQUERADE/SNAT rule covers (no source: everything)."""
    rules = ctx.facts.firewall.nat_rules if ctx.facts.firewall else ()
    return _ipv4_networks(rule.source or "0.0.0.0/0" for rule in rules)


def nat_rules_missing(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    sources = _nat_sources(ctx)
    for net in ctx.snap.networks:
        if not net.active or net.mode != "nat":
            continue
        for subnet in _ipv4_networks(net.addresses):
            if any(subnet.subnet_of(s) for s in sources):
                continue
            ev = [("network", net.name), ("subnet", str(subnet)), ("nat_rules", len(sources))]
            fix = restart_network_fix(ctx.snap.uri, net.name, "libvirt adds its rules again")
            msg = f"NAT network {net.name}: no MASQUERADE/SNAT rule for {subnet}: guests cannot reach outside"
            yield c.on_host(net.name, msg, ev, fix)


def ip_forward_off(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    sysctls = ctx.facts.sysctls
    routed = [n.name for n in ctx.snap.networks if n.active and n.mode in ("nat", "route", "open")]
    if sysctls is None or sysctls.ip_forward != 0 or not routed:
        return
    ev = [("net.ipv4.ip_forward", 0), ("forwarding_networks", ", ".join(routed))]
    fix = sysctl_fix(("net.ipv4.ip_forward", 1))
    yield c.on_host("host", f"IPv4 forwarding is off, but {', '.join(routed)} route/NAT guest traffic", ev, fix)


def _drop_chains(ctx: CheckContext) -> list[str]:
    sysctls = ctx.facts.sysctls
    fw = ctx.facts.firewall
    if sysctls is None or fw is None:
        return []
    v4, v6 = sysctls.bridge_nf_call_iptables == 1, sysctls.bridge_nf_call_ip6tables == 1
    applies = {"ip": v4, "ip6": v6, "inet": v4 or v6}
    return [
        f"{ch.family} {ch.table} {ch.name} ({ch.backend})"
        for ch in fw.chains
        if ch.hook == "forward" and ch.policy == "drop" and applies.get(ch.family, False)
    ]


def br_netfilter_drop(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    drops = _drop_chains(ctx)
    if not drops:
        return
    accepted = set(ctx.facts.firewall.forward_accept_ifaces if ctx.facts.firewall else ())
    hit = [br for br in ctx.linux_bridges if br not in accepted]
    sev = Severity.ERROR if hit else Severity.WARNING
    s = ctx.facts.sysctls
    ev: list[tuple[str, object]] = [
        ("bridge-nf-call-iptables", s.bridge_nf_call_iptables if s else None),
        ("bridge-nf-call-ip6tables", s.bridge_nf_call_ip6tables if s else None),
    ]
    ev += [("drop_chains", "; ".join(drops)), ("bridges_hit", ", ".join(hit))]
    fix = sysctl_fix(
        ("net.bridge.bridge-nf-call-iptables", 0),
        ("net.bridge.bridge-nf-call-ip6tables", 0),
        note="if nothing filters bridged traffic on purpose; else: iptables -I FORWARD -m physdev "
        "--physdev-is-bridged -j ACCEPT",
    )
    what = f"bridged traffic of {', '.join(hit)} is dropped" if hit else "any bridged VM traffic would be dropped"
    yield c.on_host(
        "host", f"br_netfilter sends bridged frames through a FORWARD DROP policy: {what}", ev, fix, severity=sev
    )


def host_unreachable(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    macvlans = [link for link in ctx.snap.links if link.kind == "macvlan" and link.macvtap_mode == "bridge"]
    host_side = {m.lower for m in macvlans if ctx.host_addresses(m.name)}
    for b in ctx.running:
        lower = b.link.lower if b.link is not None and b.link.kind == "macvtap" else None
        addrs = ctx.host_addresses(lower or "")
        if lower is None or not addrs or lower in host_side:
            continue
        mode = b.link.macvtap_mode if b.link else None
        ev = [("lower", lower), ("host_addresses", ", ".join(addrs)), ("mode", mode)]
        host = f"{lower[:10]}-host"  # IFNAMSIZ: 15 characters at most
        fix = Fix(
            (ip_link_add(host, "link", lower, "type", "macvlan", "mode", "bridge"), ip_link(host, "up")),
            f"then move the host's address from {lower} to {host}",
        )
        msg = f"macvtap on {lower}: the host's address on {lower} cannot reach this guest (nor the guest the host)"
        yield c.on_vif(b, msg, ev, fix, subject=lower)


_SYS = needs("sysctls", "sysctls")
_FW = needs("firewall", "the firewall ruleset")
CHECKS: tuple[Check, ...] = (
    Check(
        "network.inactive",
        "network",
        Severity.ERROR,
        "network inactive",
        network_inactive,
        Explain(
            "A libvirt network that running vifs are declared on is not active.",
            "Its bridge, dnsmasq and firewall rules are gone: those guests have no network.",
            "virsh net-start NET, then re-attach the running vifs (libvirt does not re-plug them); doctor --fix "
            "does both.",
        ),
    ),
    Check(
        "network.undefined",
        "network",
        Severity.ERROR,
        "network not defined",
        network_undefined,
        Explain(
            "A running vif names a libvirt network that is not defined (deleted while the domain ran).",
            "Nothing recreates the network's bridge; the next start of the domain fails.",
            "Define and start the network again (virsh net-define + net-start), or change the interface's source.",
        ),
    ),
    Check(
        "network.bridge_missing",
        "network",
        Severity.ERROR,
        "network bridge missing",
        network_bridge_missing,
        Explain(
            "libvirt says the network is active but its bridge does not exist (someone deleted it).",
            "Every vif of the network is detached; dnsmasq serves nothing.",
            "virsh net-destroy NET; virsh net-start NET; re-attach the vifs.",
        ),
    ),
    Check(
        "network.dhcp_not_running",
        "network",
        Severity.ERROR,
        "dnsmasq not running",
        dhcp_not_running,
        Explain(
            "An active network with DHCP ranges has no live dnsmasq (pid file /run/libvirt/network/NET.pid).",
            "Guests get no address and no DNS; existing leases stop renewing.",
            "virsh net-destroy NET; virsh net-start NET (restarts dnsmasq), then re-attach the vifs.",
            "Remote hosts (not qemu:///system): not evaluated.",
        ),
        (needs("network_runtime", "network runtime"),),
    ),
    Check(
        "network.nat_rules_missing",
        "network",
        Severity.ERROR,
        "NAT rules missing",
        nat_rules_missing,
        Explain(
            "A NAT network is active but no MASQUERADE/SNAT rule matches its subnet (nft / iptables-legacy).",
            "Guests reach the host but nothing beyond it. Typical after 'firewall-cmd --reload', 'nft flush "
            "ruleset' or Docker rewriting the tables.",
            "virsh net-destroy NET; virsh net-start NET makes libvirt add its rules again.",
            "NAT done by a rule vifscope cannot read (a legacy table in another namespace, an external router).",
        ),
        (_FW,),
    ),
    Check(
        "host.ip_forward_off",
        "host",
        Severity.ERROR,
        "IP forwarding off",
        ip_forward_off,
        Explain(
            "net.ipv4.ip_forward is 0 while a NAT/routed libvirt network is active.",
            "The host drops every packet its guests send beyond it.",
            "sysctl -w net.ipv4.ip_forward=1 and persist it in /etc/sysctl.d/ (doctor --fix --fix-host).",
        ),
        (_SYS,),
    ),
    Check(
        "host.br_netfilter_drop",
        "host",
        Severity.ERROR,
        "br_netfilter vs FORWARD DROP",
        br_netfilter_drop,
        Explain(
            "bridge-nf-call-iptables=1 (br_netfilter) and a forward-hook chain with policy DROP (iptables FORWARD, an "
            "nft forward chain) — e.g. after installing Docker.",
            "Frames bridged between a guest and its uplink are pushed through iptables FORWARD and dropped: bridged "
            "VMs silently lose traffic although every link is up.",
            "Set bridge-nf-call-iptables/ip6tables to 0, or accept bridged traffic "
            "(iptables -I FORWARD -m physdev --physdev-is-bridged -j ACCEPT).",
            "Bridges accepted by an explicit iifname/oifname rule are not counted; physdev or mark based accepts "
            "are not understood.",
        ),
        (_SYS, _FW),
    ),
    Check(
        "direct.host_unreachable",
        "network",
        Severity.WARNING,
        "macvtap host blind spot",
        host_unreachable,
        Explain(
            "A macvtap guest sits on a lower device that also carries the host's own address.",
            "macvtap frames go straight out of the lower device: the host and the guest cannot talk to each other "
            "(bridge, vepa and private modes alike) unless the external switch hairpins.",
            "Give the host a macvlan (mode bridge) on the same lower and put its address there, or use a bridge.",
            "A hairpin-capable switch with vepa mode.",
        ),
        (needs("addresses", "host addresses"),),
    ),
)
