"""qos.outbound_police_small_burst: a guest's outbound policed with a bucket too small for TCP.

libvirt polices what a guest sends (virnetdevbandwidth.c: ``police rate <average>kbps burst
<burst>kb mtu 64kb drop`` on the tap's ingress; OVS: ``ingress_policing_rate``/``burst``).
A policer does not queue: a packet that finds fewer tokens than its size is dropped. So:

* a packet larger than the bucket never passes. virtio-net hands the tap GSO packets of up to
  64 KiB -- which is why libvirt's commit "Fix vm's outbound traffic control problem" raised
  the police ``mtu`` to 64kb: with tc's small default every large segment was dropped and TCP
  collapsed far below the cap. The same holds for ``burst``: below 64 KiB it is the bucket,
  not the mtu, that drops the GSO packets. Floor 1: burst >= 64 KiB (and mtu >= 64 KiB when
  the kernel's filter is read).
* TCP sends a congestion window back to back each round trip; a bucket smaller than what the
  cap lets through in one RTT drops inside every window, and each drop halves the window.
  Floor 2: burst >= rate x 10 ms (a LAN / data-centre RTT with some queueing; WAN RTTs want
  more -- this is the least a bucket needs, not what is comfortable).

libvirt's own default burst is the average (kB/s read as KiB: about one second of traffic),
far above both floors for any average >= 64 kB/s; the finding is about an explicit small
``burst`` (or an average below 64 kB/s, whose default burst is below 64 KiB). The fix
proposes that default, raised to 64 KiB.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from vifscope.bind.qos import SHAPED_TYPES
from vifscope.checks.base import Check, CheckContext, Explain
from vifscope.checks.commands import virsh
from vifscope.checks.qos import tune_value
from vifscope.model import DomainState, Finding, Fix, Severity, VifBinding
from vifscope.model.qos import KIBIBYTE, KILOBYTE, BandwidthRate

GSO_MAX = 64 * KIBIBYTE  # the largest packet virtio-net hands the tap (and libvirt's police mtu)
RTT_FLOOR_S = 0.010  # the round trip one bucket must cover at the cap


@dataclass(frozen=True)
class Bucket:
    """One outbound policer: rate bytes/s, burst and mtu bytes (mtu None: not read), and where
    the values come from (``kernel``: the tap's police filter; ``declared``: what libvirt applies)."""

    rate: float
    burst: float
    mtu: float | None
    source: str


def min_burst(rate: float) -> float:
    """The smallest bucket (bytes) a TCP flow at ``rate`` bytes/s gets through (module doc)."""
    return max(GSO_MAX, rate * RTT_FLOOR_S)


def suggested_burst_kib(average_kbps: float) -> int:
    """libvirt's default burst (the average, as KiB), at least enough for both floors."""
    floor = min_burst(average_kbps * KILOBYTE) / KIBIBYTE
    return math.ceil(max(average_kbps, floor))


def bucket(ctx: CheckContext, b: VifBinding, out: BandwidthRate) -> Bucket:
    """The kernel's police filter when the tap has one, else the declared values libvirt uses."""
    tc = ctx.facts.tc_shaping
    police = sorted(tc.police_by_dev.get(b.link.name, ()), key=lambda p: p.prio) if tc and b.link else []
    if police:
        p = police[0]
        return Bucket(p.rate, p.burst, p.mtu, "kernel")
    avg = out.average or 0
    burst_kib = out.burst if out.burst is not None else avg  # libvirt: burst defaults to average
    return Bucket(avg * KILOBYTE, burst_kib * KIBIBYTE, None, "declared")


def _problems(k: Bucket) -> list[str]:
    need = min_burst(k.rate)
    out = []
    if k.burst < need:
        out.append(f"burst {k.burst / KIBIBYTE:.0f} KiB < {need / KIBIBYTE:.0f} KiB")
    if k.mtu is not None and k.mtu < GSO_MAX:
        out.append(f"mtu {k.mtu:.0f} B < {GSO_MAX} B")
    return out


def small_burst(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b in ctx.bindings:
        v = b.vif
        out = v.bandwidth.outbound if v.bandwidth else None
        if out is None or not out.shapes or v.type not in SHAPED_TYPES:
            continue
        k = bucket(ctx, b, out)
        problems = _problems(k)
        if not problems:
            continue
        ev: list[tuple[str, object]] = [
            ("source", k.source),
            ("rate_kBps", round(k.rate / KILOBYTE, 1)),
            ("burst_KiB", round(k.burst / KIBIBYTE, 1)),
            ("min_burst_KiB", math.ceil(min_burst(k.rate) / KIBIBYTE)),
        ]
        if k.mtu is not None:
            ev.append(("mtu_bytes", int(k.mtu)))
        msg = f"outbound of {v.target or v.mac} policed with {'; '.join(problems)}: TCP runs far below the cap"
        yield c.on_vif(b, msg, ev, _fix(ctx, b, out))


def _fix(ctx: CheckContext, b: VifBinding, out: BandwidthRate) -> Fix:
    """``virsh domiftune`` with the same average and a burst both floors allow; --live too when
    running (libvirt rebuilds the filter, with its mtu 64kb)."""
    v = b.vif
    new = BandwidthRate(out.average, out.peak, suggested_burst_kib(out.average or 0), out.floor)
    where = ("--live", "--config") if v.domain_state is DomainState.RUNNING else ("--config",)
    cmd = virsh(ctx.snap.uri, "domiftune", v.domain, v.mac or v.target or "", options=(
        *where, "--outbound", tune_value(new),
    ))  # fmt: skip
    return Fix((cmd,), "keeps the average; the burst is libvirt's default (the average, as KiB), at least 64 KiB")


CHECKS: tuple[Check, ...] = (
    Check(
        "qos.outbound_police_small_burst",
        "performance",
        Severity.WARNING,
        "outbound policer's burst too small for TCP",
        small_burst,
        Explain(
            "A vif's <outbound> is policed (libvirt's u32 police filter, or OVS ingress policing) with a burst "
            "below max(64 KiB, rate x 10 ms), or the kernel's police filter has an mtu below 64 KiB.",
            "A policer drops instead of queueing: GSO packets (up to 64 KiB from virtio-net) larger than the "
            "bucket never pass, and a bucket smaller than one round trip at the cap drops inside every TCP "
            "window, so the guest's TCP runs far below the cap (libvirt commit 'Fix vm's outbound traffic "
            "control problem').",
            "virsh domiftune DOMAIN MAC --live --config --outbound AVG,,BURST with BURST >= max(64, AVG / 100) "
            "KiB (libvirt's default, BURST = AVG, is fine), or shape instead of policing: vifscope qos set "
            "--backend tc.",
            "A deliberately strict cap on UDP-only traffic, where drops are the intent.",
        ),
    ),
)
