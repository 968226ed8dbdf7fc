"""What the engine's decisions ask for (effects), and the small state values they decide from. Pure.

Event handlers (watch.handlers) and the heal pass (watch.heal_run) look at plain values — the
vif table, the timers, the pending link names, the ``-d`` scope, a reader callable — and return
a list of effects; the engine (watch.daemon) applies them in order. So neither needs the
engine, and each can be called with plain data and judged by what it returns.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from vifscope.model import DeclaredVif, LibvirtNetwork, VifBinding
from vifscope.watch.config import WatchConfig
from vifscope.watch.policy import HealPolicy
from vifscope.watch.state import Affects, Everything, TouchesLinks

TimerName = Literal["links", "ovs", "resync", "reconnect", "heal", "flows"]


@dataclass(frozen=True)
class Timers:
    """Monotonic deadlines; None: not scheduled."""

    links: float | None = None
    ovs: float | None = None
    resync: float = 0.0
    reconnect: float | None = None
    heal: float | None = None
    flows: float | None = None  # watch --flows: the next flows report

    def nearest(self) -> float | None:
        due = [t for t in (self.links, self.ovs, self.resync, self.reconnect, self.heal, self.flows) if t is not None]
        return min(due) if due else None


@dataclass(frozen=True)
class PendingLinks:
    """Link events gathered since the last link dump: the names they named, or every link
    (the netlink socket overflowed or was lost, so names are unknown)."""

    names: frozenset[str] = frozenset()
    every: bool = False

    def plus(self, names: frozenset[str]) -> PendingLinks:
        return dataclasses.replace(self, names=self.names | names)

    def all_links(self) -> PendingLinks:
        return dataclasses.replace(self, every=True)

    def affects(self) -> Affects:
        return Everything() if self.every else TouchesLinks(self.names)


@dataclass(frozen=True)
class Scope:
    """``-d``: only these domains (names or UUIDs) are shown and healed; empty: all."""

    domains: frozenset[str] = frozenset()

    def shown(self, name: str, uuid: str) -> bool:
        return not self.domains or bool({name, uuid} & self.domains)

    def shows(self, b: VifBinding) -> bool:
        return self.shown(b.vif.domain, b.vif.domain_uuid)

    def policy(self, config: WatchConfig) -> HealPolicy:
        """The [heal] policy, narrowed to the scope's domains when given."""
        if not self.domains:
            return config.heal
        return dataclasses.replace(config.heal, domains=self.domains)


# --- effects -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Emit:
    """Print one non-transition line (source, heal, reload, stop, ...)."""

    doc: dict[str, Any]


@dataclass(frozen=True)
class Arm:
    """Set one deadline (None: cancel it)."""

    timer: TimerName
    at: float | None


@dataclass(frozen=True)
class SetPending:
    """Replace the gathered link events (an empty value: the next dump answers them)."""

    pending: PendingLinks


@dataclass(frozen=True)
class RefreshLinks:
    """Dump every link; re-bind the vifs ``affects`` selects; print what changed."""

    affects: Affects
    cause: str


@dataclass(frozen=True)
class RefreshOvs:
    """Read OVSDB again; re-bind the vifs on (or meant for) OVS. With ``lost``, the OVSDB
    monitor already found the server gone (closed, or silent past its echo): take its word
    instead of asking ``ovs-vsctl``, which would wait out its timeout on a hung server."""

    cause: str
    lost: str | None = None


@dataclass(frozen=True)
class ReadDomain:
    """Read one domain's live XML again (after the effects before it are applied)."""

    uuid: str
    cause: str


@dataclass(frozen=True)
class UseDomain:
    """Adopt one domain's interfaces as read (none: the domain is gone); print what changed."""

    uuid: str
    vifs: tuple[DeclaredVif, ...]
    cause: str


@dataclass(frozen=True)
class UseNetworks:
    """Adopt libvirt's network list (no re-binding: a link refresh follows)."""

    networks: tuple[LibvirtNetwork, ...]


@dataclass(frozen=True)
class LibvirtDown:
    """The libvirt connection is gone: say so, drop it, reconnect with back-off."""

    error: str


@dataclass(frozen=True)
class UseConfig:
    """A reloaded configuration (and the heal policy it implies) takes effect."""

    config: WatchConfig


@dataclass(frozen=True)
class StopWatching:
    """Leave the loop after this event."""


@dataclass(frozen=True)
class Heal:
    """Run the healer on these vifs now (watch.heal_run.healed says what follows)."""

    bindings: tuple[VifBinding, ...]


Effect = (
    Emit
    | Arm
    | SetPending
    | RefreshLinks
    | RefreshOvs
    | ReadDomain
    | UseDomain
    | UseNetworks
    | LibvirtDown
    | UseConfig
    | StopWatching
    | Heal
)
