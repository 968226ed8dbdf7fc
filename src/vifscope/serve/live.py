"""Live updates for the web page: server-sent events when a binding changes.

While at least one page listens, ``Feed.run`` takes a snapshot every ``interval`` seconds
(in a worker thread, through the shared single-flight cache), compares it with the previous
one (``diff``, pure) and sends each listener the vifs whose binding changed. Counters are
left out of the comparison: they change with every packet, bindings do not. When the graph
itself changed (a vif moved, appeared or vanished) the event says so and the page re-reads
the topology. Nobody listening: no polling at all.

Why polling and not ``vifscope watch``'s event engine: one snapshot costs ~0.2 s even at
1,000 vifs, a poll loop has no state to lose, and it sees every change the API would show.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vifscope.report import documents as report
from vifscope.serve.state import View, VifKey

QUEUE_SIZE = 32  # events a slow page may lag behind before it is told to re-read everything


def signature(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A vif's binding dict without counters (they change with every packet)."""
    observed = {k: v for k, v in doc["observed"].items() if k != "stats"}
    return {**doc, "observed": observed}


@dataclass(frozen=True)
class Change:
    changed: tuple[dict[str, Any], ...]  # binding dicts, new or different
    removed: tuple[VifKey, ...]
    topology: bool  # the graph's shape changed: redraw

    @property
    def empty(self) -> bool:
        return not (self.changed or self.removed or self.topology)


def diff(old: View | None, new: View) -> Change:
    """What a page showing ``old`` must update to show ``new``."""
    before = old.docs if old else {}
    changed = tuple(
        doc for key, doc in new.docs.items() if key not in before or signature(before[key]) != signature(doc)
    )
    removed = tuple(key for key in before if key not in new.docs)
    return Change(changed, removed, old is None or old.shape != new.shape)


def event_text(event: str, data: Mapping[str, Any]) -> str:
    """One server-sent event (JSON data on one line)."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


def change_event(view: View, change: Change) -> str:
    return event_text(
        "vifs",
        {
            "taken_at": view.snapshot.taken_at.isoformat(),
            "summary": dict(report.counts(view.bindings)),
            "changed": list(change.changed),
            "removed": [{"domain_uuid": u, "index": i} for u, i in change.removed],
            "topology_changed": change.topology,
            "source_errors": report.errors_list(view.snapshot.errors),
        },
    )


GetView = Callable[[float], Awaitable[View]]


class Feed:
    """Listeners (one bounded queue each) and the poll loop that feeds them."""

    def __init__(self, get_view: GetView, interval: float) -> None:
        self._get_view = get_view
        self.interval = interval
        self._queues: set[asyncio.Queue[str]] = set()
        self._wanted = asyncio.Event()
        self._poke = asyncio.Event()
        self._last: View | None = None

    def subscribe(self) -> asyncio.Queue[str]:
        q: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(q)
        self._wanted.set()
        return q

    def unsubscribe(self, q: asyncio.Queue[str]) -> None:
        self._queues.discard(q)
        if not self._queues:
            self._wanted.clear()

    @property
    def listeners(self) -> int:
        return len(self._queues)

    def poke(self) -> None:
        """Something changed (an API action): look now instead of at the next tick."""
        self._poke.set()

    def publish(self, text: str) -> None:
        for q in list(self._queues):
            try:
                q.put_nowait(text)
            except asyncio.QueueFull:  # a stalled page: drop its backlog, ask it to re-read all
                while not q.empty():
                    q.get_nowait()
                q.put_nowait(event_text("resync", {}))

    async def tick(self) -> None:
        """One poll: a fresh-enough view, compared with the last one sent."""
        view = await self._get_view(self.interval / 2)
        change = diff(self._last, view)
        if not change.empty:  # the first poll sends everything: a page may have read before it
            self.publish(change_event(view, change))
        self._last = view

    async def run(self) -> None:
        """Poll while anyone listens; a failing poll is logged and retried, never fatal."""
        while True:
            await self._wanted.wait()
            try:
                await self.tick()
            except Exception as exc:  # a bug in a poll must not end live updates for everyone
                traceback.print_exc(file=sys.stderr)
                self.publish(event_text("error", {"error": f"{type(exc).__name__}: {exc}"}))
            self._poke.clear()
            with contextlib.suppress(TimeoutError):  # the normal case: no poke within the interval
                await asyncio.wait_for(self._poke.wait(), timeout=self.interval)
