"""Single-flight: at most one collection at a time, shared by every caller that arrives during it.

Why: a collection reads libvirt, the link dump and OVSDB, and at 5,000 vifs it costs a second
of CPU. Fifty scrapes arriving together (several Prometheus servers, a dashboard, a curl loop)
must cost one collection, not fifty queued behind a lock, each one collecting again.

``SingleFlight.run(fn, key)``: with no flight running, the caller runs ``fn`` (the leader);
a caller arriving while a flight runs waits for it and gets its result (or its exception).
A caller arriving after a flight finished starts a new one. ``key`` says which flights a
caller may share: a caller with another key (serve's snapshot generation, bumped after a
change made through the API) waits for the running flight to end, then starts its own, so
it never gets a result taken before the change, and two flights still never overlap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Flight(Generic[T]):
    """One run of ``fn``: its outcome, set once, then ``done``."""

    def __init__(self, key: Hashable) -> None:
        self.key = key
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None
        self.shared = 0  # callers that joined it besides the leader

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error  # the leader's exception, raised in every caller that shared it
        return self.result  # type: ignore[return-value]  # set before done (T may include None)


class SingleFlight(Generic[T]):
    """Runs ``fn`` once for every caller that arrives while it runs; counts what it did."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flight: _Flight[T] | None = None
        self.flights = 0  # collections run (finished)
        self.calls = 0  # results handed out: the leaders plus the callers that joined them

    def run(self, fn: Callable[[], T], key: Hashable = None) -> T:
        while True:
            with self._lock:
                flight = self._flight
                if flight is None:
                    flight = self._flight = _Flight(key)
                    break  # this caller leads
                if flight.key == key:
                    flight.shared += 1
            flight.done.wait()
            if flight.key == key:
                return flight.outcome()
            # A flight of another key (taken before a change): wait it out, then lead or join the next.
        return self._lead(flight, fn)

    def _lead(self, flight: _Flight[T], fn: Callable[[], T]) -> T:
        try:
            flight.result = fn()
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                self._flight = None
                self.flights += 1
                self.calls += 1 + flight.shared
            flight.done.set()
        return flight.result

    @property
    def waiting(self) -> int:
        """Callers waiting on the running flight to share its result (0 when none runs)."""
        with self._lock:
            return self._flight.shared if self._flight is not None else 0
