"""Address checks: MACs (duplicates, clashes with host links, invalid ones, OVS attached-mac)
and guest IPs (duplicates, no DHCP lease)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from vifscope.checks.base import Check, CheckContext, Explain, needs, vif_name
from vifscope.checks.commands import ip_link, ovs_set_ids, ovs_vsctl, virsh
from vifscope.checks.fixes import edit_fix
from vifscope.model import Chain, Command, Finding, Fix, Problem, Severity, VifBinding


def _state(b: VifBinding) -> str:
    return f"{vif_name(b)} ({b.vif.domain_state.value})"


def mac_duplicate(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    by_mac: dict[str, list[VifBinding]] = defaultdict(list)
    for b in ctx.bindings:
        if b.vif.mac:
            by_mac[b.vif.mac].append(b)
    for mac, group in sorted(by_mac.items()):
        if len(group) < 2:
            continue
        live = sum(b.vif.domain_state.has_taps for b in group)
        sev = Severity.ERROR if live >= 2 else Severity.WARNING
        ev = [("mac", mac), ("vifs", ", ".join(_state(b) for b in group)), ("running", live)]
        for b in group:
            change = f"delete <mac address='{mac}'/> on one of them (libvirt picks a new one)"
            fix = edit_fix(ctx.snap.uri, b.vif.domain, change)
            yield c.on_vif(b, f"MAC {mac} is used by {len(group)} vifs", ev, fix, severity=sev)


def mac_host_conflict(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    targets = {b.vif.target for b in ctx.bindings if b.vif.target}
    by_mac: dict[str, list[str]] = defaultdict(list)
    for link in ctx.snap.links:
        # A vif's own tap/macvtap carries its MAC (macvtap) or fe:.. (tap): not a conflict;
        # loopback and tunnels show all zeros (mac.invalid reports a vif with that).
        if link.mac and link.name not in targets and link.mac != "00:00:00:00:00:00":
            by_mac[link.mac.lower()].append(link.name)
    for b in ctx.bindings:
        clash = by_mac.get(b.vif.mac or "")
        if not clash:
            continue
        sev = Severity.ERROR if b.vif.domain_state.has_taps else Severity.WARNING
        ev = [("mac", b.vif.mac), ("host_links", ", ".join(clash))]
        change = f"give the interface another MAC (or: {ip_link(clash[0], 'address', 'NEW').text()})"
        fix = edit_fix(ctx.snap.uri, b.vif.domain, change)
        yield c.on_vif(b, f"MAC {b.vif.mac} is also the MAC of host link {', '.join(clash)}", ev, fix, severity=sev)


def _mac_problem(mac: str) -> str | None:
    parts = mac.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        return "not six colon-separated octets"
    try:
        octets = [int(p, 16) for p in parts]
    except ValueError:
        return "not hexadecimal"
    if not any(octets):
        return "all zero"
    if octets[0] & 1:
        return "multicast bit set (first octet odd)"
    return None


def mac_invalid(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in ctx.bindings:
        why = _mac_problem(b.vif.mac) if b.vif.mac else None
        if why is None:
            continue
        sev = Severity.ERROR if b.vif.domain_state.has_taps else Severity.WARNING
        change = "use a unicast MAC such as 52:54:00:xx:xx:xx (or delete <mac> to get one)"
        fix = edit_fix(ctx.snap.uri, b.vif.domain, change)
        yield c.on_vif(
            b, f"MAC {b.vif.mac} is invalid: {why}", [("mac", b.vif.mac), ("reason", why)], fix, severity=sev
        )


def ovs_attached_mac_mismatch(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in ctx.running:
        if Problem.OVS_ATTACHED_MAC_MISMATCH not in b.problems or b.ovs is None:
            continue
        ev = [("xml_mac", b.vif.mac), ("ovs_attached_mac", b.ovs.attached_mac), ("ovs_bridge", b.ovs.bridge)]
        fix = ovs_attached_mac_fix(b)
        msg = f"OVS says {b.vif.target} carries {b.ovs.attached_mac}, the XML says {b.vif.mac}"
        yield c.on_vif(b, msg, ev, fix, subject=b.ovs.bridge)


def ovs_attached_mac_fix(b: VifBinding) -> Fix | None:
    """The command ``--fix`` runs for it too (planner.ovs_attached_mac)."""
    if not b.vif.target or not b.vif.mac:
        return None
    return Fix((ovs_vsctl(*ovs_set_ids(b.vif.target, (("attached-mac", b.vif.mac),))),))


PIN_LEASE = "virsh net-update NET add ip-dhcp-host \"<host mac='MAC' ip='IP'/>\" --live --config"


def ip_duplicate(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    by_mac: dict[str, list[VifBinding]] = defaultdict(list)
    for b in ctx.running:
        if b.vif.mac:
            by_mac[b.vif.mac].append(b)
    by_ip: dict[str, dict[str, str]] = defaultdict(dict)
    for a in ctx.facts.guest_addresses or ():
        if a.mac in by_mac:
            by_ip[a.ip][a.mac] = f"{a.source.value} {a.where}".strip()
    for ip, owners in sorted(by_ip.items()):
        if len(owners) < 2:
            continue
        claims = ", ".join(f"{vif_name(by_mac[m][0])} {m} ({src})" for m, src in sorted(owners.items()))
        for mac in sorted(owners):
            for b in by_mac[mac]:
                fix = Fix(note=f"change one guest's static address, or pin leases: {PIN_LEASE}")
                yield c.on_vif(b, f"IP {ip} is claimed by {len(owners)} vifs", [("ip", ip), ("claims", claims)], fix)


def _uptime(ctx: CheckContext, b: VifBinding) -> float | None:
    rt = ctx.facts.runtime_by_domain.get(b.vif.domain)
    if rt is None or rt.started_at is None:
        return None
    return (ctx.snap.taken_at - rt.started_at).total_seconds()


def ip_no_lease(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    leased = {(le.network, le.mac) for le in ctx.facts.leases or ()}
    for b in ctx.running:
        net = b.expect.network
        if net is None or not net.active or not net.dhcp_ranges or b.vif.link_state == "down":
            continue
        if (net.name, b.vif.mac) in leased:
            continue
        up = _uptime(ctx, b)
        if up is not None and up < ctx.config.no_lease_grace_s:
            continue
        seen = [a.ip for a in ctx.facts.guest_addresses or () if a.mac == b.vif.mac]
        ev: list[tuple[str, object]] = [("network", net.name), ("uptime_s", round(up) if up is not None else None)]
        ev += [("grace_s", ctx.config.no_lease_grace_s), ("other_addresses", ", ".join(seen))]
        fix = _lease_fix(ctx.snap.uri, net.name, net.bridge)
        yield c.on_vif(b, f"no DHCP lease on {net.name} after {'?' if up is None else round(up)} s", ev, fix)


def _lease_fix(uri: str, network: str, bridge: str | None) -> Fix:
    """Diagnosis, not a change: the leases libvirt knows, then whether DHCP requests arrive."""
    leases = virsh(uri, "net-dhcp-leases", network)
    if bridge is None:
        return Fix((leases,))
    dump = Command(("tcpdump", "-ni", bridge, "port", "67", "or", "port", "68"))
    return Fix((leases, dump), "is the guest asking?", Chain.THEN)


_FACTS_ADDR = needs("guest_addresses", "guest addresses")
CHECKS: tuple[Check, ...] = (
    Check(
        "mac.duplicate",
        "network",
        Severity.ERROR,
        "duplicate MAC",
        mac_duplicate,
        Explain(
            "Two or more vifs (any domains, running or not) declare the same MAC address.",
            "Running together they confuse every bridge's forwarding table and the DHCP server: traffic flaps "
            "between them. One of them shut off is a time bomb (warning).",
            "Delete <mac address=> from one interface (libvirt generates a fresh 52:54:00 MAC) or set another.",
            "A cloned domain kept as a cold standby that never runs at the same time.",
        ),
    ),
    Check(
        "mac.host_conflict",
        "network",
        Severity.ERROR,
        "MAC clashes with a host link",
        mac_host_conflict,
        Explain(
            "A vif's MAC equals the MAC of a host link (a NIC, a bridge, a veth) that is not the vif's own tap.",
            "The bridge delivers the guest's traffic to the host link or vice versa.",
            "Give the guest (or the host link) another MAC.",
        ),
    ),
    Check(
        "mac.invalid",
        "network",
        Severity.ERROR,
        "invalid MAC",
        mac_invalid,
        Explain(
            "The MAC has the multicast bit set (first octet odd), is all zero, or is malformed.",
            "Bridges and switches do not learn such an address; frames to it are flooded or dropped.",
            "Use a unicast, locally administered MAC (52:54:00:xx:xx:xx for KVM), or delete <mac> to get one.",
            "libvirt itself refuses multicast MACs; all-zero ones it accepts.",
        ),
    ),
    Check(
        "ovs.attached_mac_mismatch",
        "network",
        Severity.ERROR,
        "OVS attached-mac differs",
        ovs_attached_mac_mismatch,
        Explain(
            "OVSDB's Interface external_ids:attached-mac differs from the MAC in the domain XML.",
            "SDN controllers (OVN, Neutron) bind ports by attached-mac / iface-id: the port is wired to the wrong "
            "logical port, or to none.",
            "ovs-vsctl set Interface TAP external-ids:attached-mac=XML_MAC",
        ),
    ),
    Check(
        "ip.duplicate",
        "network",
        Severity.ERROR,
        "duplicate IP",
        ip_duplicate,
        Explain(
            "Two running vifs hold the same IP address according to the guest agent, DHCP leases or the host's ARP "
            "table.",
            "Both answer ARP for it; connections go to whichever answered last.",
            "Change the static address of one guest, or reserve addresses per MAC on the DHCP network.",
            "A stale lease of a guest that since took another address (the lease expires).",
        ),
        (_FACTS_ADDR,),
    ),
    Check(
        "ip.no_lease",
        "network",
        Severity.WARNING,
        "no DHCP lease",
        ip_no_lease,
        Explain(
            "A running guest on a libvirt network with DHCP has no lease, and it has been up longer than "
            "no_lease_grace_s.",
            "Its DHCP client got no answer: no address, no network (often STP delay, a firewall dropping DHCP, or a "
            "dead dnsmasq).",
            "virsh net-dhcp-leases NET; tcpdump -ni BRIDGE port 67 or port 68; see network.dhcp_not_running and "
            "bridge.stp_forward_delay.",
            "Guests with a static address on a DHCP network.",
        ),
        (needs("leases", "DHCP leases"),),
    ),
)
