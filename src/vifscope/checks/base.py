"""The check framework: a Check is a stable id, a category, a usual severity, a pure function
over a CheckContext, its requirements (which facts it needs) and its long explanation."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

from vifscope.checks.config import DoctorConfig
from vifscope.model import (
    Evidence,
    Finding,
    Fix,
    HostFacts,
    HostSnapshot,
    ObservedLink,
    OvsPort,
    Severity,
    VifBinding,
    VifStatus,
)

CATEGORIES = ("binding", "network", "host", "security", "performance")


@dataclass(frozen=True)
class Explain:
    """``doctor --explain``: what it means, why it matters, how to fix, when it is wrong."""

    what: str
    why: str
    fix: str
    false_positives: str = "None known."


@dataclass(frozen=True)
class CheckContext:
    """What every check reads: the snapshot, its bindings, the thresholds. Pure data."""

    snap: HostSnapshot
    bindings: tuple[VifBinding, ...]
    config: DoctorConfig = field(default_factory=DoctorConfig)

    @cached_property
    def facts(self) -> HostFacts:
        return self.snap.facts or HostFacts()

    @cached_property
    def running(self) -> tuple[VifBinding, ...]:
        """Bindings of domains with a QEMU process (their taps exist)."""
        return tuple(b for b in self.bindings if b.status is not VifStatus.INACTIVE)

    @cached_property
    def linux_bridges(self) -> dict[str, tuple[VifBinding, ...]]:
        """Existing Linux bridges that running vifs are declared on, with those vifs."""
        grouped: dict[str, list[VifBinding]] = {}
        for b in self.running:
            link = self.snap.links_by_name.get(b.expect.bridge or "")
            if b.expect.attach == "linux-bridge" and link is not None and link.kind == "bridge":
                grouped.setdefault(link.name, []).append(b)
        return {k: tuple(v) for k, v in sorted(grouped.items())}

    @cached_property
    def ovs_ports_by_bridge(self) -> dict[str, tuple[OvsPort, ...]]:
        grouped: dict[str, list[OvsPort]] = {}
        for port in self.snap.ovs_ports:
            grouped.setdefault(port.bridge, []).append(port)
        return {k: tuple(v) for k, v in grouped.items()}

    def uplinks(self, bridge: str) -> tuple[ObservedLink, ...]:
        """A bridge's ports that are not guest ports (``HostSnapshot.is_guest_port``): its way out."""
        return self.snap.bridge_ports.get(bridge, ((), ()))[0]

    def host_addresses(self, dev: str) -> tuple[str, ...]:
        """The host's addresses on a link, link-local ones left out (every up link has an fe80::)."""
        out = []
        for a in self.facts.addresses_by_dev.get(dev, ()):
            try:
                if not ipaddress.ip_interface(a.address).ip.is_link_local:
                    out.append(a.address)
            except ValueError:
                continue
        return tuple(out)

    def guest_ports(self, bridge: str) -> tuple[ObservedLink, ...]:
        """A bridge's guest ports: taps, and running domains' declared targets of any kind."""
        return self.snap.bridge_ports.get(bridge, ((), ()))[1]

    def peers(self, bridge: str, me: str) -> tuple[int, str]:
        """How many other guest ports share ``bridge`` with ``me``, and a short list of them.
        O(1) per vif: a bridge with thousands of taps must not make the checks quadratic."""
        if any(p.name == me for p in self.guest_ports(bridge)[:9]):
            return self._peer_list(bridge, me)
        # Every port past the listed ones gets the same answer: worked out once per bridge.
        key = (bridge, me in self._port_names(bridge))
        if key not in self._peer_lists:
            self._peer_lists[key] = self._peer_list(bridge, me)
        return self._peer_lists[key]

    def _peer_list(self, bridge: str, me: str) -> tuple[int, str]:
        ports = self.guest_ports(bridge)
        count = len(ports) - (1 if me in self._port_names(bridge) else 0)
        first = [p.name for p in ports[:9] if p.name != me][:8]
        more = f" (+{count - len(first)} more)" if count > len(first) else ""
        return count, ", ".join(first) + more

    @cached_property
    def _peer_lists(self) -> dict[tuple[str, bool], tuple[int, str]]:
        return {}

    @cached_property
    def _filter_refs(self) -> dict[str, tuple[str, ...]]:
        return {f.name: f.references for f in self.facts.nwfilters or ()}

    @cached_property
    def _closures(self) -> dict[str, frozenset[str]]:
        return {}

    def filter_closure(self, name: str) -> frozenset[str]:
        """Every nwfilter ``name`` pulls in through <filterref>, itself included (cycles are cut).
        Worked out once per filter: thousands of vifs share clean-traffic."""
        if name not in self._closures:
            seen: set[str] = set()
            todo = [name]
            while todo:
                cur = todo.pop()
                if cur not in seen:
                    seen.add(cur)
                    todo.extend(self._filter_refs.get(cur, ()))
            self._closures[name] = frozenset(seen)
        return self._closures[name]

    def _port_names(self, bridge: str) -> frozenset[str]:
        return self._guest_names.get(bridge, frozenset())

    @cached_property
    def _guest_names(self) -> dict[str, frozenset[str]]:
        return {br: frozenset(p.name for p in guests) for br, (_, guests) in self.snap.bridge_ports.items()}


CheckFn = Callable[[CheckContext, "Check"], Iterable[Finding]]
# A requirement returns why the check cannot be evaluated on this snapshot, or None.
Requirement = Callable[[CheckContext], str | None]


@dataclass(frozen=True)
class Check:
    id: str
    category: str
    severity: Severity  # the usual severity; a finding may be raised or lowered with a reason
    title: str
    fn: CheckFn
    explain: Explain
    requires: tuple[Requirement, ...] = ()

    def skip_reason(self, ctx: CheckContext) -> str | None:
        return next((r for r in (req(ctx) for req in self.requires) if r), None)

    def run(self, ctx: CheckContext) -> Iterator[Finding]:
        yield from self.fn(ctx, self)

    def on_vif(
        self,
        b: VifBinding,
        message: str,
        evidence: Iterable[tuple[str, object]] = (),
        fix: Fix | None = None,
        *,
        severity: Severity | None = None,
        subject: str | None = None,
    ) -> Finding:
        """A finding about one vif (grouped under it in the output)."""
        v = b.vif
        return self._finding(subject, message, evidence, fix, severity, (v.domain, v.mac, v.target))

    def on_host(
        self,
        subject: str | None,
        message: str,
        evidence: Iterable[tuple[str, object]] = (),
        fix: Fix | None = None,
        *,
        severity: Severity | None = None,
    ) -> Finding:
        """A finding about a bridge, a network, an OVS port or the host itself."""
        return self._finding(subject, message, evidence, fix, severity, (None, None, None))

    def _finding(
        self,
        subject: str | None,
        message: str,
        evidence: Iterable[tuple[str, object]],
        fix: Fix | None,
        severity: Severity | None,
        vif: tuple[str | None, str | None, str | None],
    ) -> Finding:
        # One constructor call (no dataclasses.replace): some checks give a finding per vif,
        # 5,000 of them on a large node (sec.no_spoof_filter on a host without nwfilters).
        return Finding(
            check=self.id,
            severity=severity or self.severity,
            category=self.category,
            message=message,
            evidence=tuple((k, scalar(v)) for k, v in evidence),
            fix=fix,
            subject=subject,
            domain=vif[0],
            mac=vif[1],
            target=vif[2],
        )


def scalar(value: object) -> Evidence:
    """Evidence values stay JSON scalars; anything else (a tuple, an enum) is shown as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def needs(part: str, what: str) -> Requirement:
    """Requirement: HostFacts.<part> was read (deep snapshot, source answered)."""

    def check(ctx: CheckContext) -> str | None:
        if ctx.snap.facts is None:
            return "host facts were not collected (not a deep snapshot)"
        if getattr(ctx.snap.facts, part) is None:
            return f"{what} could not be read (see source_errors)"
        return None

    return check


# Interface types whose vif is a tap or macvtap QEMU feeds: the ones vhost-net can serve.
VHOST_TYPES = frozenset({"bridge", "network", "ethernet", "direct"})


def is_virtio(b: VifBinding) -> bool:
    return b.vif.model == "virtio" and b.vif.type in VHOST_TYPES


def virtio_vifs(ctx: CheckContext) -> list[VifBinding]:
    """Running virtio vifs on a tap or macvtap: the ones vhost-net serves, or QEMU without it."""
    return [b for b in ctx.running if is_virtio(b)]


def vif_name(b: VifBinding) -> str:
    return f"{b.vif.domain}#{b.vif.index}"


def short(items: Iterable[str], limit: int = 8) -> str:
    """A readable list: the first ``limit`` items and how many more (evidence stays small at scale)."""
    shown = list(items)
    more = f" (+{len(shown) - limit} more)" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more


def names(bindings: Iterable[VifBinding]) -> str:
    return short(vif_name(b) for b in bindings)
