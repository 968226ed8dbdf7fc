"""flows.unavailable: ``vifscope flows`` cannot load or attach its BPF program on this host."""

from __future__ import annotations

from collections.abc import Iterator

from vifscope.checks.base import Check, CheckContext, Explain
from vifscope.model import Finding, Fix, Severity


def _fallback(acct: bool | None) -> str:
    """What is left for per-flow bytes without BPF (vifscope has no fallback collector)."""
    if acct is None:
        return "none (no conntrack here)"
    if acct:
        return "none in vifscope; conntrack accounting is on: conntrack -L -o extended shows bytes per connection"
    return "none in vifscope; conntrack accounting is off (sysctl net.netfilter.nf_conntrack_acct=1 enables it)"


def unavailable(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    """No finding when the support was not probed (a shallow snapshot or a recorded case
    without it): this is advice about a tool, not a fault of a vif."""
    support = ctx.snap.facts.flows if ctx.snap.facts else None
    if support is None or support.available:
        return
    ev: list[tuple[str, object]] = [
        ("reason", support.reason),
        ("program", support.program or "not found"),
        ("tcx", "unknown" if support.tcx is None else support.tcx),
        ("fallback", _fallback(support.conntrack_acct)),
    ]
    yield c.on_host("host", f"vifscope flows cannot run here: {support.reason}", ev, Fix((), support.hint))


CHECKS: tuple[Check, ...] = (
    Check(
        "flows.unavailable",
        "host",
        Severity.INFO,
        "vifscope flows cannot load its BPF program",
        unavailable,
        Explain(
            "Loading vifscope's flow program (src/vifscope/sources/flows/bpf/flows.bpf.c) failed, or the kernel "
            "has no TCX: `vifscope flows` exits 3 here. The evidence has the errno and libbpf's last message.",
            "Per-vif talkers need the program in the kernel; without it only totals per tap (status, top, the "
            "exporter) are there. vifscope has no fallback collector; conntrack accounting "
            "(nf_conntrack_acct) gives bytes per connection, not per vif.",
            "As the hint says: run as root (CAP_BPF and CAP_NET_ADMIN), lift kernel lockdown, Linux 6.6+ with "
            "CONFIG_NET_XGRESS, libbpf1 installed, or rebuild the object with scripts/setup.sh.",
            "doctor run without root reports EPERM although root could use flows.",
        ),
    ),
)
