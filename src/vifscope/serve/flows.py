"""``serve --flows``: the flow program follows the server's own snapshots — every ``FOLLOW``
seconds the running vifs' taps are attached and the gone ones detached (the exporter's
FlowTracker does both) — and ``GET /api/v1/vifs/{domain}/{mac}/flows`` answers a vif's talkers
over a rolling window.

The window: the kernel's map is cumulative, so the server keeps a few baselines (a copy of the
map's counts, one every ``window / 2`` seconds on their own timer, the last three) and a request
reads the map now and subtracts the newest baseline at least ``window`` seconds old (the oldest
one while the server is younger than that): what each flow moved over the last ``window`` to
``1.5 × window`` seconds, plus one read of the map. The answer's ``seconds`` says exactly how
long. Memory: three copies of the map's keys and counts, no FlowRecords (14.7 MB each at
65,536 flows, ``--max-flows`` bounds it; README).

A snapshot that could not read libvirt or netlink has no vifs: the pass keeps the links (and
their flows) rather than detach every tap and lose the window to a libvirtd restart.

Nothing is pinned: when serve exits, however it exits, the kernel drops every link; a clean
exit closes them itself first.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from starlette.concurrency import run_in_threadpool

from vifscope.bind.flows import record_id, vif_flows
from vifscope.exporter.flows import FlowTracker
from vifscope.model import SourceError, VifBinding
from vifscope.model.flows import FlowGrouping, FlowRecord, FlowSample
from vifscope.report import flows as report
from vifscope.sources.flows.collector import FlowCollector

FOLLOW = 2.0  # seconds between attach / detach passes: a new tap is counted within ~2 s
ATTACH_BUDGET = 1.5  # seconds of TCX attaching per pass (~10–30 ms each); the rest at the next
BASELINES = 3
READ_REUSE = 1.0  # seconds a read of the map answers further requests
OFF_HINT = "start the server with: vifscope serve --flows"
BLIND = ("libvirt", "netlink")  # without them a snapshot has no vifs: not a sign every tap went

Counts = tuple[int, int, int]  # a flow's bytes, packets, payload: all a window subtracts
Baseline = tuple[float, dict[tuple[object, ...], Counts]]  # (monotonic time, the map's counts by key)


@dataclass(frozen=True)
class Window:
    """What one tap's flows moved over the window, the map's own counters and read time."""

    sample: FlowSample
    attached: frozenset[int]
    errors: tuple[SourceError, ...] = ()  # the last pass's failed attach, or why it kept the links


class FlowsOff(Exception):
    """No flows to show now: BPF unavailable here, not started yet, or closed. ``doc`` is the 503."""

    def __init__(self, reason: str, hint: str) -> None:
        super().__init__(reason)
        self.doc = report.unavailable_report(reason, hint, ())


def moved(base: dict[tuple[object, ...], Counts], cur: Iterable[FlowRecord]) -> list[FlowRecord]:
    """``bind.flows.since`` over a baseline of counts: what each flow moved since it. A flow whose
    count went down was evicted and re-created in between: its new count is all it moved."""
    out: list[FlowRecord] = []
    for r in cur:
        p = base.get(record_id(r))
        if p is None or r.bytes < p[0]:
            out.append(r)
        elif r.bytes > p[0]:
            out.append(replace(r, bytes=r.bytes - p[0], packets=r.packets - p[1], payload=r.payload - p[2]))
    return out


class ServeFlows:
    """The collector (through a FlowTracker) and its baselines. Two locks: ``_follow`` orders
    the follow passes and close (links change only there: the slow TCX attaches); ``_lock``
    guards the map's reads and the baselines, all a request waits for."""

    def __init__(self, tracker: FlowTracker, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.tracker = tracker
        self.window = window
        self._clock = clock
        self._follow = threading.Lock()
        self._lock = threading.Lock()
        self._baselines: deque[Baseline] = deque(maxlen=BASELINES)
        self._closed = False
        self._last: tuple[float, FlowSample] | None = None  # the last read of the map, and when
        self._attached: frozenset[int] = frozenset()  # the links after the last pass
        self._errors: tuple[SourceError, ...] = ()  # the last pass's failed attach / blind snapshot

    def follow(self, bindings: Sequence[VifBinding], snap_errors: Sequence[SourceError] = ()) -> SourceError | None:
        """One pass: load the program the first time, attach / detach, take a baseline when one
        is due. The error when BPF is unavailable (the server goes on without flows), an attach
        failed, or the snapshot could not see the vifs (``snap_errors`` from libvirt or netlink:
        the links are kept as they are, not detached for vifs it did not see)."""
        with self._follow:
            col = None if self._closed else self.tracker.ensure()
            if col is None:
                return self.tracker.error
            blind = [e for e in snap_errors if e.source in BLIND]
            errors: tuple[SourceError, ...]
            if blind:
                errors = (SourceError(blind[0].source, f"flows kept as they were: {blind[0].error}", blind[0].hint),)
            else:
                _, failed = FlowTracker.sync(col, bindings, ATTACH_BUDGET)
                errors = (SourceError("bpf", f"attach failed: {failed[0]}", ""),) if failed else ()
            attached = frozenset(col.links)  # read here: only this thread changes the links
            with self._lock:
                self._attached, self._errors = attached, errors
                self._baseline(col)
            return errors[0] if errors else None

    def baseline(self) -> None:
        """Take a baseline when one is due (the baseline loop's pass, every ``window / 2``)."""
        with self._lock:
            col = None if self._closed else self.tracker.collector
            if col is not None and self._baselines:
                self._baseline(col)

    def due_in(self) -> float:
        """Seconds until the next baseline is due (a pass's worth before the first)."""
        with self._lock:
            if not self._baselines:
                return min(FOLLOW, self.window / 2)
            return max(0.0, self._baselines[-1][0] + self.window / 2 - self._clock())

    def _baseline(self, col: FlowCollector) -> None:
        now = self._clock()
        if not self._baselines or now - self._baselines[-1][0] >= self.window / 2:
            records = col.read(prune=not self._errors_blind()).records
            self._baselines.append((now, {record_id(r): (r.bytes, r.packets, r.payload) for r in records}))

    def _errors_blind(self) -> bool:
        return any(e.source in BLIND for e in self._errors)

    def read(self, ifindex: int | None) -> Window:
        """Tap ``ifindex``'s flows: the map now minus the baseline that starts the window;
        FlowsOff when there is none. A read of the map serves every request for READ_REUSE
        seconds (40,000 flows take ~0.3 s to read and decode: an open page re-reads every 2 s)."""
        with self._lock:
            col = None if self._closed else self.tracker.collector
            if col is None or not self._baselines:
                err = self.tracker.error
                if err is not None:
                    raise FlowsOff(err.error, err.hint)
                raise FlowsOff("the flow collector is not running (yet)", "retry in a few seconds")
            now, sample = self._now(col)
            start, base = self._start(now)
            attached, errors = self._attached, self._errors
        got = moved(base, (r for r in sample.records if r.ifindex == ifindex))
        return Window(replace(sample, records=tuple(got), seconds=now - start), attached, errors)

    def _now(self, col: FlowCollector) -> tuple[float, FlowSample]:
        now = self._clock()
        if self._last is None or now - self._last[0] > READ_REUSE:
            self._last = (now, col.read(prune=not self._errors_blind()))
        return self._last

    def _start(self, now: float) -> Baseline:
        old_enough = [b for b in self._baselines if now - b[0] >= self.window]
        return old_enough[-1] if old_enough else self._baselines[0]

    def close(self) -> None:
        """Detach everything now; later passes do nothing (the server is stopping)."""
        with self._follow, self._lock:
            self._closed = True
            self._baselines.clear()
            self._last = None
            self._attached = frozenset()
            self.tracker.close()


def vif_document(
    win: Window, bindings: tuple[VifBinding, ...], vif: VifBinding, by: FlowGrouping, top: int, window: float
) -> dict[str, Any]:
    """``vifscope flows --json``'s document for one vif over the window (peers named from every
    binding). A vif whose tap is not attached (not running, or not yet) has no entry in
    ``vifs`` and ``attached: false``."""
    ifindex = vif.link.ifindex if vif.link is not None else None
    attached = ifindex is not None and ifindex in win.attached
    every = vif_flows(bindings, win.sample.records, by, top) if attached else ()
    shown = [v for v in every if v.ifindex == ifindex and (v.domain, v.mac) == (vif.vif.domain, vif.vif.mac)]
    doc = report.flows_report(shown, win.sample, by.value, top, win.errors)
    return {**doc, "window": window, "attached": attached}


Seen = tuple[Sequence[VifBinding], Sequence[SourceError]]  # a snapshot's bindings and its sources' errors


async def follow_loop(flows: ServeFlows, seen: Callable[[], Seen]) -> None:
    """The app's background task: an attach / detach pass every FOLLOW seconds (in a worker
    thread: a snapshot and TCX attaches block) and, beside it, a baseline every ``window / 2``
    seconds (its own cadence, so the window stays within 1.5 × window plus one read of the
    map). A failed pass is logged and retried; BPF unavailable ends both (said once on stderr,
    and by the route)."""
    baselines = asyncio.create_task(_baseline_loop(flows))
    try:
        await _attach_loop(flows, seen)
    finally:
        baselines.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await baselines


async def _attach_loop(flows: ServeFlows, seen: Callable[[], Seen]) -> None:
    said = ""
    while True:
        try:
            err = await run_in_threadpool(lambda: flows.follow(*seen()))
        except Exception:  # a bug in one pass must not end flow collection
            traceback.print_exc(file=sys.stderr)
            err = None
        if err is not None and err.error != said:
            print(f"vifscope serve: flows: {err.error}" + (f" (hint: {err.hint})" if err.hint else ""), file=sys.stderr)
        said = err.error if err else ""
        if flows.tracker.error is not None:
            return
        await asyncio.sleep(FOLLOW)


async def _baseline_loop(flows: ServeFlows) -> None:
    while True:
        await asyncio.sleep(flows.due_in())
        try:
            await run_in_threadpool(flows.baseline)
        except Exception:  # as a failed pass: logged, retried
            traceback.print_exc(file=sys.stderr)
            await asyncio.sleep(FOLLOW)
