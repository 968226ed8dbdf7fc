"""What the server knows: the latest snapshot and everything derived from it, shared by every
request and the live feed.

``Snapshots.get(max_age)`` returns a View no older than ``max_age`` seconds. Taking a snapshot
blocks (libvirt, ``ip``, OVSDB), so it is called from worker threads, never the event loop; it
is single-flight: while one thread takes a snapshot the others wait for it and share it, so a
burst of requests costs one snapshot, not one each, and two snapshots never run at once.
A request that arrives during a take shares it even when the take lasts longer than
``max_age`` (5,000 vifs: a second): it asked for a view no older than its own arrival allows,
and taking another one after it, in turn, would queue every waiter behind its own snapshot.
``invalidate()`` (after a change made through the API) makes the next ``get`` take a new one;
a take already running then serves only the requests that arrived before the change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from vifscope.bind.join import bind
from vifscope.checks import CheckRun, DoctorConfig, evaluate
from vifscope.exporter.flight import SingleFlight
from vifscope.model import HostSnapshot, VifBinding
from vifscope.report import documents as report
from vifscope.report.topology import Topology, build_topology

VifKey = tuple[str, int]  # (domain UUID, index in <devices>)
Rendered = tuple[int, bytes]  # an HTTP status and the JSON body
MAX_BODIES = 64  # encoded answers kept per view


def vif_key(b: VifBinding) -> VifKey:
    return (b.vif.domain_uuid, b.vif.index)


@dataclass(frozen=True)
class View:
    """One snapshot, its bindings, and what the routes derive from them (computed once)."""

    snapshot: HostSnapshot
    bindings: tuple[VifBinding, ...]
    taken: float  # time.monotonic() when the snapshot was started
    generation: int = 0
    doctor: DoctorConfig = field(default_factory=DoctorConfig)
    _bodies: dict[Hashable, Rendered] = field(default_factory=dict, repr=False, compare=False)
    _building: SingleFlight[Rendered] = field(default_factory=SingleFlight, repr=False, compare=False)

    @cached_property
    def docs(self) -> dict[VifKey, dict[str, Any]]:
        """Every vif as its ``status --json`` dict, by key."""
        return {vif_key(b): report.binding_dict(b) for b in self.bindings}

    @cached_property
    def topology(self) -> Topology:
        return build_topology(self.snapshot, self.bindings)

    @cached_property
    def shape(self) -> frozenset[tuple[str, ...]]:
        """The graph without node colours: when this changes (a node or edge appeared, went, or an
        edge broke) the page redraws; otherwise it only recolours the vifs that changed."""
        nodes = {(n.id,) for n in self.topology.nodes}
        edges = {(e.source, e.target, e.kind.value, e.state) for e in self.topology.edges}
        return frozenset(nodes | edges)

    @cached_property
    def check_run(self) -> CheckRun:
        return evaluate(self.snapshot, self.bindings, self.doctor)

    def domain_bindings(self, domain: str) -> tuple[VifBinding, ...]:
        """By name or UUID, like ``status -d``."""
        return report.select(self.bindings, (domain,))

    def rendered(self, key: Hashable, build: Callable[[], Rendered]) -> Rendered:
        """A route's encoded answer, built once for this view: fifty readers of ``/api/v1/vifs``
        arriving together cost one 5,000-vif document, not fifty (single-flight while it is
        built). An exception is not kept: the next request builds again."""
        hit = self._bodies.get(key)
        if hit is not None:
            return hit
        return self._building.run(lambda: self._bodies.get(key) or self._keep(key, build()), key=key)

    def _keep(self, key: Hashable, body: Rendered) -> Rendered:
        if len(self._bodies) < MAX_BODIES:  # filters (-d names) make keys unbounded: keep the first few
            self._bodies[key] = body
        return body


class Snapshots:
    """A single-flight cache of Views over a blocking snapshot function."""

    def __init__(
        self,
        take: Callable[[], HostSnapshot],
        *,
        doctor: DoctorConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._take = take
        self._doctor = doctor or DoctorConfig()
        self._clock = clock
        self.flight: SingleFlight[View] = SingleFlight()
        self._view: View | None = None
        self._generation = 0  # bumped by invalidate(); a view of an older generation is stale
        self._bump = threading.Lock()  # invalidate() never waits for a snapshot in progress

    def get(self, max_age: float) -> View:
        """A view no older than ``max_age`` seconds, or the one being taken (blocking: call
        from a worker thread)."""
        generation = self._generation
        view = self._view
        if view is not None and view.generation == generation and self._clock() - view.taken <= max_age:
            return view
        return self.flight.run(lambda: self._new_view(generation), key=generation)

    def _new_view(self, generation: int) -> View:
        started = self._clock()
        snap = self._take()
        view = View(snap, bind(snap), started, generation, self._doctor)
        self._view = view
        return view

    def latest(self) -> View | None:
        """The last view taken, however old (never blocks)."""
        return self._view

    def invalidate(self) -> None:
        """The host was changed: the next ``get`` takes a new snapshot whatever its age."""
        with self._bump:
            self._generation += 1
