"""The watcher's view of the host, updated piece by piece, and the transitions it yields.

Pure. A ``VifTable`` holds the last HostSnapshot and one VifBinding per vif. Each source
update replaces one part of the snapshot (links, one domain's vifs, networks, OVS) and
re-binds only the vifs that part can affect, so a netlink event costs one link dump and a
few ``bind_one`` calls, never a re-read of every domain's XML.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from vifscope.bind.join import bind_one
from vifscope.model import (
    DeclaredVif,
    HostSnapshot,
    LibvirtNetwork,
    ObservedLink,
    OvsPort,
    Problem,
    SourceError,
    VifBinding,
    VifStatus,
)

VifKey = tuple[str, str]  # (domain UUID, MAC or "#index"): stable across hotplug reordering
Affects = Callable[[DeclaredVif, VifBinding | None], bool]


def vif_key(vif: DeclaredVif) -> VifKey:
    return (vif.domain_uuid or vif.domain, vif.mac or f"#{vif.index}")


@dataclass(frozen=True)
class Transition:
    """A vif whose verdict, problems, bridge or target changed; None sides: appeared / gone."""

    key: VifKey
    old: VifBinding | None
    new: VifBinding | None
    cause: str
    at: datetime

    @property
    def vif(self) -> DeclaredVif:
        side = self.new or self.old
        assert side is not None, "a transition has at least one side"
        return side.vif


def signature(b: VifBinding | None) -> tuple[object, ...] | None:
    """What a user must hear about when it changes (counters and uplinks are not news)."""
    if b is None:
        return None
    return (b.status, b.problems, b.actual_bridge, b.vif.target, b.vif.domain_state, b.vif.link_state)


# --- replacing one part of a snapshot -------------------------------------------------------


def with_links(snap: HostSnapshot, links: tuple[ObservedLink, ...], at: datetime) -> HostSnapshot:
    return dataclasses.replace(snap, links=links, taken_at=at)


def with_domain(snap: HostSnapshot, uuid: str, vifs: Iterable[DeclaredVif]) -> HostSnapshot:
    """The snapshot with one domain's interfaces replaced (none: the domain is gone)."""
    kept = tuple(v for v in snap.vifs if v.domain_uuid != uuid)
    return dataclasses.replace(snap, vifs=kept + tuple(vifs))


def with_networks(snap: HostSnapshot, networks: tuple[LibvirtNetwork, ...]) -> HostSnapshot:
    return dataclasses.replace(snap, networks=networks)


def with_ovs(snap: HostSnapshot, ports: tuple[OvsPort, ...], bridges: tuple[str, ...], available: bool) -> HostSnapshot:
    return dataclasses.replace(snap, ovs_ports=ports, ovs_bridges=bridges, ovs_available=available)


def with_error(snap: HostSnapshot, source: str, error: SourceError | None) -> HostSnapshot:
    """Replace every error of ``source`` with ``error`` (None clears them)."""
    kept = tuple(e for e in snap.errors if e.source != source)
    return dataclasses.replace(snap, errors=kept + ((error,) if error else ()))


# --- which vifs an update can affect ---------------------------------------------------------
# Frozen values, not closures: an effect that carries one (watch.effects) compares and prints
# as what it means, so the engine's decisions can be asserted on and logged.


@dataclass(frozen=True)
class TouchesLinks:
    """Vifs whose tap, declared bridge/lower, or current bridge is among ``names``."""

    names: frozenset[str]

    def __call__(self, vif: DeclaredVif, old: VifBinding | None) -> bool:
        names = self.names
        if old is None or vif.target in names:
            return True
        exp = old.expect
        return bool(
            exp.bridge in names
            or exp.lower in names
            or names.intersection(exp.lower_pool)
            or (old.actual_bridge and old.actual_bridge.removeprefix("ovs:") in names)
            or (old.link is not None and old.link.lower in names)
        )


@dataclass(frozen=True)
class OfDomain:
    uuid: str

    def __call__(self, vif: DeclaredVif, _old: VifBinding | None) -> bool:
        return vif.domain_uuid == self.uuid


@dataclass(frozen=True)
class OfNetwork:
    name: str

    def __call__(self, vif: DeclaredVif, _old: VifBinding | None) -> bool:
        return vif.type == "network" and (vif.network or vif.source) == self.name


@dataclass(frozen=True)
class OnOvs:
    """Vifs that are, were, or should be on OVS (``ports``: the OVS port names now)."""

    ports: frozenset[str]

    def __call__(self, vif: DeclaredVif, old: VifBinding | None) -> bool:
        if old is None or vif.target in self.ports:
            return True
        return old.expect.attach == "ovs-bridge" or old.ovs is not None


def on_ovs(snap: HostSnapshot) -> OnOvs:
    return OnOvs(frozenset(p.name for p in snap.ovs_ports))


@dataclass(frozen=True)
class Everything:
    def __call__(self, _vif: DeclaredVif, _old: VifBinding | None) -> bool:
        return True


@dataclass(frozen=True)
class Either:
    first: Affects
    second: Affects

    def __call__(self, vif: DeclaredVif, old: VifBinding | None) -> bool:
        return self.first(vif, old) or self.second(vif, old)


# --- the table -------------------------------------------------------------------------------


class VifTable:
    """Current bindings by vif key; ``update`` returns what changed."""

    def __init__(self, snap: HostSnapshot) -> None:
        self.snap = snap
        self.bindings: dict[VifKey, VifBinding] = {vif_key(v): bind_one(v, snap) for v in snap.vifs}
        self.rebound = 0  # bind_one calls after the first: the cost "only affected vifs" saves

    def update(self, snap: HostSnapshot, affects: Affects, cause: str) -> list[Transition]:
        """Adopt ``snap``; re-bind the vifs ``affects`` selects (and new ones); drop gone ones."""
        old_bindings, fresh = self.bindings, {}
        for vif in snap.vifs:
            key = vif_key(vif)
            old = old_bindings.get(key)
            if old is not None and old.vif == vif and not affects(vif, old):
                fresh[key] = old
                continue
            fresh[key] = bind_one(vif, snap)
            self.rebound += 1
        self.snap, self.bindings = snap, fresh
        changes = [
            Transition(key, old_bindings.get(key), new, cause, snap.taken_at)
            for key, new in fresh.items()
            if signature(old_bindings.get(key)) != signature(new)
        ]
        gone = [Transition(k, b, None, cause, snap.taken_at) for k, b in old_bindings.items() if k not in fresh]
        return sorted(changes + gone, key=lambda t: (t.vif.domain, t.vif.index))

    def broken(self) -> list[VifBinding]:
        """Vifs of running domains that are not bound (heal candidates, before policy)."""
        ok = (VifStatus.BOUND, VifStatus.INACTIVE, VifStatus.UNVERIFIED)
        return [b for b in self.bindings.values() if b.status not in ok]


def needs_source(b: VifBinding) -> bool:
    return Problem.SOURCE_UNAVAILABLE in b.problems
