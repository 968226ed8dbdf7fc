"""The watch engine: one thread consuming events from every live source, in order.

Producers (libvirt's event loop thread, the netlink and OVSDB monitor threads, signal
handlers) only put events on a queue; this loop owns all state, so nothing is shared
between threads but the queue. Each event kind has one handler (``HANDLERS``, keyed by
type); timers (link debounce, OVS debounce, full resync, libvirt reconnect, heal) are
deadlines checked after every event.
"""

from __future__ import annotations

import dataclasses
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from vifscope.model import HostSnapshot, SourceError
from vifscope.report import documents as report
from vifscope.sources.libvirt.conn import LibvirtUnavailable, hint_for
from vifscope.sources.libvirt.eventloop import EventLoop
from vifscope.watch.backoff import Backoff
from vifscope.watch.config import WatchConfig, describe
from vifscope.watch.events import WatchEvent
from vifscope.watch.handlers import HANDLERS
from vifscope.watch.heal_run import heal_pass
from vifscope.watch.healing import Healer, HealScheduler
from vifscope.watch.live import full_read, links_or_error, ovs_or_error
from vifscope.watch.lvevents import LibvirtReadError, LibvirtWatcher
from vifscope.watch.nlmon import LinkWatch
from vifscope.watch.output import Printer
from vifscope.watch.ovsmon import OvsMonitor
from vifscope.watch.policy import HealPolicy
from vifscope.watch.state import (
    Affects,
    VifTable,
    everything,
    of_domain,
    on_ovs,
    touches_links,
    with_domain,
    with_error,
    with_links,
    with_ovs,
)


@dataclass
class Timers:
    """Monotonic deadlines; None: not scheduled."""

    links: float | None = None
    ovs: float | None = None
    resync: float = 0.0
    reconnect: float | None = None
    heal: float | None = None

    def nearest(self) -> float | None:
        due = [t for t in (self.links, self.ovs, self.resync, self.reconnect, self.heal) if t is not None]
        return min(due) if due else None


@dataclass(frozen=True)
class WatchOptions:
    uri: str
    config: WatchConfig
    config_path: Path | None = None
    domains: frozenset[str] = frozenset()  # -d: only these domains are shown and healed
    healer: Healer | None = None  # None: watch only
    dry_run: bool = False


class Watch:
    def __init__(self, options: WatchOptions, printer: Printer, clock: Callable[[], float] = time.monotonic) -> None:
        self.opt = options
        self.config = options.config
        self.printer = printer
        self.clock = clock
        self.events: queue.SimpleQueue[WatchEvent] = queue.SimpleQueue()  # put() is safe in signal handlers
        self.libvirt = LibvirtWatcher(options.uri, self.events.put)
        self.timers = Timers()
        self.up: dict[str, bool] = {}
        self.reconnect_backoff = Backoff(initial=1.0, maximum=30.0)
        self.pending_links: set[str] = set()
        self.pending_all_links = False
        self.scheduler = HealScheduler(self.policy_for(options.config))
        self.stopping = False
        self.ovs_monitor: OvsMonitor | None = None
        self.table: VifTable

    def policy_for(self, config: WatchConfig) -> HealPolicy:
        """The [heal] policy, narrowed to ``-d`` domains when given."""
        if not self.opt.domains:
            return config.heal
        return dataclasses.replace(config.heal, domains=self.opt.domains)

    # --- start / stop ---------------------------------------------------------------------

    def start(self) -> None:
        """Connect and take the first full snapshot. Raises LibvirtUnavailable (exit 3)."""
        EventLoop.ensure()
        self.libvirt.connect()
        first = full_read(self.opt.uri, None)
        self.table = VifTable(first.snapshot)
        for source in ("netlink", "ovs"):  # libvirt answered; its per-domain errors are not an outage
            self._source(source, next((e for e in first.snapshot.errors if e.source == source), None))
        self.up["libvirt"] = True
        self._start_monitors()
        self.timers.resync = self.clock() + self.config.resync_interval
        self.printer.event(self._start_doc())
        self._wants_heal()

    def _start_monitors(self) -> None:
        try:
            LinkWatch(self.events.put).start()
        except OSError as exc:
            self._source("netlink", SourceError("netlink", f"cannot open a netlink monitor socket: {exc}"))
        if self.table.snap.ovs_available or self.up.get("ovs") is False:
            self.ovs_monitor = OvsMonitor(self.events.put)
            self.ovs_monitor.start()

    def _start_doc(self) -> dict[str, object]:
        snap = self.table.snap
        bindings = [b for b in self.table.bindings.values() if self.shown(b.vif.domain, b.vif.domain_uuid)]
        return {
            "event": "start",
            "host": snap.host,
            "uri": snap.uri,
            "summary": report.summary_line(bindings),
            "counts": dict(report.counts(bindings)),
            "heal": self.opt.healer is not None,
            "dry_run": self.opt.dry_run,
            "resync_interval": self.config.resync_interval,
            "config": describe(self.config),
        }

    def run(self) -> int:
        while not self.stopping:
            event = self._next_event()
            if event is not None:
                HANDLERS[type(event)](self, event)
            self._run_timers()
        self.libvirt.close()
        if self.ovs_monitor is not None:
            self.ovs_monitor.stop()
        return 0

    def _next_event(self) -> WatchEvent | None:
        due = self.timers.nearest()
        timeout = None if due is None else max(0.0, due - self.clock())
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    # --- applying changes -----------------------------------------------------------------

    def apply(self, snap: HostSnapshot, affects: Affects, cause: str) -> None:
        snap = dataclasses.replace(snap, taken_at=datetime.now(UTC))
        for t in self.table.update(snap, affects, cause):
            if self.shown(t.vif.domain, t.vif.domain_uuid):
                self.printer.transition(t)
        self._wants_heal()

    def shown(self, name: str, uuid: str) -> bool:
        return not self.opt.domains or bool({name, uuid} & self.opt.domains)

    def _wants_heal(self) -> None:
        if self.opt.healer is not None and self.table.broken():
            self.timers.heal = self.clock()

    def _source(self, source: str, error: SourceError | None) -> None:
        """Remember whether a source is up; print a source line only when that flips."""
        was = self.up.get(source)
        self.up[source] = error is None
        if was is None and error is None:
            return
        if was != (error is None):
            doc: dict[str, object] = {"event": "source", "source": source, "state": "up" if error is None else "down"}
            if error is not None:
                doc |= {"error": error.error, "hint": error.hint}
            self.printer.event(doc)

    def take_pending_links(self) -> Affects:
        """What the link events gathered since the last dump can affect; clears them."""
        names, self.pending_links = frozenset(self.pending_links), set()
        all_links, self.pending_all_links = self.pending_all_links, False
        self.timers.links = None
        return everything if all_links else touches_links(names)

    def refresh_links(self, affects: Affects, cause: str) -> None:
        links, error = links_or_error()
        self._source("netlink", error)
        snap = with_error(self.table.snap, "netlink", error)
        self.apply(with_links(snap, links if links is not None else (), datetime.now(UTC)), affects, cause)

    def refresh_ovs(self, cause: str) -> None:
        ovs, error = ovs_or_error()
        self._source("ovs", error)
        snap = with_error(self.table.snap, "ovs", error)
        snap = with_ovs(snap, ovs.ports, ovs.bridges, True) if ovs else with_ovs(snap, (), (), False)
        self.apply(snap, on_ovs(snap), cause)

    def resync(self, cause: str = "resync") -> None:
        full = full_read(self.opt.uri, self.table.snap)
        for source in ("netlink", "ovs"):
            self._source(source, next((e for e in full.snapshot.errors if e.source == source), None))
        if full.libvirt_error is not None:
            self.libvirt_down(full.libvirt_error.error)
        self.apply(full.snapshot, everything, cause)

    # --- libvirt connection ---------------------------------------------------------------

    def libvirt_down(self, error: str) -> None:
        if not self.up.get("libvirt"):
            return
        err = SourceError("libvirt", error, hint_for(self.opt.uri, error))
        self._source("libvirt", err)
        self.libvirt.drop()
        self.table.snap = with_error(self.table.snap, "libvirt", err)
        self.reconnect_backoff.reset()
        self.timers.reconnect = self.clock() + self.reconnect_backoff.next_delay()

    def try_reconnect(self) -> None:
        try:
            self.libvirt.connect()
        except LibvirtUnavailable:
            self.timers.reconnect = self.clock() + self.reconnect_backoff.next_delay()
            return
        self.timers.reconnect = None
        self._source("libvirt", None)
        self.table.snap = with_error(self.table.snap, "libvirt", None)
        self.resync("libvirt-reconnect")

    def read_domain(self, uuid: str, cause: str) -> None:
        try:
            vifs = self.libvirt.domain_vifs(uuid)
        except LibvirtReadError as exc:
            if exc.lost:
                self.libvirt_down(str(exc))
            return  # the domain changed under us: its next event (or the resync) catches up
        self.apply(with_domain(self.table.snap, uuid, vifs or ()), of_domain(uuid), cause)

    # --- timers ---------------------------------------------------------------------------

    def _run_timers(self) -> None:
        now = self.clock()
        t = self.timers
        if t.links is not None and t.links <= now:
            self.refresh_links(self.take_pending_links(), "netlink")
        if t.ovs is not None and t.ovs <= now:
            t.ovs = None
            self.refresh_ovs("ovsdb")
        if t.reconnect is not None and t.reconnect <= now:
            self.try_reconnect()
        if t.resync <= now:
            t.resync = now + self.config.resync_interval
            self.resync()
        if t.heal is not None and t.heal <= now:
            t.heal = None
            heal_pass(self)
