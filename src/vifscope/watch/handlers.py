"""One handler per watch event type (``HANDLERS``, a table keyed by type).

A handler looks at what the engine knows (``Context``: plain values and two readers) and
returns the narrowest re-reads and changes the event calls for (one domain's XML, the network
list, one link dump, one OVSDB read) as effects (watch.effects); the engine applies them, in
order, on its own thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vifscope.model import DeclaredVif, LibvirtNetwork
from vifscope.watch.config import ConfigError, WatchConfig, describe
from vifscope.watch.effects import (
    Arm,
    Effect,
    Emit,
    LibvirtDown,
    PendingLinks,
    ReadDomain,
    RefreshLinks,
    RefreshOvs,
    Scope,
    SetPending,
    StopWatching,
    Timers,
    UseConfig,
    UseDomain,
    UseNetworks,
)
from vifscope.watch.events import (
    DomainChanged,
    LinkBatch,
    LinksOverrun,
    NetworkChanged,
    OvsChanged,
    Reload,
    SourceDown,
    Stop,
)
from vifscope.watch.lvevents import LibvirtReadError
from vifscope.watch.state import Affects, Either, OfDomain, OfNetwork

DomainReader = Callable[[str], tuple[DeclaredVif, ...] | None]  # None: gone; raises LibvirtReadError


@dataclass(frozen=True)
class Context:
    """What a handler may look at: the engine's state at the event, and the reads it may make."""

    now: float  # monotonic seconds
    config: WatchConfig
    timers: Timers
    pending: PendingLinks
    scope: Scope
    networks: Callable[[], tuple[LibvirtNetwork, ...]]  # raises LibvirtReadError
    load_config: Callable[[], WatchConfig]  # the config file again; raises ConfigError


def dump_links(pending: PendingLinks, cause: str, also: Affects | None = None) -> list[Effect]:
    """One link dump answering every pending link event (and whatever ``also`` selects)."""
    affects = pending.affects() if also is None else Either(also, pending.affects())
    return [SetPending(PendingLinks()), Arm("links", None), RefreshLinks(affects, cause)]


def read_domain(uuid: str, cause: str, reader: DomainReader) -> list[Effect]:
    """One domain's live interfaces as ``reader`` returns them, or why they cannot be had."""
    try:
        vifs = reader(uuid)
    except LibvirtReadError as exc:
        # Not lost: the domain changed under us: its next event (or the resync) catches up.
        return [LibvirtDown(str(exc))] if exc.lost else []
    return [UseDomain(uuid, vifs or (), cause)]


def on_links(ctx: Context, ev: LinkBatch) -> list[Effect]:
    effects: list[Effect] = [SetPending(ctx.pending.plus(frozenset(e.name for e in ev.events if e.name)))]
    if ctx.timers.links is None:  # the first of a burst: the dump waits for the rest of it
        effects.append(Arm("links", ctx.now + ctx.config.debounce))
    return effects


def every_link_now(ctx: Context) -> list[Effect]:
    """Events were lost: which links changed is unknown, so re-bind every vif, at once."""
    return [SetPending(ctx.pending.all_links()), Arm("links", ctx.now)]


def on_overrun(ctx: Context, ev: LinksOverrun) -> list[Effect]:
    """Said out loud (a lost event is never silent), then every link re-read and re-bound."""
    doc = {"event": "overrun", "source": "netlink", "reason": ev.reason, "total": ev.total}
    return [Emit(doc), *every_link_now(ctx)]


def on_domain(ctx: Context, ev: DomainChanged) -> list[Effect]:
    if not ctx.scope.shown(ev.name, ev.uuid):
        return []  # outside -d: never shown nor healed, and the next resync still refreshes it
    # Its taps may have appeared or gone with it: take links first so the domain binds to them.
    cause = f"libvirt:{ev.what}"
    return [*dump_links(ctx.pending, cause, also=OfDomain(ev.uuid)), ReadDomain(ev.uuid, cause)]


def on_network(ctx: Context, ev: NetworkChanged) -> list[Effect]:
    try:
        networks = ctx.networks()
    except LibvirtReadError as exc:
        # Not lost: the network vanished again; its next event follows.
        return [LibvirtDown(str(exc))] if exc.lost else []
    cause = f"libvirt:network-{ev.what}:{ev.name}"
    return [UseNetworks(networks), *dump_links(ctx.pending, cause, also=OfNetwork(ev.name))]


def on_ovs(ctx: Context, _ev: OvsChanged) -> list[Effect]:
    return [] if ctx.timers.ovs is not None else [Arm("ovs", ctx.now + ctx.config.debounce)]


SOURCE_DOWN: dict[str, Callable[[Context, str], list[Effect]]] = {
    "libvirt": lambda _ctx, error: [LibvirtDown(error)],
    "ovs": lambda _ctx, error: [RefreshOvs("ovsdb-lost", lost=error)],
    "netlink": lambda ctx, _error: every_link_now(ctx),
}


def on_source_down(ctx: Context, ev: SourceDown) -> list[Effect]:
    return SOURCE_DOWN[ev.source](ctx, ev.error)


def on_stop(_ctx: Context, ev: Stop) -> list[Effect]:
    return [StopWatching(), Emit({"event": "stop", "signal": ev.signal})]


def on_reload(ctx: Context, _ev: Reload) -> list[Effect]:
    try:
        config = ctx.load_config()
    except ConfigError as exc:
        return [Emit({"event": "reload", "ok": False, "error": str(exc)})]
    return [
        UseConfig(config),
        Arm("resync", min(ctx.timers.resync, ctx.now + config.resync_interval)),
        Emit({"event": "reload", "ok": True, "config": describe(config)}),
    ]


HANDLERS: dict[type, Callable[[Context, Any], list[Effect]]] = {
    LinkBatch: on_links,
    LinksOverrun: on_overrun,
    DomainChanged: on_domain,
    NetworkChanged: on_network,
    OvsChanged: on_ovs,
    SourceDown: on_source_down,
    Stop: on_stop,
    Reload: on_reload,
}
