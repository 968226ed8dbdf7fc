"""One handler per watch event type (``HANDLERS``, a table keyed by type).

Handlers run on the engine thread only; they turn an event into the narrowest re-read
(one domain's XML, the network list, one link dump, one OVSDB read) and hand the result
to the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vifscope.watch.config import ConfigError, describe, load_config
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
from vifscope.watch.state import Affects, of_domain, of_network, with_networks

if TYPE_CHECKING:
    from vifscope.watch.daemon import Watch


def either(a: Affects, b: Affects) -> Affects:
    return lambda vif, old: a(vif, old) or b(vif, old)


def on_links(w: Watch, ev: LinkBatch) -> None:
    w.pending_links.update(e.name for e in ev.events if e.name)
    if w.timers.links is None:
        w.timers.links = w.clock() + w.config.debounce


def on_overrun(w: Watch, _ev: LinksOverrun) -> None:
    w.pending_all_links = True
    w.timers.links = w.clock()


def on_domain(w: Watch, ev: DomainChanged) -> None:
    if not w.shown(ev.name, ev.uuid):
        return  # outside -d: never shown nor healed, and the next resync still refreshes it
    # Its taps may have appeared or gone with it: take links first so the domain binds to them.
    cause = f"libvirt:{ev.what}"
    w.refresh_links(either(of_domain(ev.uuid), w.take_pending_links()), cause)
    w.read_domain(ev.uuid, cause)


def on_network(w: Watch, ev: NetworkChanged) -> None:
    try:
        networks = w.libvirt.networks()
    except LibvirtReadError as exc:
        if exc.lost:
            w.libvirt_down(str(exc))
        return  # not lost: the network vanished again; its next event follows
    w.table.snap = with_networks(w.table.snap, networks)
    cause = f"libvirt:network-{ev.what}:{ev.name}"
    w.refresh_links(either(of_network(ev.name), w.take_pending_links()), cause)


def on_ovs(w: Watch, _ev: OvsChanged) -> None:
    if w.timers.ovs is None:
        w.timers.ovs = w.clock() + w.config.debounce


def _netlink_down(w: Watch, _error: str) -> None:
    w.pending_all_links = True
    w.timers.links = w.clock()


SOURCE_DOWN: dict[str, Callable[[Watch, str], None]] = {
    "libvirt": lambda w, error: w.libvirt_down(error),
    "ovs": lambda w, _error: w.refresh_ovs("ovsdb-lost"),
    "netlink": _netlink_down,
}


def on_source_down(w: Watch, ev: SourceDown) -> None:
    SOURCE_DOWN[ev.source](w, ev.error)


def on_stop(w: Watch, ev: Stop) -> None:
    w.stopping = True
    w.printer.event({"event": "stop", "signal": ev.signal})


def on_reload(w: Watch, _ev: Reload) -> None:
    try:
        config = load_config(w.opt.config_path)
    except ConfigError as exc:
        w.printer.event({"event": "reload", "ok": False, "error": str(exc)})
        return
    w.config = config
    w.scheduler.policy = w.policy_for(config)
    w.timers.resync = min(w.timers.resync, w.clock() + config.resync_interval)
    w.printer.event({"event": "reload", "ok": True, "config": describe(config)})


HANDLERS: dict[type, Callable[[Watch, Any], None]] = {
    LinkBatch: on_links,
    LinksOverrun: on_overrun,
    DomainChanged: on_domain,
    NetworkChanged: on_network,
    OvsChanged: on_ovs,
    SourceDown: on_source_down,
    Stop: on_stop,
    Reload: on_reload,
}
