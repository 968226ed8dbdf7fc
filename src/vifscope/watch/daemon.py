"""The watch engine: one thread consuming events from every live source, in order.

Producers (libvirt's event loop thread, the netlink and OVSDB monitor threads, signal
handlers) only put events on a queue; this loop owns all state, so nothing is shared
between threads but the queue. Each event kind has one handler (watch.handlers, keyed by
type) and the heal pass has its stages (watch.heal_run); both return effects
(watch.effects), which this engine applies (``APPLY``, keyed by type). Timers (link
debounce, OVS debounce, full resync, libvirt reconnect, heal) are deadlines checked after
every event.
"""

from __future__ import annotations

import dataclasses
import queue
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vifscope.actions.audit import AuditLog
from vifscope.model import HostSnapshot, SourceError, VifBinding
from vifscope.report import documents as report
from vifscope.sources.deadline import SourceWorker
from vifscope.sources.libvirt.conn import LibvirtUnavailable, hint_for
from vifscope.sources.libvirt.eventloop import EventLoop
from vifscope.sources.snapshot import OVS_HINT
from vifscope.watch import effects as fx
from vifscope.watch.backoff import Backoff
from vifscope.watch.config import WatchConfig, describe, load_config
from vifscope.watch.events import WatchEvent
from vifscope.watch.flows import FlowWatch
from vifscope.watch.handlers import HANDLERS, Context, dump_links, read_domain
from vifscope.watch.heal_run import HealView, Stage, heal_step, healed
from vifscope.watch.healing import Healer, HealScheduler
from vifscope.watch.live import full_read, links_or_error, ovs_or_error
from vifscope.watch.lvevents import LibvirtWatcher
from vifscope.watch.nlmon import LinkWatch
from vifscope.watch.output import Printer
from vifscope.watch.ovsmon import OvsMonitor
from vifscope.watch.qosheal import qos_after_update, tap_changes
from vifscope.watch.state import (
    Affects,
    Everything,
    OfDomain,
    VifTable,
    on_ovs,
    with_domain,
    with_error,
    with_links,
    with_networks,
    with_ovs,
)


@dataclass(frozen=True)
class WatchOptions:
    uri: str
    config: WatchConfig
    config_path: Path | None = None
    domains: frozenset[str] = frozenset()  # -d: only these domains are shown and healed
    healer: Healer | None = None  # None: watch only
    qos_audit: AuditLog | None = None  # with a healer: vifscope's QoS is healed too (watch/qosheal.py)
    dry_run: bool = False
    flows: FlowWatch | None = None  # watch --flows (watch/flows.py)


class Watch:
    def __init__(self, options: WatchOptions, printer: Printer, clock: Callable[[], float] = time.monotonic) -> None:
        self.opt = options
        self.config = options.config
        self.printer = printer
        self.clock = clock
        self.events: queue.SimpleQueue[WatchEvent] = queue.SimpleQueue()  # put() is safe in signal handlers
        self.libvirt = LibvirtWatcher(options.uri, self.events.put)
        self.timers = fx.Timers()
        self.up: dict[str, bool] = {}
        # Capped low: a connect attempt to a local socket is cheap, and the cap is how long a
        # libvirtd that is back may wait for watch to notice (bench/outage.py measures it).
        self.reconnect_backoff = Backoff(initial=0.5, maximum=5.0)
        self.libvirt_reader = SourceWorker("libvirt")  # full reads, with a deadline (watch.live)
        self.pending = fx.PendingLinks()
        self.scope = fx.Scope(options.domains)
        self.scheduler = HealScheduler(self.scope.policy(options.config))
        self.stopping = False
        self.ovs_monitor: OvsMonitor | None = None
        self.table: VifTable

    # --- start / stop ---------------------------------------------------------------------

    def start(self) -> None:
        """Connect and take the first full snapshot. Raises LibvirtUnavailable (exit 3)."""
        EventLoop.ensure()
        self.libvirt.connect()
        first = full_read(self.opt.uri, None, self.libvirt_reader)
        self.table = VifTable(first.snapshot)
        for source in ("netlink", "ovs"):  # libvirt answered; its per-domain errors are not an outage
            self._source(source, next((e for e in first.snapshot.errors if e.source == source), None))
        self.up["libvirt"] = True
        self._start_monitors()
        self.arm("resync", self.clock() + self.config.resync_interval)
        self.printer.event(self._start_doc())
        self._start_flows()
        self._wants_heal()

    def _start_flows(self) -> None:
        flows = self.opt.flows
        if flows is None:
            return
        error = flows.start(self.clock())
        self._source("bpf", error)
        if error is None:
            self._source("bpf", flows.sync(self.table.bindings.values()))
            self.arm("flows", self.clock() + flows.interval)

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
        bindings = [b for b in self.table.bindings.values() if self.scope.shows(b)]
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
                self.apply_all(HANDLERS[type(event)](self._context(), event))
            self._run_timers()
        self.libvirt.close()
        if self.ovs_monitor is not None:
            self.ovs_monitor.stop()
        if self.opt.flows is not None:
            self.opt.flows.close()  # detach now (the kernel would at exit anyway)
        return 0

    def _next_event(self) -> WatchEvent | None:
        due = self.timers.nearest()
        timeout = None if due is None else max(0.0, due - self.clock())
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def _context(self) -> Context:
        path = self.opt.config_path
        return Context(
            now=self.clock(),
            config=self.config,
            timers=self.timers,
            pending=self.pending,
            scope=self.scope,
            networks=self.libvirt.networks,
            load_config=lambda: load_config(path),
        )

    # --- applying changes -----------------------------------------------------------------

    def apply_all(self, effects: Iterable[fx.Effect]) -> None:
        for effect in effects:
            APPLY[type(effect)](self, effect)

    def arm(self, timer: fx.TimerName, at: float | None) -> None:
        change: dict[str, Any] = {timer: at}  # only resync is never cancelled (None); no effect does so
        self.timers = dataclasses.replace(self.timers, **change)

    def apply(self, snap: HostSnapshot, affects: Affects, cause: str) -> None:
        snap = dataclasses.replace(snap, taken_at=datetime.now(UTC))
        before = self.table.bindings
        moved = self.table.update(snap, affects, cause)
        for t in moved:
            if self.scope.shown(t.vif.domain, t.vif.domain_uuid):
                self.printer.transition(t)
        if self.opt.flows is not None and self.timers.flows is not None:  # a tap came or went: follow it
            self._source("bpf", self.opt.flows.sync(self.table.bindings.values()))
        self._wants_heal()
        if self.opt.qos_audit is not None:  # taps gone (release ifb, marks) or (re)gained (rates, marks)
            changes = tap_changes(before, self.table.bindings, moved)
            docs = qos_after_update(changes, self.table.snap, self.scope.shown, self.opt.qos_audit, self.opt.dry_run)
            self.apply_all(fx.Emit(doc) for doc in docs)

    def _wants_heal(self) -> None:
        if self.opt.healer is not None and self.table.broken():
            self.arm("heal", self.clock())

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

    def refresh_links(self, affects: Affects, cause: str) -> None:
        links, error = links_or_error()
        self._source("netlink", error)
        snap = with_error(self.table.snap, "netlink", error)
        self.apply(with_links(snap, links if links is not None else (), datetime.now(UTC)), affects, cause)

    def refresh_ovs(self, cause: str, lost: str | None = None) -> None:
        ovs, error = (None, SourceError("ovs", lost, OVS_HINT)) if lost else ovs_or_error()
        self._source("ovs", error)
        snap = with_error(self.table.snap, "ovs", error)
        snap = with_ovs(snap, ovs.ports, ovs.bridges, True) if ovs else with_ovs(snap, (), (), False)
        self.apply(snap, on_ovs(snap), cause)

    def resync(self, cause: str = "resync") -> None:
        full = full_read(self.opt.uri, self.table.snap, self.libvirt_reader)
        for source in ("netlink", "ovs"):
            self._source(source, next((e for e in full.snapshot.errors if e.source == source), None))
        if full.libvirt_error is not None:
            self.libvirt_down(full.libvirt_error.error)
        self.apply(full.snapshot, Everything(), cause)

    # --- libvirt connection ---------------------------------------------------------------

    def libvirt_down(self, error: str) -> None:
        if not self.up.get("libvirt"):
            return
        err = SourceError("libvirt", error, hint_for(self.opt.uri, error))
        self._source("libvirt", err)
        self.libvirt.drop()
        self.table.snap = with_error(self.table.snap, "libvirt", err)
        self.reconnect_backoff.reset()
        self.arm("reconnect", self.clock() + self.reconnect_backoff.next_delay())

    def try_reconnect(self) -> None:
        try:
            self.libvirt.connect()
        except LibvirtUnavailable:
            self.arm("reconnect", self.clock() + self.reconnect_backoff.next_delay())
            return
        self.arm("reconnect", None)
        self._source("libvirt", None)
        self.table.snap = with_error(self.table.snap, "libvirt", None)
        self.resync("libvirt-reconnect")

    # --- healing --------------------------------------------------------------------------

    def heal_pass(self) -> None:
        stage: Stage | None = Stage.CHECK if self.opt.healer is not None else None
        while stage is not None:
            view = HealView(self.table, self.scope, self.clock(), bool(self.up.get("libvirt")))
            step = heal_step(stage, view, self.scheduler)
            self.apply_all(step.effects)
            stage = step.then

    def heal(self, bindings: tuple[VifBinding, ...]) -> None:
        healer = self.opt.healer
        assert healer is not None, "heal passes run only with a healer"
        results = healer.heal(self.table.snap, bindings, dry_run=self.opt.dry_run)
        self.apply_all(healed(self.scheduler, results, self.clock()))

    # --- timers ---------------------------------------------------------------------------

    def _run_timers(self) -> None:
        now = self.clock()
        if self.timers.links is not None and self.timers.links <= now:
            self.apply_all(dump_links(self.pending, "netlink"))
        if self.timers.ovs is not None and self.timers.ovs <= now:
            self.arm("ovs", None)
            self.refresh_ovs("ovsdb")
        if self.timers.reconnect is not None and self.timers.reconnect <= now:
            self.try_reconnect()
        if self.timers.resync <= now:
            self.arm("resync", now + self.config.resync_interval)
            self.resync()
        if self.timers.heal is not None and self.timers.heal <= now:
            self.arm("heal", None)
            self.heal_pass()
        if self.timers.flows is not None and self.timers.flows <= now and self.opt.flows is not None:
            self.arm("flows", now + self.opt.flows.interval)
            every = list(self.table.bindings.values())
            # Taps left waiting by a full attach budget (1,000 new taps take ~26 s) would else wait
            # for the next table update: on a quiet host, the 60 s resync.
            self._source("bpf", self.opt.flows.sync(every))
            shown = {b.link.ifindex for b in every if b.link is not None and self.scope.shows(b)}
            self.apply_all(fx.Emit(doc) for doc in self.opt.flows.report(every, now, shown))


def _use_config(w: Watch, config: WatchConfig) -> None:
    w.config = config
    w.scheduler.policy = w.scope.policy(config)


def _use_networks(w: Watch, e: fx.UseNetworks) -> None:
    w.table.snap = with_networks(w.table.snap, e.networks)


def _set_pending(w: Watch, e: fx.SetPending) -> None:
    w.pending = e.pending


def _stop(w: Watch, _e: fx.StopWatching) -> None:
    w.stopping = True


# How each effect is applied (a table keyed by type; watch.effects says what each means).
APPLY: dict[type, Callable[[Watch, Any], None]] = {
    fx.Emit: lambda w, e: w.printer.event(e.doc),
    fx.Arm: lambda w, e: w.arm(e.timer, e.at),
    fx.SetPending: _set_pending,
    fx.RefreshLinks: lambda w, e: w.refresh_links(e.affects, e.cause),
    fx.RefreshOvs: lambda w, e: w.refresh_ovs(e.cause, e.lost),
    fx.ReadDomain: lambda w, e: w.apply_all(read_domain(e.uuid, e.cause, w.libvirt.domain_vifs)),
    fx.UseDomain: lambda w, e: w.apply(with_domain(w.table.snap, e.uuid, e.vifs), OfDomain(e.uuid), e.cause),
    fx.UseNetworks: _use_networks,
    fx.LibvirtDown: lambda w, e: w.libvirt_down(e.error),
    fx.UseConfig: lambda w, e: _use_config(w, e.config),
    fx.StopWatching: _stop,
    fx.Heal: lambda w, e: w.heal(e.bindings),
}
