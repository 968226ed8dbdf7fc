"""flows.unavailable: ``vifscope flows`` cannot load or attach its BPF program (and which
fallback it uses); flows.map_full: a running collector's flow map is (nearly) full."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

from vifscope.checks.base import Check, CheckContext, Explain
from vifscope.model import Command, Finding, Fix, Severity
from vifscope.model.flows import MAP_FULL, FlowMapFill

GROW = 4  # the fix's map: this many times the entries there are now


def _fallback(acct: bool | None, packet: bool | None) -> str:
    """What counts per-flow bytes without BPF."""
    if packet:
        return "packet sampling 1:N active: vifscope flows falls back to AF_PACKET sockets (exact at --sample 1)"
    if acct is None:
        return "none (no AF_PACKET socket and no conntrack here)"
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
        ("fallback", _fallback(support.conntrack_acct, support.packet)),
    ]
    yield c.on_host("host", f"vifscope flows cannot run here: {support.reason}", ev, Fix((), support.hint))


def bigger(argv: tuple[str, ...], size: int) -> tuple[str, ...]:
    """The collector's command line with ``--max-flows size`` (replaced, or added at the end)."""
    out: list[str] = []
    skip, done = False, False
    for word in argv:
        if skip:
            skip = False
            continue
        if word == "--max-flows":
            out += [word, str(size)]
            skip = done = True
        elif re.fullmatch(r"--max-flows=\d*", word):
            out.append(f"--max-flows={size}")
            done = True
        else:
            out.append(word)
    return tuple(out) if done else (*out, "--max-flows", str(size))


def _restart(m: FlowMapFill) -> Fix:
    size = max(m.max_entries * 2, 1 << (m.entries * GROW - 1).bit_length())
    if not m.argv:
        return Fix((), f"restart the collector (pid {m.pid}) with --max-flows {size}")
    cmds = (Command(("kill", str(m.pid))), Command(bigger(m.argv, size)))
    return Fix(cmds, "the map lives only while its collector runs: a restart starts it empty, bigger")


def map_full(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    support = ctx.snap.facts.flows if ctx.snap.facts else None
    for m in (support.maps if support else None) or ():
        if m.fill < MAP_FULL:
            continue
        ev: list[tuple[str, object]] = [
            ("map_id", m.map_id),
            ("entries", f"{m.entries}/{m.max_entries}"),
            ("fill", f"{m.fill:.0%}"),
            ("pid", m.pid),
            ("cmdline", shlex.join(m.argv) if m.argv else "unknown"),
        ]
        # The scan stops counting once a map reaches the threshold: entries are a lower bound.
        msg = (
            f"flow map {m.map_id} of pid {m.pid} is at least {m.fill:.0%} full: "
            "the LRU evicts flows, top talkers under-count"
        )
        yield c.on_host(f"pid {m.pid}", msg, ev, _restart(m))


CHECKS: tuple[Check, ...] = (
    Check(
        "flows.unavailable",
        "host",
        Severity.INFO,
        "vifscope flows cannot load its BPF program",
        unavailable,
        Explain(
            "Loading vifscope's flow program (src/vifscope/sources/flows/bpf/flows.bpf.c) failed, or the kernel "
            "has no TCX: `vifscope flows` (--collector auto) falls back to AF_PACKET sampling, or exits 3 when "
            "that cannot run either. The evidence has the errno, libbpf's last message and the fallback.",
            "The BPF program counts every frame in the kernel; the fallback copies 1 frame in N (--sample N) to "
            "user space and scales by N: exact at 1:1 but costlier in CPU, estimates at N > 1. watch --flows and "
            "the exporter have no fallback: they show totals per tap only.",
            "As the hint says: run as root (CAP_BPF and CAP_NET_ADMIN), lift kernel lockdown, Linux 6.6+ with "
            "CONFIG_NET_XGRESS, libbpf1 installed, or rebuild the object with scripts/setup.sh.",
            "doctor run without root reports EPERM although root could use flows.",
        ),
    ),
    Check(
        "flows.map_full",
        "host",
        Severity.WARNING,
        "a running flow collector's map is full: flows are evicted",
        map_full,
        Explain(
            "A running `vifscope flows`, `watch --flows`, `exporter --flows` or `serve --flows` has its flow "
            "map (an LRU hash of "
            "--max-flows entries, never pinned) at 90 % or more of its size: doctor finds it by BPF map id and "
            "its process by /proc/*/fdinfo.",
            "At its size the LRU pushes the least recently used flows out to make room: their bytes are lost, "
            "so talkers are under-counted and the collector's `evicted` counter rises.",
            "Restart that collector with a bigger --max-flows (the fix shows its own command line with it).",
            "A collector that just started on a busy host fills up before the first read prunes gone taps; "
            "doctor without CAP_SYS_ADMIN cannot list maps and reports nothing.",
        ),
    ),
)
