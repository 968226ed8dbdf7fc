"""``serve --flows``: the flow program follows the server's own snapshots — every ``FOLLOW``
seconds the running vifs' taps are attached and the gone ones detached (the exporter's
FlowTracker does both) — and ``GET /api/v1/vifs/{domain}/{mac}/flows`` answers a vif's talkers
over a rolling window.

The window: the kernel's map is cumulative, so the server keeps a few baselines (a copy of the
map's counts, one every ``window / 2`` seconds, the last three) and a request reads the map now
and subtracts the newest baseline at least ``window`` seconds old (the oldest one while the
server is younger than that): what each flow moved over the last ``window`` to
``1.5 × window`` seconds. The answer's ``seconds`` says exactly how long. Memory: three copies
of the map's keys at most (``--max-flows`` bounds it).

Nothing is pinned: when serve exits, however it exits, the kernel drops every link; a clean
exit closes them itself first.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from starlette.concurrency import run_in_threadpool

from vifscope.bind.flows import record_id, since, vif_flows
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

Baseline = tuple[float, dict[tuple[object, ...], FlowRecord]]  # (monotonic time, the map by key)


@dataclass(frozen=True)
class Window:
    """What one tap's flows moved over the window, the map's own counters and read time."""

    sample: FlowSample
    attached: frozenset[int]
    errors: tuple[SourceError, ...] = ()  # the last pass's failed attach


class FlowsOff(Exception):
    """No flows to show now: BPF unavailable here, not started yet, or closed. ``doc`` is the 503."""

    def __init__(self, reason: str, hint: str) -> None:
        super().__init__(reason)
        self.doc = report.unavailable_report(reason, hint, ())


class ServeFlows:
    """The collector (through a FlowTracker), its baselines, and a lock: the follow loop and
    the requests' threads share one map and one set of links."""

    def __init__(self, tracker: FlowTracker, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.tracker = tracker
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._baselines: deque[Baseline] = deque(maxlen=BASELINES)
        self._closed = False
        self._last: tuple[float, FlowSample] | None = None  # the last read of the map, and when
        self.attach_error: SourceError | None = None  # the last pass's failed attach, if any

    def follow(self, bindings: Sequence[VifBinding]) -> SourceError | None:
        """One pass: load the program the first time, attach / detach, take a baseline when one
        is due. The error when BPF is unavailable (the server goes on without flows)."""
        with self._lock:
            col = None if self._closed else self.tracker.ensure()
            if col is None:
                return self.tracker.error
            _, failed = FlowTracker.sync(col, bindings, ATTACH_BUDGET)
            self.attach_error = SourceError("bpf", f"attach failed: {failed[0]}", "") if failed else None
            now = self._clock()
            if not self._baselines or now - self._baselines[-1][0] >= self.window / 2:
                records = col.read(prune=True).records
                self._baselines.append((now, {record_id(r): r for r in records}))
            return self.attach_error

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
            attached = frozenset(col.links)
            errors = (self.attach_error,) if self.attach_error else ()
        moved = since(base, (r for r in sample.records if r.ifindex == ifindex))
        return Window(replace(sample, records=tuple(moved), seconds=now - start), attached, errors)

    def _now(self, col: FlowCollector) -> tuple[float, FlowSample]:
        now = self._clock()
        if self._last is None or now - self._last[0] > READ_REUSE:
            self._last = (now, col.read(prune=True))
        return self._last

    def _start(self, now: float) -> Baseline:
        old_enough = [b for b in self._baselines if now - b[0] >= self.window]
        return old_enough[-1] if old_enough else self._baselines[0]

    def close(self) -> None:
        """Detach everything now; later passes do nothing (the server is stopping)."""
        with self._lock:
            self._closed = True
            self._baselines.clear()
            self._last = None
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


async def follow_loop(flows: ServeFlows, bindings: Callable[[], Sequence[VifBinding]]) -> None:
    """The app's background task: a pass every FOLLOW seconds (in a worker thread: a snapshot
    and TCX attaches block). A failed pass is logged and retried; BPF unavailable ends it (said
    once on stderr, and by the route)."""
    said = ""
    while True:
        try:
            err = await run_in_threadpool(lambda: flows.follow(bindings()))
        except Exception:  # a bug in one pass must not end flow collection
            traceback.print_exc(file=sys.stderr)
            err = None
        if err is not None and err.error != said:
            print(f"vifscope serve: flows: {err.error}" + (f" (hint: {err.hint})" if err.hint else ""), file=sys.stderr)
        said = err.error if err else ""
        if flows.tracker.error is not None:
            return
        await asyncio.sleep(FOLLOW)
