"""QoS checks: a declared ``<bandwidth>`` that is not in force, in force with other rates, or
that this kernel cannot apply at all. Read-only: they compare (bind/qos.py) and suggest.

Undeclared shaping (a qdisc on a tap without ``<bandwidth>``) is perf.tap_qdisc's finding. OVS
ports are judged on OVSDB's rows (the Port's linux-htb QoS, the Interface's ingress policing)
when doctor could read them.
"""

from __future__ import annotations

from collections.abc import Iterator

from vifscope.bind.qos import SHAPED_TYPES, judge_vif
from vifscope.checks.base import Check, CheckContext, Explain, needs
from vifscope.checks.commands import virsh
from vifscope.model import DeclaredVif, Finding, Fix, Severity, VifBinding
from vifscope.model.qos import BandwidthRate, DirectionQos, QosVerdict, VifQos, bits

V = QosVerdict


def tune_value(rate: BandwidthRate | None) -> str:
    """``virsh domiftune``'s average[,peak[,burst[,floor]]] for a declared direction ("0": none)."""
    if rate is None or not rate.shapes:
        return "0"
    fields = [rate.average, rate.peak, rate.burst, rate.floor]
    while fields and fields[-1] is None:
        fields.pop()
    return ",".join("" if f is None else str(f) for f in fields)


def reapply_fix(ctx: CheckContext, v: DeclaredVif) -> Fix:
    """``virsh domiftune --live`` with the declared values: libvirt rebuilds its tc objects."""
    bw = v.bandwidth
    opts = (
        "--live",
        "--inbound",
        tune_value(bw.inbound if bw else None),
        "--outbound",
        tune_value(bw.outbound if bw else None),
    )
    cmd = virsh(ctx.snap.uri, "domiftune", v.domain, v.mac or v.target or "", options=opts)
    if (v.target or "") in ctx.snap.ovs_by_name:  # libvirt rewrites OVSDB's QoS rows: no tc module needed
        return Fix((cmd,), "libvirt rewrites the port's QoS and ingress policing in OVSDB")
    ks = ctx.facts.kernel_shaping
    note = "" if ks is None or (ks.sfq and ks.police) else "fails on this kernel: see qos.kernel_unsupported"
    return Fix((cmd,), note)


def _judged(ctx: CheckContext) -> Iterator[tuple[VifBinding, VifQos]]:
    """Running vifs with a ``<bandwidth>`` that libvirt shapes: on links tc reads, and on OVS
    ports when OVSDB's QoS rows were read (else those are left out, not called missing). A
    vif without its link is the binding checks' finding, not a missing cap."""
    tc = ctx.facts.tc_shaping
    ovs = ctx.facts.ovs_qos_by_name
    if tc is None:
        return
    for b in ctx.running:
        v = b.vif
        if v.bandwidth is None or v.type not in SHAPED_TYPES or b.link is None:
            continue
        if b.link.name in ctx.snap.ovs_by_name and ctx.facts.ovs_qos is None:
            continue
        yield b, judge_vif(v, ctx.snap, tc, ovs)


def _side(name: str, d: DirectionQos) -> str:
    want = bits(d.declared.average) if d.declared and d.declared.average else "-"
    got = d.enforced
    have = "nothing" if got is None else (bits(got.average) if got.average is not None else got.mechanism)
    return f"{name} {want} declared, {have} in force"


def _evidence(q: VifQos) -> list[tuple[str, object]]:
    ev: list[tuple[str, object]] = [("verdict", q.verdict.value)]
    for name, d in (("inbound", q.inbound), ("outbound", q.outbound)):
        ev.append((f"{name}_verdict", d.verdict.value))
        ev.append((f"{name}_declared_kBps", d.declared.average if d.declared else None))
        ev.append((f"{name}_enforced_kBps", d.enforced.average if d.enforced else None))
        if d.differs:
            ev.append((f"{name}_differs", ",".join(d.differs)))
    return ev


def not_enforced(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b, q in _judged(ctx):
        if q.verdict not in (V.MISSING, V.PARTIAL):
            continue
        sides = [_side(n, d) for n, d in (("inbound", q.inbound), ("outbound", q.outbound)) if d.verdict is V.MISSING]
        msg = f"<bandwidth> not in force on {q.target or 'the vif'}: {'; '.join(sides)}"
        yield c.on_vif(b, msg, _evidence(q), reapply_fix(ctx, b.vif))


def drift(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b, q in _judged(ctx):
        if q.verdict is not V.DRIFT:
            continue
        sides = [_side(n, d) for n, d in (("inbound", q.inbound), ("outbound", q.outbound)) if d.verdict is V.DRIFT]
        msg = f"{q.target} is shaped, not as declared: {'; '.join(sides)}"
        yield c.on_vif(b, msg, _evidence(q), reapply_fix(ctx, b.vif))


def kernel_unsupported(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    ks = ctx.facts.kernel_shaping
    if ks is None:
        return
    for b in ctx.bindings:
        bw, v = b.vif.bandwidth, b.vif
        if bw is None or v.type not in SHAPED_TYPES or (v.target or "") in ctx.snap.ovs_by_name:
            continue
        lacks = [need for need, wanted, has in _needs(bw.inbound, bw.outbound, ks.sfq, ks.police) if wanted and not has]
        if not lacks:
            continue
        ev = [("lacks", ", ".join(lacks)), ("domain_state", v.domain_state.value)]
        msg = (
            f"this kernel lacks {' and '.join(lacks)}: 'virsh start' of {v.domain} fails, and so does 'virsh domiftune'"
        )
        clear = virsh(ctx.snap.uri, "domiftune", v.domain, v.mac or v.target or "", options=(
            "--config", "--inbound", "0", "--outbound", "0",
        ))  # fmt: skip
        note = "drops this vif's <bandwidth>; or boot a kernel with CONFIG_NET_SCH_SFQ and CONFIG_NET_ACT_POLICE"
        yield c.on_vif(b, msg, ev, Fix((clear,), note))


def _needs(
    inbound: BandwidthRate | None, outbound: BandwidthRate | None, sfq: bool, police: bool
) -> tuple[tuple[str, bool, bool], ...]:
    return (
        ("sch_sfq (qdisc libvirt puts under <inbound>'s htb class)", bool(inbound and inbound.shapes), sfq),
        ("act_police (action of <outbound>'s ingress filter)", outbound is not None and outbound.shapes, police),
    )


_TC = needs("tc_shaping", "tc classes and filters")
CHECKS: tuple[Check, ...] = (
    Check(
        "qos.not_enforced",
        "performance",
        Severity.ERROR,
        "declared bandwidth not in force",
        not_enforced,
        Explain(
            "A running vif declares <bandwidth> but its link has no htb class (inbound) or no police filter "
            "(outbound) where libvirt puts them; on an OVS port, OVSDB has no linux-htb QoS row (inbound) or no "
            "ingress policing (outbound).",
            "The guest is not capped: a noisy neighbour takes the host's bandwidth the operator thinks is limited.",
            "virsh domiftune DOMAIN MAC --live --inbound AVG,PEAK,BURST --outbound AVG,,BURST (libvirt re-creates "
            "the tc objects), after finding what removed them (Open vSwitch deletes ingress qdiscs, ovs-issues #210).",
            "A vif whose tc objects are being re-created at this moment (domain start, hot-plug).",
        ),
        (_TC,),
    ),
    Check(
        "qos.drift",
        "performance",
        Severity.WARNING,
        "bandwidth in force differs from the declared one",
        drift,
        Explain(
            "The link is shaped, but with other rates than the declared <bandwidth> (beyond 1 % and tc's tick "
            "rounding), or by another qdisc kind than libvirt's htb.",
            "Someone changed tc by hand; the cap the operator reads in the XML is not the one in force.",
            "virsh domiftune DOMAIN MAC --live with the declared values (or fix the XML if the kernel's is right).",
        ),
        (_TC,),
    ),
    Check(
        "qos.kernel_unsupported",
        "host",
        Severity.ERROR,
        "kernel cannot apply <bandwidth>",
        kernel_unsupported,
        Explain(
            "A vif declares <bandwidth> but the kernel has no sfq qdisc (needed for <inbound>) or no police action "
            "(needed for <outbound>), per /proc/config.gz.",
            "libvirt refuses to start the domain ('Specified qdisc kind is unknown', 'Failed to load TC action "
            "module') and 'virsh domiftune' fails, leaving an ingress qdisc behind.",
            "Boot a kernel with CONFIG_NET_SCH_SFQ and CONFIG_NET_ACT_POLICE, or remove the <bandwidth>.",
            "A module built as =m but blacklisted or missing from the running system (config says it exists).",
        ),
        (needs("kernel_shaping", "the kernel config (/proc/config.gz)"),),
    ),
)
