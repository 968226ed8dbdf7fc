"""Per-vif QoS: what libvirt's ``<bandwidth>`` declares, what the kernel (tc) or OVSDB enforces,
and the verdict. Pure data.

Units are libvirt's throughout (docs/formatdomain "Quality of service"; virnetdevbandwidth.c
hands them to tc as ``%llukbps`` / ``%llukb``): average, peak and floor in kilobytes per
second -- tc's ``kbps`` is 1,000 bytes/s (iproute2 tc_util.c: "KBps" = 8,000 bit/s) -- and
burst in kibibytes (tc's ``kb`` is 1,024 bytes). Kernel objects keep the kernel's units
(bytes/s, bytes) and are converted once, in ``Enforced``.

Directions are the guest's: ``inbound`` is what the guest receives (a tap's egress, shaped by
htb on its root), ``outbound`` what it sends (a tap's ingress, policed by a u32 filter).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import TypeVar

KILOBYTE = 1000  # libvirt's average / peak / floor unit (tc "kbps"), in bytes per second
KIBIBYTE = 1024  # libvirt's burst unit (tc "kb"), in bytes


def bits(kbytes_per_s: float) -> str:
    """A libvirt rate (kB/s) as a human reads link speeds: "8.0 Mbit/s"."""
    value = kbytes_per_s * KILOBYTE * 8
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} bit/s"


@dataclass(frozen=True)
class BandwidthRate:
    """One ``<inbound>`` or ``<outbound>``: average/peak/floor kB/s, burst KiB (None: not set)."""

    average: int | None = None
    peak: int | None = None
    burst: int | None = None
    floor: int | None = None

    @property
    def shapes(self) -> bool:
        """Whether libvirt puts anything on the vif's own device for it: an average > 0
        (a bare ``floor`` only adds a class on the network's bridge)."""
        return bool(self.average)


@dataclass(frozen=True)
class Bandwidth:
    """A ``<bandwidth>`` element."""

    inbound: BandwidthRate | None = None
    outbound: BandwidthRate | None = None


@dataclass(frozen=True)
class HtbClass:
    """An htb class (RTM_NEWTCLASS): rate/ceil in bytes/s, burst/cburst in bytes (the kernel
    keeps them as scheduler ticks; converted back as tc does)."""

    dev: str
    classid: str  # "1:1"
    parent: str  # "1:" for a class under the root qdisc, else "1:1"...
    rate: int
    ceil: int
    burst: int
    cburst: int


@dataclass(frozen=True)
class PoliceFilter:
    """A filter on an ingress (or clsact) qdisc that polices with the police action: u32's
    legacy TCA_U32_POLICE or a police action in its action list."""

    dev: str
    kind: str  # the classifier: u32, matchall, ...
    prio: int
    rate: int  # bytes/s
    burst: int  # bytes
    mtu: int  # bytes
    action: str  # drop / pass / reclassify / ... (what exceeding packets get)


@dataclass(frozen=True)
class Redirect:
    """A ``mirred egress redirect`` action of an ingress filter: ``dev``'s incoming packets
    leave by ``target``'s egress (an ifb device, where vifscope's tc backend shapes them)."""

    dev: str
    prio: int
    target: str


@dataclass(frozen=True)
class HtbRoot:
    """A root htb qdisc and its default class minor (TCA_HTB_INIT ``defcls``)."""

    dev: str
    handle: str  # "1:"
    default_minor: int


@dataclass(frozen=True)
class RootQdisc:
    """A link's root qdisc kind (``tc qdisc show``'s "root" lines): htb or another that may shape."""

    dev: str
    kind: str


@dataclass(frozen=True)
class TcShaping:
    """What tc holds for shaping, from one qdisc dump and per-device class / filter dumps."""

    roots: tuple[RootQdisc, ...] = ()
    htb_roots: tuple[HtbRoot, ...] = ()
    classes: tuple[HtbClass, ...] = ()
    police: tuple[PoliceFilter, ...] = ()
    redirects: tuple[Redirect, ...] = ()

    @cached_property
    def redirect_by_dev(self) -> dict[str, str]:
        """Each device's first (lowest prio) egress redirect target."""
        out: dict[str, str] = {}
        for r in sorted(self.redirects, key=lambda r: r.prio):
            out.setdefault(r.dev, r.target)
        return out

    @cached_property
    def root_by_dev(self) -> dict[str, str]:
        return {r.dev: r.kind for r in self.roots}

    @cached_property
    def classes_by_dev(self) -> dict[str, tuple[HtbClass, ...]]:
        return _group(self.classes)

    @cached_property
    def police_by_dev(self) -> dict[str, tuple[PoliceFilter, ...]]:
        return _group(self.police)

    @cached_property
    def htb_by_dev(self) -> dict[str, HtbRoot]:
        return {r.dev: r for r in self.htb_roots}


_T = TypeVar("_T", HtbClass, PoliceFilter)


def _group(items: tuple[_T, ...]) -> dict[str, tuple[_T, ...]]:
    grouped: dict[str, list[_T]] = {}
    for item in items:
        grouped.setdefault(item.dev, []).append(item)
    return {k: tuple(v) for k, v in grouped.items()}


@dataclass(frozen=True)
class OvsQos:
    """OVSDB's shaping of one Interface: the linux-htb QoS row of its Port (libvirt writes
    ``other_config`` min-rate = average x 8,000, max-rate = peak x 8,000 and burst = burst x
    8,192, in bits, on the QoS row and its queue 0) and the Interface's ingress policing
    (libvirt: rate = average x 8 kbit/s, burst = burst x 8 kbit)."""

    name: str
    qos_type: str | None = None
    min_rate: int | None = None  # bit/s
    max_rate: int | None = None  # bit/s
    burst: int | None = None  # bits
    ingress_policing_rate: int = 0  # kbit/s (0: off)
    ingress_policing_burst: int = 0  # kbit


@dataclass(frozen=True)
class Enforced:
    """What one direction of a vif gets, in libvirt's units (kB/s, KiB; floats: tc's byte
    counts need not be whole kilobytes). ``mechanism``: htb, police, ovs-htb, ovs-policing,
    or another shaping qdisc's kind (its rates unknown: None)."""

    mechanism: str
    average: float | None = None
    peak: float | None = None
    burst: float | None = None


class QosVerdict(StrEnum):
    """One direction's, and one vif's, answer. A vif's verdict is the worst of its directions,
    with ``partial`` when one declared direction is in force and another is missing."""

    ENFORCED = "enforced"  # declared and in force within tolerance
    MISSING = "missing"  # declared, nothing in the kernel / OVSDB
    DRIFT = "drift"  # declared, in force with other rates (or by another mechanism)
    PARTIAL = "partial"  # vif only: one declared direction in force, another missing
    UNDECLARED = "undeclared"  # shaped, but not declared (someone else did it)
    UNSUPPORTED = "unsupported"  # declared on an interface type libvirt does not shape
    NONE = "none"  # nothing declared, nothing in force
    INACTIVE = "inactive"  # the domain is not running: nothing can be in force


PROBLEM_VERDICTS = frozenset(
    {QosVerdict.MISSING, QosVerdict.DRIFT, QosVerdict.PARTIAL, QosVerdict.UNDECLARED, QosVerdict.UNSUPPORTED}
)


@dataclass(frozen=True)
class DirectionQos:
    declared: BandwidthRate | None
    enforced: Enforced | None
    verdict: QosVerdict
    differs: tuple[str, ...] = ()  # drift: the fields that differ ("average", "peak", "burst")


@dataclass(frozen=True)
class VifQos:
    """One vif's QoS answer. ``config`` is the persistent XML's ``<bandwidth>`` when it differs
    from the live one (a ``domiftune --config`` not yet live, or the reverse)."""

    domain: str
    index: int
    mac: str | None
    target: str | None
    type: str
    inbound: DirectionQos
    outbound: DirectionQos
    verdict: QosVerdict
    config: Bandwidth | None = None
    config_differs: bool = False
    where: str = ""  # tc / ovsdb: where the enforced side was read
