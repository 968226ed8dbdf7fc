"""Performance and tuning: NIC model, vhost, multiqueue, txqueuelen, tap qdiscs, and the
host sysctls / conntrack table that cap a busy virtualisation host."""

from __future__ import annotations

from collections.abc import Iterator

from vifscope.checks.base import VHOST_TYPES, Check, CheckContext, Explain, is_virtio, needs, virtio_vifs
from vifscope.checks.commands import ip_link, tc_qdisc_del
from vifscope.checks.fixes import at_least, edit_fix, port_range, sysctl_fix
from vifscope.checks.hostdev import DEVNUM, node_problem
from vifscope.model import Finding, Fix, Severity

EMULATED = frozenset({"e1000", "e1000e", "rtl8139", "ne2k_pci", "pcnet", "i82551", "i82557b", "i82559er"})
SHAPING = frozenset({"tbf", "htb", "hfsc", "cbq", "netem", "red", "choke", "cake", "drr", "qfq", "taprio", "ets"})
MAX_SUGGESTED_QUEUES = 8


def emulated_model(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in ctx.bindings:
        model = b.vif.model
        if b.vif.type not in VHOST_TYPES or (model is not None and model not in EMULATED):
            continue
        what = f"emulated {model}" if model else "no <model>: QEMU's default emulated NIC (e1000/e1000e/rtl8139)"
        fix = edit_fix(ctx.snap.uri, b.vif.domain, "<model type='virtio'/> (the guest needs virtio-net drivers)")
        yield c.on_vif(b, f"{what}: a fraction of virtio-net's throughput at more CPU", [("model", model)], fix)


def no_vhost(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    # Only causes that belong to the vif. A host without a usable /dev/vhost-net leaves every
    # virtio vif without vhost: that is one root cause with one fix, reported once by
    # host.vhost_net_missing (with the count), not once per vif -- 5,000 times on a big node.
    devices = ctx.facts.devices
    device_ok = devices is None or node_problem(devices.vhost_net, DEVNUM["vhost_net"]) is None
    for b in virtio_vifs(ctx):
        rt = ctx.facts.runtime_by_domain.get(b.vif.domain)
        fds = rt.vhost_fds if rt is not None else None
        causes = (
            ("driver name='qemu'", b.vif.driver == "qemu"),
            ("QEMU holds no /dev/vhost-net fd", device_ok and fds == 0),
        )
        reasons = [why for why, bad in causes if bad]
        if not reasons:
            continue
        ev = [("driver", b.vif.driver), ("vhost_net_device", device_ok), ("qemu_vhost_fds", fds)]
        fix = edit_fix(ctx.snap.uri, b.vif.domain, "<driver name='vhost'/>, then restart the domain")
        yield c.on_vif(b, f"virtio without vhost-net ({'; '.join(reasons)}): packets go through QEMU", ev, fix)


def multiqueue(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in ctx.bindings:
        vcpus, queues = b.vif.vcpus or 1, b.vif.queues or 1
        if not is_virtio(b):
            continue
        want = min(vcpus, MAX_SUGGESTED_QUEUES)
        ev = [("vcpus", vcpus), ("queues", b.vif.queues)]
        change = f"<driver name='vhost' queues='{want}'/>; in the guest: ethtool -L eth0 combined {want}"
        fix = edit_fix(ctx.snap.uri, b.vif.domain, change)
        if queues > vcpus:
            yield c.on_vif(
                b, f"{queues} queues for {vcpus} vCPU(s): queues beyond the vCPU count only cost memory", ev, fix
            )
        elif vcpus > 1 and queues == 1:
            msg = f"single-queue virtio-net on a {vcpus}-vCPU guest: one vCPU handles all its network traffic"
            yield c.on_vif(b, msg, ev, fix, severity=Severity.INFO)


def txqueuelen_low(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    floor = ctx.config.txqueuelen_min
    for b in ctx.running:
        if b.link is None or b.link.txqlen is None or b.link.txqlen >= floor:
            continue
        ev = [("txqueuelen", b.link.txqlen), ("minimum", floor)]
        fix = Fix((ip_link(b.link.name, "txqueuelen", str(at_least(1000, floor))),))
        yield c.on_vif(
            b, f"{b.vif.target} txqueuelen {b.link.txqlen} < {floor}: bursts to the guest are dropped", ev, fix
        )


def tap_qdisc(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in ctx.running:
        if b.link is None:
            continue
        qdiscs = ctx.facts.qdiscs_by_dev.get(b.link.name, ())
        odd = [q for q in qdiscs if q.ingress or (q.root and q.kind in SHAPING)]
        extras = ctx.facts.extras_by_vif.get((b.vif.domain, b.vif.index))
        if not odd or (extras is not None and extras.bandwidth):
            continue
        shown = ", ".join(f"{'ingress' if q.ingress else 'root'} {q.kind}" for q in odd)
        fix = Fix(tuple(tc_qdisc_del(b.link.name, "ingress" if q.ingress else "root") for q in odd))
        msg = f"{b.link.name} has {shown} without a declared <bandwidth>: traffic is shaped or policed by hand"
        yield c.on_vif(b, msg, [("qdiscs", shown), ("declared_bandwidth", False)], fix)


def somaxconn_low(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    value = ctx.facts.sysctls.somaxconn if ctx.facts.sysctls else None
    floor = ctx.config.somaxconn_min
    if value is not None and value < floor:
        ev = [("net.core.somaxconn", value), ("minimum", floor)]
        msg = f"net.core.somaxconn is {value} (< {floor}): accept queues overflow under load"
        yield c.on_host("host", msg, ev, sysctl_fix(("net.core.somaxconn", at_least(4096, floor))))


def port_range_narrow(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    rng = ctx.facts.sysctls.ip_local_port_range if ctx.facts.sysctls else None
    floor = ctx.config.port_range_min
    if rng is None or rng[1] - rng[0] + 1 >= floor:
        return
    ev = [("net.ipv4.ip_local_port_range", f"{rng[0]} {rng[1]}"), ("ports", rng[1] - rng[0] + 1), ("minimum", floor)]
    msg = f"only {rng[1] - rng[0] + 1} local ports ({rng[0]}-{rng[1]}): NAT and outgoing connections run out"
    yield c.on_host("host", msg, ev, sysctl_fix(("net.ipv4.ip_local_port_range", port_range(floor))))


def conntrack_max_low(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    value = ctx.facts.sysctls.nf_conntrack_max if ctx.facts.sysctls else None
    floor = ctx.config.conntrack_max_min
    if value is not None and value < floor:
        ev = [("net.netfilter.nf_conntrack_max", value), ("minimum", floor)]
        msg = f"nf_conntrack_max is {value} (< {floor}): NATed guests' connections are dropped when it fills"
        yield c.on_host("host", msg, ev, sysctl_fix(("net.netfilter.nf_conntrack_max", at_least(262144, floor))))


def conntrack_near_full(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    s = ctx.facts.sysctls
    if s is None or not s.nf_conntrack_max or s.nf_conntrack_count is None:
        return
    pct = 100.0 * s.nf_conntrack_count / s.nf_conntrack_max
    if pct <= ctx.config.conntrack_full_pct:
        return
    sev = Severity.ERROR if s.nf_conntrack_count >= s.nf_conntrack_max else Severity.WARNING
    ev: list[tuple[str, object]] = [
        ("count", s.nf_conntrack_count),
        ("max", s.nf_conntrack_max),
        ("percent", round(pct, 1)),
    ]
    ev.append(("threshold_percent", ctx.config.conntrack_full_pct))
    fix = sysctl_fix(
        ("net.netfilter.nf_conntrack_max", s.nf_conntrack_max * 2), note="and find the flows: conntrack -L"
    )
    msg = (
        f"conntrack table {pct:.0f}% full ({s.nf_conntrack_count}/{s.nf_conntrack_max}): new flows are dropped at 100%"
    )
    yield c.on_host("host", msg, ev, fix, severity=sev)


def _conntrack(ctx: CheckContext) -> str | None:
    s = ctx.snap.facts.sysctls if ctx.snap.facts else None
    if s is not None and s.nf_conntrack_max is None:
        return "no conntrack in this kernel / namespace (net.netfilter.nf_conntrack_max absent)"
    return None


_SYS = needs("sysctls", "sysctls")
CHECKS: tuple[Check, ...] = (
    Check(
        "perf.emulated_model",
        "performance",
        Severity.WARNING,
        "emulated NIC model",
        emulated_model,
        Explain(
            "The vif uses an emulated NIC (e1000, e1000e, rtl8139...) or no <model> (QEMU's emulated default).",
            "Every packet traps into QEMU's device emulation: a fraction of virtio-net's throughput at more CPU.",
            "<model type='virtio'/>; Linux guests have the driver built in, Windows needs virtio-win.",
            "Guests without virtio drivers (installers, old systems).",
        ),
    ),
    Check(
        "perf.no_vhost",
        "performance",
        Severity.WARNING,
        "virtio without vhost",
        no_vhost,
        Explain(
            "A running virtio vif has no vhost-net of its own making: <driver name='qemu'/>, or QEMU holds no "
            "/dev/vhost-net file descriptor although the host has one. A host without /dev/vhost-net is "
            "host.vhost_net_missing, reported once with the count of virtio vifs it slows.",
            "The datapath runs in a QEMU thread instead of the kernel: lower throughput, higher latency and CPU.",
            "<driver name='vhost'/> (or no driver name) in the domain XML, then restart the domain.",
        ),
    ),
    Check(
        "perf.multiqueue",
        "performance",
        Severity.WARNING,
        "virtio-net queues",
        multiqueue,
        Explain(
            "A virtio vif of a multi-vCPU guest has one queue (info), or more queues than vCPUs (warning).",
            "One queue: one vCPU takes every interrupt of the NIC. Too many: wasted memory and vhost threads.",
            "<driver name='vhost' queues='N'/> with N = vCPUs (max 8 is a good start), and ethtool -L in the guest.",
            "Guests with little network traffic.",
        ),
    ),
    Check(
        "perf.txqueuelen_low",
        "performance",
        Severity.WARNING,
        "short tap queue",
        txqueuelen_low,
        Explain(
            "The vif's host link has a txqueuelen below txqueuelen_min (taps default to 1000, macvtap to 500).",
            "The host → guest direction drops packets in bursts the guest would have absorbed.",
            "ip link set TAP txqueuelen 1000 (a udev rule or libvirt hook makes it stick).",
        ),
    ),
    Check(
        "perf.tap_qdisc",
        "performance",
        Severity.WARNING,
        "qdisc on a tap",
        tap_qdisc,
        Explain(
            "The vif's host link has a shaping root qdisc (tbf, htb...) or an ingress/clsact qdisc although the XML "
            "declares no <bandwidth>.",
            "Hand-made shaping or policing nobody remembers; or leftovers of a failed 'virsh domiftune'.",
            "tc qdisc del dev TAP root / ingress; use <bandwidth> when shaping is wanted.",
            "Deliberate tc setups (traffic control by another tool).",
        ),
        (needs("qdiscs", "qdiscs"),),
    ),
    Check(
        "sysctl.somaxconn_low",
        "performance",
        Severity.WARNING,
        "somaxconn low",
        somaxconn_low,
        Explain(
            "net.core.somaxconn (per network namespace) is below somaxconn_min.",
            "Listen backlogs of host services (libvirt, migration, VNC/SPICE proxies) overflow under bursts.",
            "sysctl -w net.core.somaxconn=4096 and persist it in /etc/sysctl.d/.",
        ),
        (_SYS,),
    ),
    Check(
        "sysctl.port_range_narrow",
        "performance",
        Severity.WARNING,
        "local port range narrow",
        port_range_narrow,
        Explain(
            "net.ipv4.ip_local_port_range spans fewer than port_range_min ports.",
            "Masquerading NAT and the host's own outgoing connections run out of source ports.",
            "sysctl -w net.ipv4.ip_local_port_range='32768 60999' (the kernel default) or wider.",
        ),
        (_SYS,),
    ),
    Check(
        "sysctl.conntrack_max_low",
        "performance",
        Severity.WARNING,
        "conntrack_max low",
        conntrack_max_low,
        Explain(
            "net.netfilter.nf_conntrack_max is below conntrack_max_min.",
            "Every NATed or firewalled guest flow takes an entry; a full table drops new connections.",
            "sysctl -w net.netfilter.nf_conntrack_max=262144 (memory: ~300 bytes per entry).",
        ),
        (_SYS, _conntrack),
    ),
    Check(
        "conntrack.near_full",
        "performance",
        Severity.WARNING,
        "conntrack table near full",
        conntrack_near_full,
        Explain(
            "nf_conntrack_count is above conntrack_full_pct % of nf_conntrack_max (error at 100 %).",
            "At 100 % the kernel drops the first packet of every new flow ('nf_conntrack: table full').",
            "Raise nf_conntrack_max, shorten timeouts, and find the flow source (conntrack -L | sort | uniq -c).",
            "In a non-initial network namespace the count is per namespace, the maximum global.",
        ),
        (_SYS, _conntrack),
    ),
)
