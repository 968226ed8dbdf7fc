"""Declared ``<bandwidth>`` against what tc or OVSDB enforces: one verdict per vif and direction.

Pure. Where libvirt puts each direction (virnetdevbandwidth.c, virnetdevopenvswitch.c):

* a tap (bridge, network, ethernet): the guest's inbound is the tap's egress -- root htb,
  class ``1:1`` (rate = average, ceil = peak or average, burst) -- and its outbound the tap's
  ingress -- a u32 filter policing at average with burst = burst or average (peak ignored);
* a macvtap (direct, or a network handing out macvtaps) shares the host's view
  (virDomainNetTypeSharesHostView): the two are swapped;
* an OVS port: the Port's linux-htb QoS (min-rate, max-rate, burst) for inbound, the
  Interface's ingress policing for outbound.

Rates are compared with a relative tolerance (``REL_TOL``): tc keeps a burst as scheduler
ticks of 64 ns and converts it back (a 1,600-byte burst at 5 Gbit/s is 31 ticks, ~1 % off);
rates round-trip exactly in bytes/s, but nobody sets two caps 1 % apart on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from vifscope.model import DeclaredVif, HostSnapshot
from vifscope.model.qos import (
    KIBIBYTE,
    KILOBYTE,
    Bandwidth,
    BandwidthRate,
    DirectionQos,
    Enforced,
    OvsQos,
    QosVerdict,
    TcShaping,
    VifQos,
)
from vifscope.model.qospolicy import VifPolicy

V = QosVerdict
REL_TOL = 0.01
TICK_SECONDS = 64e-9  # one scheduler tick: a burst read back from tc is off by up to one
SHAPED_TYPES = frozenset({"bridge", "network", "direct", "ethernet"})  # libvirt's virNetDevSupportBandwidth
# Root qdiscs that cap a link's egress (what the tap_qdisc check calls shaping).
SHAPING_ROOTS = frozenset({"tbf", "hfsc", "cbq", "cake", "netem", "red", "choke", "drr", "qfq", "taprio", "ets"})
UINT_MAX_KIB = 0xFFFFFFFF // KIBIBYTE  # libvirt's cap on an outbound burst defaulted from average
FIELDS = ("average", "peak", "burst")
POLICY_WHERE = "vifscope-metadata"  # read_from of a vif judged against vifscope's tc-backend metadata


def _htb(dev: str, tc: TcShaping) -> Enforced | None:
    """The class traffic leaves by: the root htb's default class, else its first top class."""
    root = tc.htb_by_dev.get(dev)
    if root is None:
        return None
    classes = tc.classes_by_dev.get(dev, ())
    default = f"{root.handle}{root.default_minor:x}"
    chosen = next((c for c in classes if c.classid == default), None)
    chosen = chosen or next((c for c in classes if c.parent == "root"), None)
    if chosen is None:
        return None
    return Enforced("htb", chosen.rate / KILOBYTE, chosen.ceil / KILOBYTE, chosen.burst / KIBIBYTE)


def egress(dev: str, tc: TcShaping) -> Enforced | None:
    """What caps a link's egress: its root htb's class, or another shaping root (rates unread)."""
    found = _htb(dev, tc)
    if found is not None:
        return found
    kind = tc.root_by_dev.get(dev)
    return Enforced(kind) if kind in SHAPING_ROOTS else None


def ingress(dev: str, tc: TcShaping) -> Enforced | None:
    """The first police action of the link's ingress filters (lowest prio)."""
    police = sorted(tc.police_by_dev.get(dev, ()), key=lambda p: p.prio)
    if not police:
        return None
    return Enforced("police", police[0].rate / KILOBYTE, None, police[0].burst / KIBIBYTE)


def ovs_directions(q: OvsQos) -> tuple[Enforced | None, Enforced | None]:
    """(inbound, outbound) from OVSDB's rows, converted back the way libvirt wrote them."""
    inbound = None
    if q.qos_type is not None and q.min_rate:
        peak = q.max_rate / 8000 if q.max_rate else None
        burst = q.burst / 8192 if q.burst else None
        inbound = Enforced(f"ovs-{q.qos_type}", q.min_rate / 8000, peak, burst)
    outbound = None
    if q.ingress_policing_rate > 0:
        burst = q.ingress_policing_burst / 8 if q.ingress_policing_burst else None
        outbound = Enforced("ovs-policing", q.ingress_policing_rate / 8, None, burst)
    return inbound, outbound


def expected(declared: BandwidthRate, mechanism: str) -> dict[str, float | None]:
    """The values libvirt would have written for ``declared`` with this mechanism (None: not
    compared -- tc's own default, or a field the mechanism ignores)."""
    avg = declared.average
    if mechanism in ("htb", "ifb-htb"):
        return {"average": avg, "peak": declared.peak or avg, "burst": declared.burst}
    if mechanism == "police":
        return {"average": avg, "peak": None, "burst": declared.burst or min(avg or 0, UINT_MAX_KIB)}
    if mechanism.startswith("ovs-") and mechanism != "ovs-policing":
        return {"average": avg, "peak": declared.peak, "burst": declared.burst}
    return {"average": avg, "peak": None, "burst": declared.burst}


def _close(want: float, got: float, rate: float) -> bool:
    slack = max(REL_TOL * want, rate * KILOBYTE * TICK_SECONDS * 2 / KIBIBYTE)
    return abs(want - got) <= slack


def differences(declared: BandwidthRate, enforced: Enforced) -> tuple[str, ...]:
    """The fields whose enforced value is not the declared one within tolerance."""
    if enforced.average is None:
        return ("mechanism",)  # another qdisc kind: rates unread, not libvirt's layout
    out = []
    for name, want in expected(declared, enforced.mechanism).items():
        got = getattr(enforced, name)
        if want is not None and (got is None or not _close(want, got, enforced.average)):
            out.append(name)
    return tuple(out)


def direction(declared: BandwidthRate | None, enforced: Enforced | None) -> DirectionQos:
    if declared is None or not declared.shapes:
        return DirectionQos(declared, enforced, V.UNDECLARED if enforced else V.NONE)
    if enforced is None:
        return DirectionQos(declared, None, V.MISSING)
    diff = differences(declared, enforced)
    return DirectionQos(declared, enforced, V.DRIFT if diff else V.ENFORCED, diff)


def combine(inbound: QosVerdict, outbound: QosVerdict) -> QosVerdict:
    """A vif's verdict from its two directions' (worst first; ``partial`` for one of two)."""
    both = {inbound, outbound}
    for verdict in (V.INACTIVE, V.UNSUPPORTED, V.DRIFT):
        if verdict in both:
            return verdict
    if V.MISSING in both:
        return V.PARTIAL if both & {V.ENFORCED, V.UNDECLARED} else V.MISSING
    return next((v for v in (V.UNDECLARED, V.ENFORCED) if v in both), V.NONE)


def _fixed(declared: Bandwidth | None, verdict: QosVerdict) -> tuple[DirectionQos, DirectionQos]:
    """Both directions when nothing is read: inactive both; unsupported where declared."""
    bw = declared or Bandwidth()

    def one(rate: BandwidthRate | None) -> DirectionQos:
        shown = verdict if verdict is V.INACTIVE or (rate is not None and rate.shapes) else V.NONE
        return DirectionQos(rate, None, shown)

    return one(bw.inbound), one(bw.outbound)


def _enforced(v: DeclaredVif, snap: HostSnapshot, tc: TcShaping, ovs: Mapping[str, OvsQos]) -> tuple[
    Enforced | None, Enforced | None, str
]:  # fmt: skip
    """(inbound, outbound, where they were read) for a running vif's target."""
    dev = v.target or ""
    if dev in snap.ovs_by_name:
        q = ovs.get(dev)
        return (*ovs_directions(q), "ovsdb") if q is not None else (None, None, "ovsdb")
    link = snap.links_by_name.get(dev)
    if link is None:
        return None, None, "tc"
    if v.type == "direct" or link.kind == "macvtap":  # the host's view is the guest's
        return ingress(dev, tc), egress(dev, tc), "tc"
    return egress(dev, tc), ingress(dev, tc), "tc"


def policy_enforced(dev: str, tc: TcShaping) -> tuple[Enforced | None, Enforced | None]:
    """(inbound, outbound) as vifscope's tc backend builds them on ``dev``: inbound is the tap's
    root htb; outbound, when an ingress filter redirects to another device (the backend's ifb),
    that device's egress htb (mechanism ``ifb-htb``), else a police action as libvirt's."""
    target = tc.redirect_by_dev.get(dev)
    if target is None:
        return egress(dev, tc), ingress(dev, tc)
    shaped = egress(target, tc)
    return egress(dev, tc), replace(shaped, mechanism=f"ifb-{shaped.mechanism}") if shaped else None


def judge_policy(policy: VifPolicy | None, dev: str, tc: TcShaping) -> tuple[DirectionQos, DirectionQos, QosVerdict]:
    """Both directions of one vif against a tc-backend ``policy`` (None: nothing) and its verdict."""
    got_in, got_out = policy_enforced(dev, tc)
    inbound = direction(policy.inbound if policy else None, got_in)
    outbound = direction(policy.outbound if policy else None, got_out)
    return inbound, outbound, combine(inbound.verdict, outbound.verdict)


def _by_policy(v: DeclaredVif, snap: HostSnapshot, policy: VifPolicy | None) -> bool:
    """Whether vifscope's metadata declares this vif: no libvirt <bandwidth>, a tap tc reads."""
    dev = v.target or ""
    return policy is not None and v.bandwidth is None and dev in snap.links_by_name and dev not in snap.ovs_by_name


def judge_vif(
    v: DeclaredVif,
    snap: HostSnapshot,
    tc: TcShaping,
    ovs: Mapping[str, OvsQos],
    config: Bandwidth | None = None,
    policy: VifPolicy | None = None,
) -> VifQos:
    """One vif's QoS answer; ``config``: the persistent XML's ``<bandwidth>`` (when read);
    ``policy``: vifscope's tc-backend metadata for it, judged when libvirt declares nothing."""
    declared = v.bandwidth
    where = ""
    if v.domain_state.has_taps and _by_policy(v, snap, policy) and policy is not None:
        inbound, outbound, verdict = judge_policy(policy, v.target or "", tc)
        return VifQos(
            domain=v.domain, index=v.index, mac=v.mac, target=v.target, type=v.type, inbound=inbound,
            outbound=outbound, verdict=verdict, config=config, config_differs=False, where=POLICY_WHERE,
        )  # fmt: skip
    if not v.domain_state.has_taps:
        inbound, outbound = _fixed(declared, V.INACTIVE)
    elif declared is not None and v.type not in SHAPED_TYPES:
        inbound, outbound = _fixed(declared, V.UNSUPPORTED)
    else:
        got_in, got_out, where = _enforced(v, snap, tc, ovs)
        bw = declared or Bandwidth()
        inbound, outbound = direction(bw.inbound, got_in), direction(bw.outbound, got_out)
    return VifQos(
        domain=v.domain, index=v.index, mac=v.mac, target=v.target, type=v.type,
        inbound=inbound, outbound=outbound, verdict=combine(inbound.verdict, outbound.verdict),
        config=config, config_differs=config != declared if v.domain_state.has_taps else False, where=where,
    )  # fmt: skip


def judge(
    snap: HostSnapshot,
    tc: TcShaping,
    ovs: Mapping[str, OvsQos],
    config: Mapping[tuple[str, str], Bandwidth | None] | None = None,
    policies: Mapping[tuple[str, str], VifPolicy] | None = None,
) -> tuple[VifQos, ...]:
    """Every vif of the snapshot, in (domain, index) order. ``config`` maps (domain, mac) to the
    persistent definition's ``<bandwidth>``; a vif missing from it was not compared.
    ``policies``: (domain, mac) -> vifscope's tc-backend metadata (live)."""
    conf = config or {}
    pol = policies or {}
    return tuple(
        judge_vif(
            v,
            snap,
            tc,
            ovs,
            conf.get((v.domain, v.mac or ""), v.bandwidth),
            pol.get((v.domain, v.mac or ""), v.qos_policy),
        )
        for v in sorted(snap.vifs, key=lambda v: (v.domain, v.index))
    )
